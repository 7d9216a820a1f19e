using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using static WeakToStrong.Backends.Cpu.CpuTensor;

namespace WeakToStrong.Backends.Cpu;

/// <summary>
/// Causal attention over the paged KV cache (GQA) of <see cref="CpuBackend"/>: the reference for
/// kernels/attention.cu. Per query head, the scores of every position are computed, softmaxed (the whole row at
/// once, where the kernel's softmax is online) and used to sum the values; every sum runs in one fixed order, so
/// every path and batch shape gives the same bits.
/// </summary>
internal static unsafe class CpuAttention
{
    public static void Attention(CpuIsa isa, BatchLayout layout, Tensor qkv, Tensor keyCache, Tensor valueCache, Tensor output, int heads, int kvHeads, int headDim, int blockSize)
    {
        int width = (heads + 2 * kvHeads) * headDim, kvWidth = kvHeads * headDim, group = heads / kvHeads;
        nint qp = (nint)P(qkv), kp = (nint)P(keyCache), vp = (nint)P(valueCache), op = (nint)P(output);
        float scale = 1f / MathF.Sqrt(headDim);
        bool wide = isa == CpuIsa.Avx512;
        int[] tables = layout.BlockTables;
        int maxBlocks = layout.MaxBlocksPerSequence;
        long work = 0;
        foreach (int p in layout.Positions) work += p + 1;
        // One item per (token, head) when there are few tokens; with many, one item per token covering every head,
        // so that each position's keys and values ([kvHeads, headDim], contiguous) stream through once instead of
        // once per head at a 4-line stride. Each head's arithmetic is the same either way.
        int headsPerItem = layout.TokenCount >= 4 * CpuParallel.Threads ? heads : 1;
        int itemsPerToken = heads / headsPerItem;
        CpuParallel.For(layout.TokenCount * itemsPerToken, item =>
        {
            int t = item / itemsPerToken, h0 = item % itemsPerToken * headsPerItem;
            int context = layout.Positions[t] + 1;
            int table = layout.TokenSequence[t] * maxBlocks;
            float* q = (float*)qp + (long)t * width;
            float* o = (float*)op + (long)t * heads * headDim;
            var scores = Scratch(headsPerItem * context); // [headsPerItem, context]
            // Walk the block table block by block (no division per position).
            for (int b = 0, p = 0; p < context; b++)
            {
                float* keys = (float*)kp + (long)tables[table + b] * blockSize * kvWidth;
                int end = Math.Min(context, p + blockSize);
                if (headsPerItem == 1)
                {
                    // One head: four positions at a time (four independent dot products in flight).
                    float* qh = q + h0 * headDim;
                    int kvOffset = h0 / group * headDim;
                    for (; p + 4 <= end; p += 4, keys += 4 * kvWidth)
                    {
                        float* k0 = keys + kvOffset;
                        var d = Dot4(qh, k0, qh, k0 + kvWidth, qh, k0 + 2 * kvWidth, qh, k0 + 3 * kvWidth, headDim, wide) * scale;
                        d.CopyTo(scores.AsSpan(p, 4));
                    }
                }
                for (; p < end; p++, keys += kvWidth)
                {
                    int j = 0;
                    for (; j + 4 <= headsPerItem; j += 4)
                    {
                        int h = h0 + j;
                        var d = Dot4(q + h * headDim, keys + h / group * headDim, q + (h + 1) * headDim, keys + (h + 1) / group * headDim,
                            q + (h + 2) * headDim, keys + (h + 2) / group * headDim, q + (h + 3) * headDim, keys + (h + 3) / group * headDim, headDim, wide) * scale;
                        scores[j * context + p] = d[0];
                        scores[(j + 1) * context + p] = d[1];
                        scores[(j + 2) * context + p] = d[2];
                        scores[(j + 3) * context + p] = d[3];
                    }
                    for (; j < headsPerItem; j++)
                    {
                        int h = h0 + j;
                        scores[j * context + p] = Dot(q + h * headDim, keys + h / group * headDim, headDim, wide) * scale;
                    }
                }
            }
            Span<float> inv = stackalloc float[headsPerItem];
            for (int j = 0; j < headsPerItem; j++)
            {
                var row = scores.AsSpan(j * context, context);
                CpuMath.ExpShifted(row, TensorPrimitives.Max<float>(row), row, wide);
                inv[j] = 1f / CpuMath.Sum(row, wide);
                new Span<float>(o + (h0 + j) * headDim, headDim).Clear();
            }
            for (int b = 0, p = 0; p < context; b++)
            {
                float* values = (float*)vp + (long)tables[table + b] * blockSize * kvWidth;
                for (int end = Math.Min(context, p + blockSize); p < end; p++, values += kvWidth)
                    for (int j = 0; j < headsPerItem; j++)
                    {
                        int h = h0 + j;
                        Axpy(scores[j * context + p] * inv[j], values + h / group * headDim, o + h * headDim, headDim, wide);
                    }
            }
        }, serial: work * headDim * heads < 1 << 15);
    }

