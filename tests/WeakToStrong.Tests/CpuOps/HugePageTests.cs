using System.Runtime.InteropServices;
using WeakToStrong.Backends;
using WeakToStrong.Backends.Cpu;
using WeakToStrong.Native;

namespace WeakToStrong.Tests.CpuOps;

/// <summary>Packed weights ask for 2 MiB pages where the kernel offers them (Linux THP "madvise" or "always").</summary>
public class HugePageTests
{
    private const string Setting = "/sys/kernel/mm/transparent_hugepage/enabled";

    [SkippableFact]
    public unsafe void LargePackedWeightsAreAdvisedToUseHugePages()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && File.Exists(Setting) && !File.ReadAllText(Setting).Contains("[never]"), "no transparent huge pages on this machine");
        // The advice is taken for a range holding an aligned 2 MiB, refused for one that holds none.
        var block = NativeMemory.AlignedAlloc(8 << 20, 2 << 20);
        try
        {
            Assert.True(MemoryAdvice.HugePages((nint)block, 8 << 20));
            Assert.False(MemoryAdvice.HugePages((nint)block + 4096, (2 << 20) - 8192));
        }
        finally
        {
            NativeMemory.AlignedFree(block);
        }
        // A weight of 1536 × 1024 F32 (6 MiB) packs and still computes y = W·x exactly as a naive loop in float64 bounds.
        var backend = new CpuBackend(CpuIsa.Avx2);
        var w = Enumerable.Range(0, 1536 * 1024).Select(i => (float)((i * 7919 % 1000) - 500) / 1000f).ToArray();
        using var packed = backend.LoadLinear(MemoryMarshal.AsBytes(w.AsSpan()), DType.F32, 1536, 1024);
        var x = Enumerable.Range(0, 1024).Select(i => (float)Math.Sin(i)).ToArray();
        using var xt = backend.Allocate(DType.F32, 1024);
        backend.Upload(xt, MemoryMarshal.AsBytes(x.AsSpan()));
        using var y = backend.Allocate(DType.F32, 1536);
        backend.Linear(xt, packed, null, y, 1, 1024, 1536);
        var got = new float[1536];
        backend.Download(y, got);
        for (int o = 0; o < 1536; o += 97)
        {
            double expected = 0;
            for (int i = 0; i < 1024; i++) expected += (double)w[o * 1024 + i] * x[i];
            new Tolerance(1e-4, 1e-5).AssertClose(expected, got[o], $"y[{o}]");
        }
    }
}
