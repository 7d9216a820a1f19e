namespace WeakToStrong.Diagnostics.Ops;

/// <summary>
/// The largest error each op may show, by op and weight type, as a normalised mean squared error
/// Σ(a − r)² / Σr² (the measure of llama.cpp's test-backend-ops). Both sides of every comparison compute from the
/// same inputs: 16-bit weights widen to F32 exactly, so the backends differ from each other and from the float64
/// definition only by F32 rounding (≈ 6e-8 relative per operation, growing with reduction length and through
/// exp/tanh), which puts the measured errors near 1e-14; 1e-10 leaves room for long reductions while a real
/// defect (a wrong index, a dropped term, a 1e-4 slip) lands far above it. Copies and sampling must be exact.
/// </summary>
public static class OpThresholds
{
    /// <summary>The threshold for <paramref name="op"/> with weights in <paramref name="dtype"/>.</summary>
    public static double For(string op, string dtype) => (op, dtype) switch
    {
        ("gather_rows" or "copy_block", _) => 0,
        ("sample", _) => 0,            // the fraction of rows whose token differs
        ("embed", _) => 1e-12,         // a widening plus at most one F32 add
        ("linear", "f32" or "bf16" or "f16") => 1e-10,
        ("attention", _) => 1e-10,     // online softmax and split-K re-associate the sums
        _ => 1e-10,
    };

    /// <summary>Σ(a − r)² / Σr² (Σ(a − r)² where the reference is all zeros); infinity for a NaN or a length mismatch.</summary>
    public static double NormalisedSquaredError(double[] expected, float[] actual)
    {
        if (expected.Length != actual.Length) return double.PositiveInfinity;
        double error = 0, norm = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = actual[i] - expected[i];
            error += d * d;
            norm += expected[i] * expected[i];
        }
        if (double.IsNaN(error) || double.IsInfinity(error)) return double.PositiveInfinity;
        return norm > 0 ? error / norm : error;
    }
}
