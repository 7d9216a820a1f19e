using WeakToStrong.Backends;
using WeakToStrong.Backends.Cuda;
using WeakToStrong.Backends.Cuda.Interop;
using WeakToStrong.Backends.Cuda.Kernels;

namespace WeakToStrong.Tests.Cuda;

/// <summary>The CUDA backend's host-side logic that needs no device: library lookup, geometry, cache keys, graph buckets, errors.</summary>
[Trait("Category", "Unit")]
public class HostSideTests
{
    [Fact]
    public void NvrtcIsSearchedNewestFirstOnTheLoaderPathThenCudaPathThenUsrLocal()
    {
        var candidates = NativeLibraries.Candidates(CudaLibrary.Nvrtc, "/opt/cuda");
        Assert.Equal(
        [
            "libnvrtc.so.13", "/opt/cuda/lib64/libnvrtc.so.13", "/usr/local/cuda/lib64/libnvrtc.so.13",
            "libnvrtc.so.12", "/opt/cuda/lib64/libnvrtc.so.12", "/usr/local/cuda/lib64/libnvrtc.so.12",
            "libnvrtc.so.11.2", "/opt/cuda/lib64/libnvrtc.so.11.2", "/usr/local/cuda/lib64/libnvrtc.so.11.2",
            "libnvrtc.so", "/opt/cuda/lib64/libnvrtc.so", "/usr/local/cuda/lib64/libnvrtc.so",
        ], candidates);
    }

    [Fact]
    public void WithoutCudaPathOnlyUsrLocalIsAdded()
    {
        var candidates = NativeLibraries.Candidates(CudaLibrary.Cublas, null);
        Assert.Equal(["libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so.13"], candidates.Take(2));
        Assert.Contains("libcublas.so.11", candidates);
    }

    [Fact]
    public void TheDriverComesOnlyFromTheLoaderPath()
    {
        Assert.Equal(["libcuda.so.1", "libcuda.so"], NativeLibraries.Candidates(CudaLibrary.Driver, "/opt/cuda"));
    }

    [Fact]
    public void NoDriverGivesAOneLineReasonAndTheCpuBackendStillWorks()
    {
        if (NativeLibraries.TryLoad(CudaLibrary.Driver, out _)) return; // a machine with a driver checks this in GpuKernelTests
        var e = Assert.Throws<CudaUnavailableException>(() => new CudaBackend());
        Assert.Equal("no CUDA driver: libcuda.so.1 not found", e.Message);
        Assert.Equal(e.Message, CudaBackend.Unavailable());
        using var cpu = BackendFactory.Create("cpu");
        Assert.Equal("cpu", cpu.Name);
    }

    [Fact]
    public void ErrorsNameTheCCall()
    {
        Assert.Equal("cuMemAlloc_v2", Cu.CallName("DriverApi.MemAlloc_v2(out ulong p, n)"));
        Assert.Equal("nvrtcCompileProgram", Cu.CallName("NvrtcApi.CompileProgram(program, options.Count, opts)"));
        Assert.Equal("cublasGemmEx", Cu.CallName("CublasApi.GemmEx(handle, …)"));
        Assert.Equal("nvrtcCompileProgram(attention.cu)", Cu.CallName("nvrtcCompileProgram(attention.cu)"));
        Assert.Equal("cublasGemmEx failed: CUBLAS_STATUS_NOT_SUPPORTED (15)", new CublasException("cublasGemmEx", CublasStatus.NotSupported).Message);
        var nvrtc = new NvrtcException("nvrtcCompileProgram(x.cu)", NvrtcResult.Compilation, "NVRTC_ERROR_COMPILATION", "x.cu(3): error: identifier \"y\" is undefined");
        Assert.Contains("identifier \"y\" is undefined", nvrtc.Message);
    }

    [Fact]
    public void CacheKeyChangesWithSourceHeaderOptionsArchitectureAndCompiler()
    {
        var options80 = KernelCompiler.Options("sm_80");
        string key = KernelCompiler.CacheKey("src", "hdr", options80, "11.8");
        Assert.Equal(64, key.Length);
        Assert.Equal(key, KernelCompiler.CacheKey("src", "hdr", KernelCompiler.Options("sm_80"), "11.8"));
        Assert.NotEqual(key, KernelCompiler.CacheKey("src ", "hdr", options80, "11.8"));
        Assert.NotEqual(key, KernelCompiler.CacheKey("src", "hdr2", options80, "11.8"));
        Assert.NotEqual(key, KernelCompiler.CacheKey("src", "hdr", KernelCompiler.Options("sm_90"), "11.8"));
        Assert.NotEqual(key, KernelCompiler.CacheKey("src", "hdr", options80, "12.4"));
        Assert.NotEqual(key, KernelCompiler.CacheKey("src", "hdr", KernelCompiler.Options("sm_80", verbose: true), "11.8"));
    }

    [Fact]
    public void CompileOptionsTargetTheArchitecture()
    {
        Assert.Equal(["--gpu-architecture=sm_90", "-default-device", "--std=c++17"], KernelCompiler.Options("sm_90"));
        Assert.Equal("sm_86", KernelCompiler.Architecture(8, 6));
        Assert.True(KernelCompiler.IsArchitecture("sm_100"));
        Assert.False(KernelCompiler.IsArchitecture("compute_80"));
        Assert.False(KernelCompiler.IsArchitecture("sm_9a"));
    }

