using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using WeakToStrong.Backends.Cpu;

namespace WeakToStrong.Diagnostics;

/// <summary>
/// The machine's int8 multiply-add ceiling on the path the int8 linear kernel runs (AVX2: per 8 rows × 4 inputs
/// one vpsignb, vpmaddubsw, vpmaddwd and vpaddd; CpuLinear.Int8.cs): every core runs independent chains of that
/// sequence on weights read from L1, the bound that int8 prefill and batched decode are chasing. Reported like
/// <see cref="ComputePeak"/> in operations per second, a multiply and an add counted apart.
/// </summary>
public static class Int8Peak
{
    /// <summary>Independent accumulator chains per core (a token × 8 rows each, as in the kernel's tiles).</summary>
    private const int Chains = 8;

    /// <summary>32 byte products per chain per step.</summary>
    private const int ProductsPerStep = 32;

    /// <summary>The kernel this machine runs: "avx2" (vpmaddubsw) or "none" (no AVX2: a scalar loop, no probe).</summary>
    public static string Path => Avx2.IsSupported ? "avx2" : "none";

    /// <summary>Operations in one pass of <see cref="Run"/> on every core.</summary>
    public static long OpsPerPass(long iterations) => iterations * Chains * ProductsPerStep * 2 * CpuParallel.Threads;

    /// <summary>Best of <paramref name="repeats"/> passes, in operations per second; 0 without AVX2.</summary>
    public static double Measure(long iterations = 10_000_000, int repeats = 5)
    {
        if (!Avx2.IsSupported) return 0;
        double best = 0;
        for (int r = 0; r < repeats + 1; r++)
        {
            var clock = Stopwatch.StartNew();
            Run(iterations);
            double seconds = clock.Elapsed.TotalSeconds;
            if (r > 0) best = Math.Max(best, OpsPerPass(iterations) / seconds); // pass 0 is warm-up
        }
        return best;
    }

    /// <summary>Runs <paramref name="iterations"/> steps of <see cref="Chains"/> chains on every core; returns a value
    /// that depends on all of them so none can be optimised away.</summary>
    public static int Run(long iterations)
    {
        var sink = new int[CpuParallel.Threads];
        CpuParallel.For(CpuParallel.Threads, t => sink[t] = Chain(iterations, t));
        return sink.Aggregate(0, (a, b) => unchecked(a + b)); // the chains wrap; Sum would throw on overflow
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static unsafe int Chain(long iterations, int seed)
    {
        // 64 weight vectors (2 KiB, in L1) read in turn: a load per step, as the kernel's, and nothing to hoist.
        var weights = GC.AllocateArray<sbyte>(64 * 32, pinned: true);
        new Random(seed).NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(weights.AsSpan()));
        var ones = Vector256.Create((short)1);
        var a = Vector256.Create((byte)(seed + 3));
        Vector256<sbyte> s0 = Vector256.Create((sbyte)1), s1 = Vector256.Create((sbyte)-2), s2 = Vector256.Create((sbyte)3), s3 = Vector256.Create((sbyte)-4);
        Vector256<sbyte> s4 = Vector256.Create((sbyte)5), s5 = Vector256.Create((sbyte)-6), s6 = Vector256.Create((sbyte)7), s7 = Vector256.Create((sbyte)-8);
        Vector256<int> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default, c6 = default, c7 = default;
        fixed (sbyte* w = weights)
            for (long i = 0; i < iterations; i++)
            {
                var v = Vector256.Load(w + (i & 63) * 32);
                c0 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a, Avx2.Sign(v, s0)), ones);
                c1 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a, Avx2.Sign(v, s1)), ones);
                c2 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a, Avx2.Sign(v, s2)), ones);
                c3 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a, Avx2.Sign(v, s3)), ones);
                c4 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a, Avx2.Sign(v, s4)), ones);
                c5 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a, Avx2.Sign(v, s5)), ones);
                c6 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a, Avx2.Sign(v, s6)), ones);
                c7 += Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(a, Avx2.Sign(v, s7)), ones);
            }
        return Vector256.Sum(c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7);
    }
}
