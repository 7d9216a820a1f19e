using WeakToStrong.Backends;
using WeakToStrong.Backends.Cuda;
using WeakToStrong.Backends.Cuda.Kernels;
using WeakToStrong.Diagnostics.Ops;

namespace WeakToStrong.Tests.Cuda;

/// <summary>The kernel comparisons on the host emulator, through <see cref="CudaBackend"/>'s own host code. CI runs these.</summary>
[Trait("Category", "Unit")]
public class EmulatedKernelTests : KernelComparisons
{
    private protected override BackendPair Pair(int seed, int multiprocessors = 4) => BackendPair.Emulated(seed, multiprocessors);

    [EmulatorFact]
    public void EveryKernelFileRegistersExactlyTheCatalogKernels()
    {
        foreach (var module in KernelCatalog.Modules)
            Assert.Equal(module.Kernels.Order(), EmulatorRuntime.RegisteredKernels(module.File).Order());
    }

    [EmulatorTheory]
    [MemberData(nameof(EmbedShapes), MemberType = typeof(KernelComparisons))]
    public void Embed(DType dtype, int tokens, int dim, bool positions) => EmbedCase(dtype, tokens, dim, positions);

    [EmulatorTheory]
    [MemberData(nameof(AddNormShapes), MemberType = typeof(KernelComparisons))]
    public void AddNorm(NormKind kind, int rows, int dim, bool withDelta, bool withBias) => AddNormCase(kind, rows, dim, withDelta, withBias);

    [EmulatorTheory]
    [MemberData(nameof(LinearShapes), MemberType = typeof(KernelComparisons))]
    public void Linear(DType dtype, int rows, int inDim, int outDim, bool withBias) => LinearCase(dtype, rows, inDim, outDim, withBias);

    [EmulatorTheory]
    [MemberData(nameof(RopeAndCacheWriteShapes), MemberType = typeof(KernelComparisons))]
    public void RopeAndCacheWrite(int heads, int kvHeads, int headDim, int blockSize, bool rotary) => RopeAndCacheWriteCase(heads, kvHeads, headDim, blockSize, rotary);

    [EmulatorTheory]
    [MemberData(nameof(AttentionCases), MemberType = typeof(KernelComparisons))]
    public void Attention(string shape, int heads, int kvHeads, int headDim, int blockSize) => AttentionCase(shape, heads, kvHeads, headDim, blockSize);

    [EmulatorFact]
    public void DecodeAttentionSplitsTheKeyRange()
    {
        var runtime = new EmulatorRuntime(multiprocessors: 8);
        using var p = new BackendPair(new Backends.Cuda.CudaBackend(runtime), 6);
        var layout = PagedLayouts.Decode(p.Random, [400], 10, 16);
        var qkv = p.Tensors(p.Uniform((long)layout.TokenCount * 4 * 8));
        long pool = (long)PagedLayouts.Blocks(layout) * 16 * 1 * 8;
        var keys = p.Tensors(p.Uniform(pool));
        var values = p.Tensors(p.Uniform(pool));
        var output = p.Zeros(2 * 8);
        p.Cuda.BeginBatch(layout);
        p.Cuda.Attention(layout, qkv.Cuda, keys.Cuda, values.Cuda, output.Cuda, 2, 1, 8, 16);
        Assert.Equal(1, runtime.Launches.GetValueOrDefault(KernelCatalog.AttentionDecode));
        Assert.Equal(1, runtime.Launches.GetValueOrDefault(KernelCatalog.AttentionCombine));
        Assert.Equal(0, runtime.Launches.GetValueOrDefault(KernelCatalog.AttentionPrefill));
    }

    [EmulatorTheory]
    [MemberData(nameof(GeluTanhShapes), MemberType = typeof(KernelComparisons))]
    public void GeluTanh(long count) => GeluTanhCase(count);

    [EmulatorTheory]
    [MemberData(nameof(SiluGateShapes), MemberType = typeof(KernelComparisons))]
    public void SiluGate(int rows, int ff) => SiluGateCase(rows, ff);

    [EmulatorFact]
    public void GatherRows() => GatherRowsCase();

    [EmulatorTheory]
    [MemberData(nameof(LogProbOfTargetsShapes), MemberType = typeof(KernelComparisons))]
    public void LogProbOfTargets(int rows, int vocab) => LogProbOfTargetsCase(rows, vocab);

    [EmulatorFact]
    public void LogProbRejectsATargetOutsideTheVocabulary() => LogProbRejectsATargetOutsideTheVocabularyCase();

    [EmulatorTheory]
    [MemberData(nameof(SampleMatchesTheCpuSamplerDrawForDrawShapes), MemberType = typeof(KernelComparisons))]
    public void SampleMatchesTheCpuSamplerDrawForDraw(int vocab) => SampleMatchesTheCpuSamplerDrawForDrawCase(vocab);

    [EmulatorFact]
    public void GreedyRowsTakeTheFirstIndexOfTheMaximum() => GreedyRowsTakeTheFirstIndexOfTheMaximumCase();

    [EmulatorFact]
    public void CopyBlock() => CopyBlockCase();
}