    /// <summary>Σ a[i]·b[i]: 16 FMA chains (lane i mod 16; one 512-bit vector or two 256-bit halves), the low 8
    /// continued over an 8-element tail, <see cref="CpuMath.Reduce"/>, then the last elements one by one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Dot(float* a, float* b, int n, bool wide)
    {
        int i = 0;
        Vector256<float> lo = default, hi = default;
        if (wide)
        {
            var acc = Vector512<float>.Zero;
            for (; i + 16 <= n; i += 16) acc = Vector512.FusedMultiplyAdd(Vector512.Load(a + i), Vector512.Load(b + i), acc);
            (lo, hi) = (acc.GetLower(), acc.GetUpper());
        }
        else
            for (; i + 16 <= n; i += 16)
            {
                lo = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), lo);
                hi = Vector256.FusedMultiplyAdd(Vector256.Load(a + i + 8), Vector256.Load(b + i + 8), hi);
            }
        if (i + 8 <= n)
        {
            lo = Vector256.FusedMultiplyAdd(Vector256.Load(a + i), Vector256.Load(b + i), lo);
            i += 8;
        }
        float sum = CpuMath.Reduce(lo, hi);
        for (; i < n; i++) sum += a[i] * b[i];
        return sum;
    }

    /// <summary>Four independent <see cref="Dot"/>s at once (the same arithmetic per pair, more FMA chains in flight).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<float> Dot4(float* a0, float* b0, float* a1, float* b1, float* a2, float* b2, float* a3, float* b3, int n, bool wide)
    {
        int i = 0;
        Vector256<float> l0 = default, h0 = default, l1 = default, h1 = default, l2 = default, h2 = default, l3 = default, h3 = default;
        if (wide)
        {
            Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
            for (; i + 16 <= n; i += 16)
            {
                c0 = Vector512.FusedMultiplyAdd(Vector512.Load(a0 + i), Vector512.Load(b0 + i), c0);
                c1 = Vector512.FusedMultiplyAdd(Vector512.Load(a1 + i), Vector512.Load(b1 + i), c1);
                c2 = Vector512.FusedMultiplyAdd(Vector512.Load(a2 + i), Vector512.Load(b2 + i), c2);
                c3 = Vector512.FusedMultiplyAdd(Vector512.Load(a3 + i), Vector512.Load(b3 + i), c3);
            }
            (l0, h0, l1, h1) = (c0.GetLower(), c0.GetUpper(), c1.GetLower(), c1.GetUpper());
            (l2, h2, l3, h3) = (c2.GetLower(), c2.GetUpper(), c3.GetLower(), c3.GetUpper());
        }
        else
            for (; i + 16 <= n; i += 16)
            {
                l0 = Vector256.FusedMultiplyAdd(Vector256.Load(a0 + i), Vector256.Load(b0 + i), l0);
                h0 = Vector256.FusedMultiplyAdd(Vector256.Load(a0 + i + 8), Vector256.Load(b0 + i + 8), h0);
                l1 = Vector256.FusedMultiplyAdd(Vector256.Load(a1 + i), Vector256.Load(b1 + i), l1);
                h1 = Vector256.FusedMultiplyAdd(Vector256.Load(a1 + i + 8), Vector256.Load(b1 + i + 8), h1);
                l2 = Vector256.FusedMultiplyAdd(Vector256.Load(a2 + i), Vector256.Load(b2 + i), l2);
                h2 = Vector256.FusedMultiplyAdd(Vector256.Load(a2 + i + 8), Vector256.Load(b2 + i + 8), h2);
                l3 = Vector256.FusedMultiplyAdd(Vector256.Load(a3 + i), Vector256.Load(b3 + i), l3);
                h3 = Vector256.FusedMultiplyAdd(Vector256.Load(a3 + i + 8), Vector256.Load(b3 + i + 8), h3);
            }
        if (i + 8 <= n)
        {
            l0 = Vector256.FusedMultiplyAdd(Vector256.Load(a0 + i), Vector256.Load(b0 + i), l0);
            l1 = Vector256.FusedMultiplyAdd(Vector256.Load(a1 + i), Vector256.Load(b1 + i), l1);
            l2 = Vector256.FusedMultiplyAdd(Vector256.Load(a2 + i), Vector256.Load(b2 + i), l2);
            l3 = Vector256.FusedMultiplyAdd(Vector256.Load(a3 + i), Vector256.Load(b3 + i), l3);
            i += 8;
        }
        float s0 = CpuMath.Reduce(l0, h0), s1 = CpuMath.Reduce(l1, h1), s2 = CpuMath.Reduce(l2, h2), s3 = CpuMath.Reduce(l3, h3);
        for (; i < n; i++)
        {
            s0 += a0[i] * b0[i];
            s1 += a1[i] * b1[i];
            s2 += a2[i] * b2[i];
            s3 += a3[i] * b3[i];
        }
        return Vector128.Create(s0, s1, s2, s3);
    }

    /// <summary>y += alpha·x (one FMA per element, whatever the width).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Axpy(float alpha, float* x, float* y, int n, bool wide)
    {
        int i = 0;
        if (wide)
            for (var a16 = Vector512.Create(alpha); i + 16 <= n; i += 16) Vector512.FusedMultiplyAdd(a16, Vector512.Load(x + i), Vector512.Load(y + i)).Store(y + i);
        var a = Vector256.Create(alpha);
        for (; i + 8 <= n; i += 8) Vector256.FusedMultiplyAdd(a, Vector256.Load(x + i), Vector256.Load(y + i)).Store(y + i);
        for (; i < n; i++) y[i] += alpha * x[i];
    }

    [ThreadStatic] private static float[]? _scratch;

    private static float[] Scratch(int length)
    {
        var s = _scratch;
        if (s is null || s.Length < length) _scratch = s = new float[Math.Max(length, 1024)];
        return s;
    }
}
