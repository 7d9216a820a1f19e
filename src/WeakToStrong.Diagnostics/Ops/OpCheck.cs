using System.Diagnostics;
using WeakToStrong.Backends;

namespace WeakToStrong.Diagnostics.Ops;

/// <summary>One op at one shape compared with its reference.</summary>
/// <param name="Op">The op (<see cref="OpCase.Op"/>).</param>
/// <param name="Dtype">Its weight type.</param>
/// <param name="Shape">The shape in words.</param>
/// <param name="ModelSized">Whether the shape is model-sized.</param>
/// <param name="Reference">"cpu" (the CPU backend's op) or "float64" (the definition).</param>
/// <param name="Error">Largest error over the op's outputs (<see cref="OpCase.Error"/>); NaN when skipped.</param>
/// <param name="Threshold">The largest error allowed (<see cref="OpThresholds"/>).</param>
/// <param name="Status">"pass", "FAIL" or "skip".</param>
/// <param name="Note">Why it failed or was skipped.</param>
public sealed record OpCheckResult(string Op, string Dtype, string Shape, bool ModelSized, string Reference, double Error, double Threshold, string Status, string? Note = null)
{
    public bool Failed => Status == "FAIL";
}

/// <summary>One op at one shape timed on a backend, against the ceilings measured in the same run.</summary>
/// <param name="Op">The op (<see cref="OpCase.Op"/>).</param>
/// <param name="Dtype">Its weight type.</param>
/// <param name="Shape">The shape in words.</param>
/// <param name="ModelSized">Whether the shape is model-sized.</param>
/// <param name="Microseconds">Median time of one call (device synchronised before the clock is read).</param>
/// <param name="GigabytesPerSecond">The op's fewest bytes (<see cref="OpCase.Cost"/>) over that time.</param>
/// <param name="FractionOfBandwidth">GigabytesPerSecond over the measured memory ceiling.</param>
/// <param name="Gigaflops">Floating-point operations over that time (0 for ops counted in bytes only).</param>
/// <param name="FractionOfCompute">Gigaflops over the measured compute ceiling (0 where none was measured).</param>
/// <param name="Calls">Calls per timed sample.</param>
public sealed record OpTiming(string Op, string Dtype, string Shape, bool ModelSized, double Microseconds, double GigabytesPerSecond, double FractionOfBandwidth,
    double Gigaflops, double FractionOfCompute, int Calls)
{
    /// <summary>The same timing with its fractions taken of <paramref name="ceilings"/>.</summary>
    public OpTiming Against(Ceilings ceilings) => this with
    {
        FractionOfBandwidth = ceilings.MemoryGigabytesPerSecond > 0 ? GigabytesPerSecond / ceilings.MemoryGigabytesPerSecond : 0,
        FractionOfCompute = ceilings.ComputeGigaflops > 0 ? Gigaflops / ceilings.ComputeGigaflops : 0,
    };
}

/// <summary>Runs <see cref="OpCase"/>s: compared with a reference (test mode) or timed (perf mode).</summary>
public static class OpCheck
{
    /// <summary>
    /// Runs <paramref name="c"/> on <paramref name="subject"/> and on <paramref name="reference"/> (another backend,
    /// normally the CPU) or, when that is null, evaluates its float64 definition; compares every output. An op that
    /// throws fails with the exception's message.
    /// </summary>
    public static OpCheckResult Compare(OpCase c, IBackend subject, IBackend? reference, int seed = 1)
    {
        string referenceName = reference?.Name ?? "float64";
        if (reference is null && !c.HasFloat64Reference)
            return new(c.Op, c.Dtype, c.Shape, c.ModelSized, referenceName, double.NaN, c.Threshold, "skip", "no float64 reference; checked against the CPU sampler with --device cuda");
        try
        {
            var actual = Outputs(c, subject, seed);
            var expected = reference is null ? c.Reference(seed) : Outputs(c, reference, seed).Select(o => o.Select(v => (double)v).ToArray()).ToArray();
            if (expected.Length != actual.Length) throw new InvalidOperationException($"{expected.Length} reference outputs, {actual.Length} outputs");
            double error = 0;
            for (int i = 0; i < actual.Length; i++) error = Math.Max(error, c.Error(seed, expected[i], actual[i]));
            bool passed = error <= c.Threshold;
            return new(c.Op, c.Dtype, c.Shape, c.ModelSized, referenceName, error, c.Threshold, passed ? "pass" : "FAIL");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return new(c.Op, c.Dtype, c.Shape, c.ModelSized, referenceName, double.PositiveInfinity, c.Threshold, "FAIL", $"{e.GetType().Name}: {e.Message}");
        }
    }

    private static float[][] Outputs(OpCase c, IBackend backend, int seed)
    {
        using var run = c.Prepare(backend, seed);
        run.Invoke();
        return run.Outputs();
    }

    /// <summary>
    /// Times <paramref name="c"/> on <paramref name="backend"/>: one warm-up call (compilation, buffers), then five
    /// samples of enough calls to last about <paramref name="sampleSeconds"/> (at most
    /// <see cref="OpCase.MaxCallsPerSample"/>, inputs restored before each), each ended by a device
    /// synchronisation; the median sample's time per call. Repeated calls re-read the same inputs, so a shape that
    /// fits in a cache is timed from the cache (the model-sized shapes mostly do not).
    /// </summary>
    public static OpTiming Time(OpCase c, IBackend backend, Ceilings ceilings, double sampleSeconds = 0.05, int seed = 1)
    {
        using var run = c.Prepare(backend, seed);
        run.Invoke();
        run.Synchronize();
        var clock = Stopwatch.StartNew();
        run.Invoke();
        run.Synchronize();
        double once = Math.Max(clock.Elapsed.TotalSeconds, 1e-7);
        int calls = (int)Math.Clamp(sampleSeconds / once, 1, Math.Max(1, c.MaxCallsPerSample));
        var samples = new double[5];
        for (int s = 0; s < samples.Length; s++)
        {
            run.Reset();
            run.Synchronize();
            clock.Restart();
            for (int i = 0; i < calls; i++) run.Invoke();
            run.Synchronize();
            samples[s] = clock.Elapsed.TotalSeconds / calls;
        }
        Array.Sort(samples);
        double seconds = samples[samples.Length / 2];
        var (bytes, flops) = c.Cost;
        double gbps = bytes / seconds / 1e9, gflops = flops / seconds / 1e9;
        return new OpTiming(c.Op, c.Dtype, c.Shape, c.ModelSized, seconds * 1e6, gbps, 0, gflops, 0, calls).Against(ceilings);
    }
}
