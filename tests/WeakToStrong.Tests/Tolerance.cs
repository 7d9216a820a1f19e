using WeakToStrong.Backends;

namespace WeakToStrong.Tests;

/// <summary>
/// The one closeness rule of the op and kernel tests: |a − b| ≤ atol + rtol·|ref|. For kernel-vs-CPU checks both sides compute in F32 from the
/// same (exactly widened) inputs; they differ only in summation order (warp trees vs the CPU's SIMD lanes) and
/// in libm vs CUDA math, so the bounds are a few F32 ulps scaled by the reduction length, per weight type.
/// </summary>
internal readonly record struct Tolerance(double Absolute, double Relative)
{
    public static Tolerance F32 { get; } = new(2e-5, 2e-5);

    /// <summary>16-bit weights widen exactly to F32, so the F32 bounds hold; kept apart for a reason to diverge.</summary>
    public static Tolerance Bf16 { get; } = new(2e-5, 2e-5);

    public static Tolerance F16 { get; } = new(2e-5, 2e-5);

    /// <summary>Attention: a softmax over up to a few hundred keys re-associated by the online form and split-K.</summary>
    public static Tolerance Attention { get; } = new(5e-5, 5e-5);

    public static Tolerance For(DType weights) => weights switch
    {
        DType.BF16 => Bf16,
        DType.F16 => F16,
        _ => F32,
    };

    /// <summary>One value against its reference (a float64 evaluation of the definition, or the CPU op).</summary>
    public void AssertClose(double expected, double actual, string what)
    {
        double bound = Absolute + Relative * Math.Abs(expected);
        if (!(Math.Abs(actual - expected) <= bound))
            Assert.Fail($"{what}: expected {expected:R}, got {actual:R}, |diff| {Math.Abs(actual - expected):G3} > {bound:G3}");
    }

    public void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i];
            if (double.IsNaN(e) && double.IsNaN(a)) continue;
            double bound = Absolute + Relative * Math.Abs(e);
            if (!(Math.Abs(a - e) <= bound))
                Assert.Fail($"{what}: element {i} of {expected.Length}: cpu {e:R}, cuda {a:R}, |diff| {Math.Abs(a - e):G3} > {bound:G3}");
        }
    }
}
