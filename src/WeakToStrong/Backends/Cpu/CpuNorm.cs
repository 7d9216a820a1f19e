using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using static WeakToStrong.Backends.Cpu.CpuTensor;

namespace WeakToStrong.Backends.Cpu;

/// <summary>
/// The residual add fused with LayerNorm / RMSNorm of <see cref="CpuBackend"/>: the reference for kernels/norm.cu.
/// Statistics in float64, one element after another, so every path gives the same bits.
/// </summary>
internal static unsafe class CpuNorm
{
    public static void AddNorm(CpuIsa isa, Tensor residual, Tensor? delta, Tensor weight, Tensor? bias, Tensor y, int rows, int dim, NormKind kind, float eps)
    {
        nint rp = (nint)P(residual), dp = (nint)POrNull(delta), wp = (nint)P(weight), bp = (nint)POrNull(bias), yp = (nint)P(y);
        bool wide = isa == CpuIsa.Avx512;
        CpuParallel.For(rows, r =>
        {
            var x = new Span<float>((float*)rp + (long)r * dim, dim);
            if (dp != 0) TensorPrimitives.Add(x, new ReadOnlySpan<float>((float*)dp + (long)r * dim, dim), x);
            var o = new Span<float>((float*)yp + (long)r * dim, dim);
            var w = new ReadOnlySpan<float>((float*)wp, dim);
            if (kind == NormKind.LayerNorm)
            {
                float mean = CpuMath.Sum(x, wide) / dim;
                // The variance in float64, one by one: the same on every path, and a few hundred operations per row.
                double variance = 0;
                foreach (float v in x) variance += (double)(v - mean) * (v - mean);
                float inv = (float)(1.0 / Math.Sqrt(variance / dim + eps));
                ScaleRow(x, mean, inv, w, o, wide);
                if (bp != 0) TensorPrimitives.Add(o, new ReadOnlySpan<float>((float*)bp, dim), o);
            }
            else
            {
                double sumSquares = 0;
                foreach (float v in x) sumSquares += (double)v * v;
                float inv = (float)(1.0 / Math.Sqrt(sumSquares / dim + eps));
                ScaleRow(x, 0f, inv, w, o, wide); // x − 0 is x, −0 included
            }
        }, serial: rows == 1 || (long)rows * dim < 1 << 12);
    }

    /// <summary>o[i] = (x[i] − mean) · inv · w[i], left to right, 16, 8 and then 1 element at a time.</summary>
    private static void ScaleRow(ReadOnlySpan<float> x, float mean, float inv, ReadOnlySpan<float> w, Span<float> o, bool wide)
    {
        int i = 0, n = x.Length;
        if (wide)
            for (; i + 16 <= n; i += 16)
                ((Vector512.Create(x.Slice(i, 16)) - Vector512.Create(mean)) * Vector512.Create(inv) * Vector512.Create(w.Slice(i, 16))).CopyTo(o.Slice(i, 16));
        for (; i + 8 <= n; i += 8)
            ((Vector256.Create(x.Slice(i, 8)) - Vector256.Create(mean)) * Vector256.Create(inv) * Vector256.Create(w.Slice(i, 8))).CopyTo(o.Slice(i, 8));
        for (; i < n; i++) o[i] = (x[i] - mean) * inv * w[i];
    }
}
