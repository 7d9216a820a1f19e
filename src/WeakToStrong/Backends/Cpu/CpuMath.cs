using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace WeakToStrong.Backends.Cpu;

/// <summary>
/// Vectorised e^x and the activations built on it, at 256 and 512 bits (the same operations lane by lane, so the
/// same bits), and the fixed-order sums every path shares. <c>Vector256.Exp</c> and <c>TensorPrimitives.Exp/Tanh</c> cost
/// 6 ns or more per element here (Tanh 60 ns until the JIT re-tiers it), which made GELU and the attention
/// softmax a visible part of a decode step; this is about 1 ns per 8 elements.
/// </summary>
internal static class CpuMath
{
    private const float Log2E = 1.44269504088896341f;
    // ln 2 split in a part exact in few bits and a remainder, so n·ln2 is subtracted without rounding error.
    private const float Ln2High = 0.693359375f;
    private const float Ln2Low = -2.12194440e-4f;
    // Above this e^x overflows F32; below the lower bound it is under the smallest normal (flushed to 0).
    private const float MaxInput = 88.3762626647949f;
    private const float MinInput = -87.3365447505531f;

    /// <summary>
    /// e^x for 8 lanes, relative error ≈ 1e-7: x = n·ln2 + r with |r| ≤ ln2/2, e^r by a degree-6 polynomial
    /// (the minimax coefficients of the Cephes library's expf), 2^n put into the exponent bits. Inputs beyond the
    /// F32 range clamp to 0 and +∞; NaN stays NaN.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Exp(Vector256<float> x)
    {
        var clamped = Vector256.Min(Vector256.Max(x, Vector256.Create(MinInput)), Vector256.Create(MaxInput));
        var n = Vector256.Round(clamped * Vector256.Create(Log2E));
        var r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2High), clamped);
        r = Vector256.FusedMultiplyAdd(n, Vector256.Create(-Ln2Low), r);
        var p = Vector256.Create(1.9875691500e-4f);
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.3981999507e-3f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(8.3334519073e-3f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(4.1665795894e-2f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(1.6666665459e-1f));
        p = Vector256.FusedMultiplyAdd(p, r, Vector256.Create(5.0000001201e-1f));
        p = Vector256.FusedMultiplyAdd(p * r, r, r + Vector256<float>.One);
        var scale = Vector256.ShiftLeft(Vector256.ConvertToInt32(n) + Vector256.Create(127), 23).AsSingle();
        var result = p * scale;
        result = Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(MinInput)), Vector256<float>.Zero, result);
        result = Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256.Create(MaxInput)), Vector256.Create(float.PositiveInfinity), result);
        return Vector256.ConditionalSelect(Vector256.Equals(x, x), result, x);
    }

    /// <summary><see cref="Exp(Vector256{float})"/> for 16 lanes: the same steps, so each lane's bits are the same.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Exp(Vector512<float> x)
    {
        var clamped = Vector512.Min(Vector512.Max(x, Vector512.Create(MinInput)), Vector512.Create(MaxInput));
        var n = Vector512.Round(clamped * Vector512.Create(Log2E));
        var r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2High), clamped);
        r = Vector512.FusedMultiplyAdd(n, Vector512.Create(-Ln2Low), r);
        var p = Vector512.Create(1.9875691500e-4f);
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.3981999507e-3f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(8.3334519073e-3f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(4.1665795894e-2f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(1.6666665459e-1f));
        p = Vector512.FusedMultiplyAdd(p, r, Vector512.Create(5.0000001201e-1f));
        p = Vector512.FusedMultiplyAdd(p * r, r, r + Vector512<float>.One);
        var scale = Vector512.ShiftLeft(Vector512.ConvertToInt32(n) + Vector512.Create(127), 23).AsSingle();
        var result = p * scale;
        result = Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create(MinInput)), Vector512<float>.Zero, result);
        result = Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512.Create(MaxInput)), Vector512.Create(float.PositiveInfinity), result);
        return Vector512.ConditionalSelect(Vector512.Equals(x, x), result, x);
    }

    /// <summary>y[i] = e^(x[i] − shift) over a span (x and y may be the same), 16 lanes at a time when
    /// <paramref name="wide"/>, then 8, then one: every element gets the same arithmetic on either path.</summary>
    public static void ExpShifted(ReadOnlySpan<float> x, float shift, Span<float> y, bool wide)
    {
        if (y.Length < x.Length) throw new ArgumentException("destination is shorter than the source", nameof(y));
        int i = 0;
        if (wide)
            for (var s16 = Vector512.Create(shift); i + 16 <= x.Length; i += 16) Exp(Vector512.Create(x.Slice(i, 16)) - s16).CopyTo(y.Slice(i, 16));
        var s = Vector256.Create(shift);
        for (; i + 8 <= x.Length; i += 8) Exp(Vector256.Create(x.Slice(i, 8)) - s).CopyTo(y.Slice(i, 8));
        for (; i < x.Length; i++) y[i] = MathF.Exp(x[i] - shift);
    }

    /// <summary>
    /// The sum of 16 lanes, held as two 8-lane halves, in one fixed order: halves added, then the two 128-bit
    /// quarters, then (0 + 2) + (1 + 3). Every reduction of every path ends here, so a 512-bit accumulator (split
    /// in its halves) and two 256-bit ones give the same bits.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Reduce(Vector256<float> lo, Vector256<float> hi)
    {
        var s = lo + hi;
        var q = s.GetLower() + s.GetUpper();
        return (q.GetElement(0) + q.GetElement(2)) + (q.GetElement(1) + q.GetElement(3));
    }

    /// <summary>Σ x[i]: 16 running sums (lane i mod 16), the first 8 continued over an 8-element tail, then
    /// <see cref="Reduce"/>, then the last elements one by one — the same on both paths.</summary>
    public static unsafe float Sum(ReadOnlySpan<float> x, bool wide)
    {
        fixed (float* p = x)
        {
            int n = x.Length, i = 0;
            Vector256<float> lo = default, hi = default;
            if (wide)
            {
                var acc = Vector512<float>.Zero;
                for (; i + 16 <= n; i += 16) acc += Vector512.Load(p + i);
                (lo, hi) = (acc.GetLower(), acc.GetUpper());
            }
            else
                for (; i + 16 <= n; i += 16)
                {
                    lo += Vector256.Load(p + i);
                    hi += Vector256.Load(p + i + 8);
                }
            if (i + 8 <= n)
            {
                lo += Vector256.Load(p + i);
                i += 8;
            }
            float sum = Reduce(lo, hi);
            for (; i < n; i++) sum += p[i];
            return sum;
        }
    }

    /// <summary>gelu_tanh(v) = ½·v·(1 + tanh(u)) with u = √(2/π)·(v + 0.044715·v³), computed as v·σ(2u) = v / (1 + e^(−2u)),
    /// the same function without a tanh.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> GeluTanh(Vector256<float> v)
    {
        const float c = 0.7978845608028654f; // √(2/π)
        var u = Vector256.Create(c) * Vector256.FusedMultiplyAdd(Vector256.Create(0.044715f) * v * v, v, v);
        return v / (Vector256<float>.One + Exp(Vector256.Create(-2f) * u));
    }

    /// <summary><see cref="GeluTanh(Vector256{float})"/> for 16 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> GeluTanh(Vector512<float> v)
    {
        const float c = 0.7978845608028654f;
        var u = Vector512.Create(c) * Vector512.FusedMultiplyAdd(Vector512.Create(0.044715f) * v * v, v, v);
        return v / (Vector512<float>.One + Exp(Vector512.Create(-2f) * u));
    }

    public static float GeluTanh(float v)
    {
        const float c = 0.7978845608028654f;
        float u = c * (v + 0.044715f * v * v * v);
        return v / (1f + MathF.Exp(-2f * u));
    }

    /// <summary>silu(a) = a · σ(a) = a / (1 + e^(−a)).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Silu(Vector256<float> a) => a / (Vector256<float>.One + Exp(-a));

    /// <summary><see cref="Silu(Vector256{float})"/> for 16 lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Silu(Vector512<float> a) => a / (Vector512<float>.One + Exp(-a));
}