    [Fact]
    public void CacheFolderFollowsXdg()
    {
        string? saved = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        try
        {
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", "/tmp/xdg");
            Assert.Equal("/tmp/xdg/weaktostrong/kernels", KernelCompiler.DefaultCacheFolder());
        }
        finally
        {
            Environment.SetEnvironmentVariable("XDG_CACHE_HOME", saved);
        }
    }

    [Theory]
    [InlineData(1, 32)]
    [InlineData(64, 32)]
    [InlineData(130, 64)]
    [InlineData(4096, 1024)]
    [InlineData(100_000, 1024)]
    public void ReductionBlocksAreWholeWarpsOfAboutFourElementsAThread(int dim, int threads) =>
        Assert.Equal(threads, LaunchGeometry.ReductionBlock(dim));

    [Fact]
    public void LinearGridCoversEveryFeatureAndRow()
    {
        var (grid, block) = LaunchGeometry.Linear(rows: 9, outDim: 33);
        Assert.Equal(new Dim3(9, 2), grid);
        Assert.Equal(new Dim3(128), block);
    }

    [Fact]
    public void GridStrideBlocksAreCapped()
    {
        Assert.Equal(1u, LaunchGeometry.GridStrideBlocks(0, 256));
        Assert.Equal(4u, LaunchGeometry.GridStrideBlocks(1000, 256));
        Assert.Equal(4096u, LaunchGeometry.GridStrideBlocks(1L << 40, 256));
    }

    [Fact]
    public void AttentionTilesGroupTokensOfOneSequenceAndHeadsOfOneKvHead()
    {
        // Sequence 0: 5 prefill tokens; sequence 1: one decode token at position 9. 4 heads over 2 KV heads.
        var layout = new BatchLayout
        {
            Tokens = new int[6],
            Positions = [0, 1, 2, 3, 4, 9],
            TokenSequence = [0, 0, 0, 0, 0, 1],
            SlotMapping = new int[6],
            BlockTables = [0, 1, 2, 3],
            MaxBlocksPerSequence = 2,
        };
        int[] tiles = LaunchGeometry.AttentionTiles(layout, heads: 4, kvHeads: 2, out int maxContext);
        Assert.Equal(10, maxContext);
        // group 2 → 8 tokens per tile; per KV head: tokens 0..4 of sequence 0, then token 5 of sequence 1.
        Assert.Equal([0, 5, 0, 2, 0, 5, 2, 2, 5, 1, 0, 2, 5, 1, 2, 2], tiles);
    }

    [Fact]
    public void WideKvGroupsSplitIntoTilesOfSixteenHeads()
    {
        var layout = new BatchLayout { Tokens = [0], Positions = [3], TokenSequence = [0], SlotMapping = [3], BlockTables = [0], MaxBlocksPerSequence = 1 };
        int[] tiles = LaunchGeometry.AttentionTiles(layout, heads: 40, kvHeads: 1, out _);
        Assert.Equal([0, 1, 0, 16, 0, 1, 16, 16, 0, 1, 32, 8], tiles);
        Assert.True(tiles.Chunk(4).All(t => t[1] * t[3] <= LaunchGeometry.AttentionMaxRows));
    }

    [Theory]
    [InlineData(200, 4000, 132, 1)]   // enough tiles to fill the device
    [InlineData(4, 200, 132, 1)]      // short context
    [InlineData(8, 4096, 132, 32)]    // batch-1 decode of an 8-KV-head model at 4k: split-K
    [InlineData(1, 300, 8, 3)]
    public void AttentionSplitsOnlyWhenTilesAloneLeaveTheDeviceIdle(int tiles, int context, int sms, int splits)
    {
        var (s, length) = LaunchGeometry.AttentionSplits(tiles, context, sms);
        Assert.Equal(splits, s);
        Assert.Equal(0, length % LaunchGeometry.AttentionKeys);
        Assert.True((long)s * length >= context && (long)(s - 1) * length < context, $"{s} splits of {length} for {context} keys");
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(3, 4)]
    [InlineData(8, 8)]
    [InlineData(65, 128)]
    [InlineData(129, 0)]
    public void DecodeBatchesRunInTheSmallestGraphBucketThatHoldsThem(int sequences, int bucket) =>
        Assert.Equal(bucket, LaunchGeometry.GraphBucket(sequences));

    [Fact]
    public void AttentionSharedMemoryFitsTheDefaultLimitUpToHeadDim128()
    {
        Assert.True(LaunchGeometry.AttentionSharedBytes(128) <= 48 * 1024);
        Assert.True(LaunchGeometry.AttentionSharedBytes(256) > 48 * 1024); // opts in (cuFuncSetAttribute) on the device
    }

    [Fact]
    public void EveryCatalogKernelHasOneModuleAndWeightTypesMapToSuffixes()
    {
        var all = KernelCatalog.AllKernels.ToList();
        Assert.Equal(all.Count, all.Distinct().Count());
        Assert.All(all, k => Assert.True(File.Exists(Path.Combine(EmulatorBuild.KernelsFolder, KernelCatalog.ModuleOf(k).File))));
        Assert.Equal("linear_bf16", KernelCatalog.ForWeights(KernelCatalog.LinearF32, KernelCatalog.LinearBf16, KernelCatalog.LinearF16, DType.BF16));
        Assert.Throws<ArgumentException>(() => KernelCatalog.ForWeights("a", "b", "c", DType.I32));
    }
}
