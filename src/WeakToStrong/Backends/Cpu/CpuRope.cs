using static WeakToStrong.Backends.Cpu.CpuTensor;

namespace WeakToStrong.Backends.Cpu;

/// <summary>
/// Rotate-half RoPE on q and k fused with the paged-KV write, of <see cref="CpuBackend"/>: the reference for
/// kernels/rope.cu. Angles in float64.
/// </summary>
internal static unsafe class CpuRope
{
    public static void RopeAndCacheWrite(BatchLayout layout, Tensor qkv, Tensor keyCache, Tensor valueCache, RopeTable? rope, int heads, int kvHeads, int headDim)
    {
        int width = (heads + 2 * kvHeads) * headDim, kvWidth = kvHeads * headDim;
        float* q0 = P(qkv), kc = P(keyCache), vc = P(valueCache);
        int half = headDim / 2;
        Span<float> cos = stackalloc float[half], sin = stackalloc float[half];
        for (int t = 0; t < layout.TokenCount; t++)
        {
            float* q = q0 + (long)t * width;
            float* k = q + heads * headDim;
            float* v = k + kvWidth;
            if (rope is not null)
            {
                double position = layout.Positions[t];
                for (int i = 0; i < half; i++)
                {
                    double angle = position * rope.InverseFrequencies[i];
                    cos[i] = (float)Math.Cos(angle);
                    sin[i] = (float)Math.Sin(angle);
                }
                for (int h = 0; h < heads; h++) Rotate(q + h * headDim, cos, sin);
                for (int h = 0; h < kvHeads; h++) Rotate(k + h * headDim, cos, sin);
            }
            long slot = layout.SlotMapping[t];
            new ReadOnlySpan<float>(k, kvWidth).CopyTo(new Span<float>(kc + slot * kvWidth, kvWidth));
            new ReadOnlySpan<float>(v, kvWidth).CopyTo(new Span<float>(vc + slot * kvWidth, kvWidth));
        }
    }

    /// <summary>Rotate-half: (x1, x2) → (x1·cos − x2·sin, x2·cos + x1·sin), pairing i with i + d/2.</summary>
    private static void Rotate(float* x, ReadOnlySpan<float> cos, ReadOnlySpan<float> sin)
    {
        int half = cos.Length;
        for (int i = 0; i < half; i++)
        {
            float a = x[i], b = x[i + half];
            x[i] = a * cos[i] - b * sin[i];
            x[i + half] = b * cos[i] + a * sin[i];
        }
    }
}
