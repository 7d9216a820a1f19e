using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using WeakToStrong.Backends.Cpu;

namespace WeakToStrong.Diagnostics;

/// <summary>
/// The machine's F32 multiply-add ceiling: every core runs independent FMA chains from registers (no memory
/// traffic), the bound a compute-bound step (decode at batch 16, prefill) is chasing. Probed at the widest vector
/// path this CPU has (<see cref="CpuIsas.Widest"/>) unless a path is named: a CPU that splits 512-bit operations
/// in two (AMD Zen 4) shows the same ceiling on both paths; one with full-width 512-bit units shows twice.
/// </summary>
public static class ComputePeak
{
    /// <summary>Independent accumulator chains per core: enough to cover FMA latency × issue width.</summary>
    private const int Chains = 12;

    /// <summary>Floating-point operations (multiply and add counted apart) in one pass of <see cref="Run"/>.</summary>
    public static long FlopsPerPass(long iterations, CpuIsa? isa = null) =>
        iterations * Chains * Lanes(isa ?? CpuIsas.Widest) * 2 * CpuParallel.Threads;

    private static int Lanes(CpuIsa isa) => isa == CpuIsa.Avx512 ? Vector512<float>.Count : Vector256<float>.Count;

    /// <summary>Best of <paramref name="repeats"/> passes, in FLOP per second.</summary>
    public static double MeasureFma(long iterations = 20_000_000, int repeats = 5, CpuIsa? isa = null)
    {
        var path = isa ?? CpuIsas.Widest;
        // The same work per pass on either path: half the iterations of twice the width.
        long steps = path == CpuIsa.Avx512 ? Math.Max(1, iterations / 2) : iterations;
        double best = 0;
        for (int r = 0; r < repeats + 1; r++)
        {
            var clock = Stopwatch.StartNew();
            Run(steps, path);
            double seconds = clock.Elapsed.TotalSeconds;
            if (r > 0) best = Math.Max(best, FlopsPerPass(steps, path) / seconds); // pass 0 is warm-up
        }
        return best;
    }

    /// <summary>Runs <paramref name="iterations"/> steps of <see cref="Chains"/> FMAs on every core; returns a value
    /// that depends on all of them so none can be optimised away.</summary>
    public static float Run(long iterations, CpuIsa? isa = null)
    {
        bool wide = (isa ?? CpuIsas.Widest) == CpuIsa.Avx512;
        var sink = new float[CpuParallel.Threads];
        CpuParallel.For(CpuParallel.Threads, t => sink[t] = wide ? Chain512(iterations, t) : Chain(iterations, t));
        return sink.Sum();
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chain512(long iterations, int seed)
    {
        var m = Vector512.Create(0.999999f);
        var c = Vector512.Create(1e-7f * (seed + 1));
        Vector512<float> a0 = c, a1 = c, a2 = c, a3 = c, a4 = c, a5 = c, a6 = c, a7 = c, a8 = c, a9 = c, a10 = c, a11 = c;
        for (long i = 0; i < iterations; i++)
        {
            a0 = Vector512.FusedMultiplyAdd(a0, m, c);
            a1 = Vector512.FusedMultiplyAdd(a1, m, c);
            a2 = Vector512.FusedMultiplyAdd(a2, m, c);
            a3 = Vector512.FusedMultiplyAdd(a3, m, c);
            a4 = Vector512.FusedMultiplyAdd(a4, m, c);
            a5 = Vector512.FusedMultiplyAdd(a5, m, c);
            a6 = Vector512.FusedMultiplyAdd(a6, m, c);
            a7 = Vector512.FusedMultiplyAdd(a7, m, c);
            a8 = Vector512.FusedMultiplyAdd(a8, m, c);
            a9 = Vector512.FusedMultiplyAdd(a9, m, c);
            a10 = Vector512.FusedMultiplyAdd(a10, m, c);
            a11 = Vector512.FusedMultiplyAdd(a11, m, c);
        }
        return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private static float Chain(long iterations, int seed)
    {
        var m = Vector256.Create(0.999999f);
        var c = Vector256.Create(1e-7f * (seed + 1));
        Vector256<float> a0 = c, a1 = c, a2 = c, a3 = c, a4 = c, a5 = c, a6 = c, a7 = c, a8 = c, a9 = c, a10 = c, a11 = c;
        for (long i = 0; i < iterations; i++)
        {
            a0 = Vector256.FusedMultiplyAdd(a0, m, c);
            a1 = Vector256.FusedMultiplyAdd(a1, m, c);
            a2 = Vector256.FusedMultiplyAdd(a2, m, c);
            a3 = Vector256.FusedMultiplyAdd(a3, m, c);
            a4 = Vector256.FusedMultiplyAdd(a4, m, c);
            a5 = Vector256.FusedMultiplyAdd(a5, m, c);
            a6 = Vector256.FusedMultiplyAdd(a6, m, c);
            a7 = Vector256.FusedMultiplyAdd(a7, m, c);
            a8 = Vector256.FusedMultiplyAdd(a8, m, c);
            a9 = Vector256.FusedMultiplyAdd(a9, m, c);
            a10 = Vector256.FusedMultiplyAdd(a10, m, c);
            a11 = Vector256.FusedMultiplyAdd(a11, m, c);
        }
        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }
}
