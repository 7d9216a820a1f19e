using System.Diagnostics;
using WeakToStrong.Backends;
using WeakToStrong.Backends.Cuda;
using WeakToStrong.Backends.Cuda.Interop;

namespace WeakToStrong.Diagnostics.Ops;

/// <summary>What a backend's hardware bounds, measured in the run that reports against it.</summary>
/// <param name="MemoryGigabytesPerSecond">Memory ceiling: CPU read bandwidth on all cores, or a device-to-device copy counting bytes read and written.</param>
/// <param name="Memory">How the memory ceiling was measured.</param>
/// <param name="ComputeGigaflops">Compute ceiling: the CPU's F32 FMA rate on all cores, or a cuBLAS BF16 GEMM with F32 accumulation (0: none measured).</param>
/// <param name="Compute">How the compute ceiling was measured.</param>
public sealed record Ceilings(double MemoryGigabytesPerSecond, string Memory, double ComputeGigaflops, string Compute)
{
    /// <summary>Measures the ceilings of <paramref name="backend"/>'s hardware (a few seconds).</summary>
    public static Ceilings Measure(IBackend backend) => backend switch
    {
        CudaBackend cuda => new(
            MemoryBytesPerSecond(cuda) / 1e9, "device-to-device copy of 1 GiB, bytes read + written, best of 5 before and 5 after",
            cuda.Runtime.HasGemm ? GemmFlopsPerSecond(cuda.Runtime, 8192) / 1e9 : 0,
            cuda.Runtime.HasGemm ? "cuBLAS 8192³ GEMM, BF16 inputs (random), F32 accumulate, best of 5 before and 5 after" : "none (cuBLAS not loaded)"),
        _ => new(
            MemoryBytesPerSecond(backend) / 1e9, "memory read of 512 MiB on all cores, best of 5 before and 5 after",
            ComputePeak.MeasureFma() / 1e9, "F32 FMA chains on all cores, best of 5 before and 5 after"),
    };

    /// <summary>The higher of two measurements of each ceiling (probes before and after a run: on a shared machine a
    /// neighbour's burst during one probe would otherwise put an op above 100 % of its ceiling).</summary>
    public Ceilings Max(Ceilings other) => this with
    {
        MemoryGigabytesPerSecond = Math.Max(MemoryGigabytesPerSecond, other.MemoryGigabytesPerSecond),
        ComputeGigaflops = Math.Max(ComputeGigaflops, other.ComputeGigaflops),
    };

    /// <summary>The memory ceiling alone, in bytes per second (what <c>w2s bench</c> measures before and after each decode run).</summary>
    public static double MemoryBytesPerSecond(IBackend backend) => backend is CudaBackend cuda
        ? DeviceCopyBytesPerSecond(cuda.Runtime, 1L << 30)
        : MemoryBandwidth.MeasureRead(512L << 20, 5);

    /// <summary>Best of five device-to-device copies of <paramref name="bytes"/> after one warm-up, counting bytes read plus written.</summary>
    internal static double DeviceCopyBytesPerSecond(IDeviceRuntime runtime, long bytes)
    {
        ulong a = runtime.Allocate(bytes), b = runtime.Allocate(bytes);
        try
        {
            FillRandom(runtime, a, bytes);
            runtime.CopyOnDevice(b, a, bytes);
            runtime.Synchronize();
            double best = 0;
            for (int i = 0; i < 5; i++)
            {
                var clock = Stopwatch.StartNew();
                runtime.CopyOnDevice(b, a, bytes);
                runtime.Synchronize();
                best = Math.Max(best, 2.0 * bytes / clock.Elapsed.TotalSeconds);
            }
            return best;
        }
        finally
        {
            runtime.Free(a);
            runtime.Free(b);
        }
    }

    /// <summary>
    /// Best of five n×n×n GEMMs (y = x · Wᵀ, BF16 x and W of random values, F32 accumulation and output) after one
    /// warm-up, in FLOP/s (2n³ per GEMM). Random inputs: matrix units run measurably faster on zeros.
    /// </summary>
    internal static double GemmFlopsPerSecond(IDeviceRuntime runtime, int n)
    {
        long elements = (long)n * n;
        ulong x = runtime.Allocate(elements * 2), w = runtime.Allocate(elements * 2), y = runtime.Allocate(elements * 4);
        try
        {
            FillRandom(runtime, x, elements * 2, scale: 1f);
            FillRandom(runtime, w, elements * 2, scale: 1f);
            runtime.Gemm(x, CudaDataType.R16BF, w, CudaDataType.R16BF, y, n, n, n, n);
            runtime.Synchronize();
            double best = 0;
            for (int i = 0; i < 5; i++)
            {
                var clock = Stopwatch.StartNew();
                runtime.Gemm(x, CudaDataType.R16BF, w, CudaDataType.R16BF, y, n, n, n, n);
                runtime.Synchronize();
                best = Math.Max(best, 2.0 * n * n * n / clock.Elapsed.TotalSeconds);
            }
            return best;
        }
        finally
        {
            runtime.Free(x);
            runtime.Free(w);
            runtime.Free(y);
        }
    }

    /// <summary>Fills device memory with BF16 pairs of random values (a 16 MiB random block repeated at shifting offsets).</summary>
    private static void FillRandom(IDeviceRuntime runtime, ulong address, long bytes, float scale = 1f)
    {
        const int block = 16 << 20;
        var values = HostData.Uniform(new Random(7), block / 2 + 1024, scale);
        var data = HostData.Encode(values, DType.BF16);
        for (long done = 0, shift = 0; done < bytes; done += block, shift = (shift + 2 * 97) % 2048)
            runtime.CopyToDevice(address + (ulong)done, data.AsSpan((int)shift, (int)Math.Min(block, bytes - done)));
    }
}
