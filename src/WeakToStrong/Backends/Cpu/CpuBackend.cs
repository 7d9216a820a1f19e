using System.Runtime.CompilerServices;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using WeakToStrong.Engine;

namespace WeakToStrong.Backends.Cpu;

/// <summary>
/// The CPU backend: SIMD (System.Numerics.Tensors, Vector256 and Vector512) and multi-threaded. It is the embedded
/// default and the reference every other backend is tested against, so each op is written for clarity first. Its
/// path (<see cref="Isa"/>) sets the vector width; sums run over 16 lanes in one fixed order on every path
/// (<see cref="CpuMath.Reduce"/>), so every path gives the same bits.
/// </summary>
public sealed unsafe class CpuBackend : IBackend
{
    /// <summary>A backend on <see cref="CpuIsas.Default"/>: the widest vectors this CPU has, unless <c>W2S_CPU_ISA</c>
    /// forces a path.</summary>
    public CpuBackend() : this(CpuIsas.Default)
    {
    }

    /// <summary>A backend on the given path; throws <see cref="ArgumentException"/> if this CPU cannot run it.</summary>
    public CpuBackend(CpuIsa isa)
    {
        if (!CpuIsas.IsSupported(isa)) throw new ArgumentException($"this CPU cannot run the {CpuIsas.Name(isa)} path", nameof(isa));
        Isa = isa;
    }

    public string Name => "cpu";

    /// <summary>The vector width every op of this backend runs at (results are the same bits on every path).</summary>
    public CpuIsa Isa { get; }

    public Tensor Allocate(DType dtype, long length) => new CpuTensor(dtype, length);

    private static CpuTensor Cpu(Tensor t) => t as CpuTensor ?? throw new ArgumentException($"tensor belongs to another backend ({t.GetType().Name})");

    /// <summary>An F32 tensor's data; any other dtype is refused (reading F16/BF16 bytes as floats gives garbage).</summary>
    private static float* P(Tensor t, [CallerArgumentExpression(nameof(t))] string name = "")
    {
        var c = Cpu(t);
        if (c.DType != DType.F32) throw new ArgumentException($"{name} must be F32, is {c.DType}", name);
        return c.F32;
    }

    private static float* POrNull(Tensor? t, [CallerArgumentExpression(nameof(t))] string name = "") => t is null ? null : P(t, name);

    public void Upload(Tensor destination, ReadOnlySpan<byte> source, long elementOffset = 0)
    {
        var d = Cpu(destination);
        long byteOffset = elementOffset * d.DType.Size();
        if (byteOffset < 0 || byteOffset + source.Length > d.ByteLength) throw new ArgumentOutOfRangeException(nameof(elementOffset));
        source.CopyTo(new Span<byte>(d.Pointer + byteOffset, source.Length));
    }

    public void Download(Tensor source, Span<float> destination)
    {
        var s = Cpu(source);
        if (s.DType != DType.F32) throw new ArgumentException("only F32 tensors can be downloaded", nameof(source));
        if (destination.Length > s.Length) throw new ArgumentOutOfRangeException(nameof(destination));
        new ReadOnlySpan<float>(s.F32, destination.Length).CopyTo(destination);
    }

    public void BeginBatch(BatchLayout layout) => ArgumentNullException.ThrowIfNull(layout);

    public void Embed(BatchLayout layout, Tensor tokenEmbedding, Tensor? positionEmbedding, Tensor x, int dim)
    {
        var table = Cpu(tokenEmbedding);
        float* xp = P(x);
        for (int t = 0; t < layout.TokenCount; t++)
        {
            var row = new Span<float>(xp + (long)t * dim, dim);
            if (table.PackedRows > 0) CpuLinear.Row(table, layout.Tokens[t], row);
            else RowToFloat(table, layout.Tokens[t], dim, row);
            if (positionEmbedding is not null)
                TensorPrimitives.Add(row, new ReadOnlySpan<float>(P(positionEmbedding) + (long)layout.Positions[t] * dim, dim), row);
        }
    }

    private static void RowToFloat(CpuTensor table, int row, int dim, Span<float> destination)
    {
        long offset = (long)row * dim;
        switch (table.DType)
        {
            case DType.F32:
                new ReadOnlySpan<float>(table.F32 + offset, dim).CopyTo(destination);
                break;
            case DType.F16:
                TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>((Half*)table.Pointer + offset, dim), destination);
                break;
            case DType.BF16:
                var source = new ReadOnlySpan<ushort>((ushort*)table.Pointer + offset, dim);
                for (int i = 0; i < dim; i++) destination[i] = BitConverter.Int32BitsToSingle(source[i] << 16);
                break;
            default:
                throw new ArgumentException($"embedding dtype {table.DType} is not a float type");
        }
    }

    public void AddNorm(Tensor residual, Tensor? delta, Tensor weight, Tensor? bias, Tensor y, int rows, int dim, NormKind kind, float eps)
    {
        nint rp = (nint)P(residual), dp = (nint)POrNull(delta), wp = (nint)P(weight), bp = (nint)POrNull(bias), yp = (nint)P(y);
        bool wide = Isa == CpuIsa.Avx512;
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

    /// <summary>Packs the weight into 16-row panels (<see cref="CpuLinear.Pack"/>), in its own dtype.</summary>
    public Tensor PrepareLinear(Tensor w, int outDim, int inDim)
    {
        var wt = Cpu(w);
        if (wt.PackedRows > 0) throw new ArgumentException("weight is already prepared", nameof(w));
        var packed = CpuLinear.Pack(wt, outDim, inDim);
        w.Dispose();
        return packed;
    }

    public Tensor LoadLinear(ReadOnlySpan<byte> bytes, DType dtype, int outDim, int inDim, bool transposed = false)
    {
        if (bytes.Length != (long)outDim * inDim * dtype.Size()) throw new ArgumentException($"{bytes.Length} bytes are not a [{outDim}, {inDim}] {dtype} weight", nameof(bytes));
        fixed (byte* source = bytes)
            return transposed ? CpuLinear.PackFromTransposed(source, dtype, outDim, inDim) : CpuLinear.PackFrom(source, dtype, outDim, inDim);
    }

    /// <summary><see cref="LinearWeights.Int8"/> quantizes straight from the bytes into int8 panels (CpuLinear.Int8.cs).</summary>
    public Tensor LoadLinear(ReadOnlySpan<byte> bytes, DType dtype, int outDim, int inDim, bool transposed, LinearWeights format)
    {
        if (format == LinearWeights.Stored) return LoadLinear(bytes, dtype, outDim, inDim, transposed);
        if (format != LinearWeights.Int8) throw new ArgumentOutOfRangeException(nameof(format), format, null);
        if (bytes.Length != (long)outDim * inDim * dtype.Size()) throw new ArgumentException($"{bytes.Length} bytes are not a [{outDim}, {inDim}] {dtype} weight", nameof(bytes));
        fixed (byte* source = bytes)
            return CpuLinear.PackInt8(source, dtype, outDim, inDim, transposed);
    }

    public void Linear(Tensor x, Tensor w, Tensor? bias, Tensor y, int rows, int inDim, int outDim) =>
        CpuLinear.Run(Isa, P(x), Cpu(w), POrNull(bias), P(y), rows, inDim, outDim);

    public void RopeAndCacheWrite(BatchLayout layout, Tensor qkv, Tensor keyCache, Tensor valueCache, RopeTable? rope, int heads, int kvHeads, int headDim, int blockSize)
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

    public void Attention(BatchLayout layout, Tensor qkv, Tensor keyCache, Tensor valueCache, Tensor output, int heads, int kvHeads, int headDim, int blockSize)
    {
        int width = (heads + 2 * kvHeads) * headDim, kvWidth = kvHeads * headDim, group = heads / kvHeads;
        nint qp = (nint)P(qkv), kp = (nint)P(keyCache), vp = (nint)P(valueCache), op = (nint)P(output);
        float scale = 1f / MathF.Sqrt(headDim);
        bool wide = Isa == CpuIsa.Avx512;
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

    /// <summary>gelu_tanh(v) = 0.5·v·(1 + tanh(√(2/π)·(v + 0.044715·v³))) (see <see cref="CpuMath.GeluTanh(Vector256{float})"/>).</summary>
    public void GeluTanh(Tensor x, long count)
    {
        const int chunk = 1 << 12;
        nint pp = (nint)P(x);
        bool wide = Isa == CpuIsa.Avx512;
        CpuParallel.For((int)((count + chunk - 1) / chunk), c =>
        {
            float* v = (float*)pp + (long)c * chunk;
            int n = (int)Math.Min(chunk, count - (long)c * chunk), i = 0;
            if (wide)
                for (; i + 16 <= n; i += 16) CpuMath.GeluTanh(Vector512.Load(v + i)).Store(v + i);
            for (; i + 8 <= n; i += 8) CpuMath.GeluTanh(Vector256.Load(v + i)).Store(v + i);
            for (; i < n; i++) v[i] = CpuMath.GeluTanh(v[i]);
        }, serial: count < 1 << 14);
    }

    public void SiluGate(Tensor gateUp, Tensor y, int rows, int ff)
    {
        nint gp = (nint)P(gateUp), yp = (nint)P(y);
        bool wide = Isa == CpuIsa.Avx512;
        CpuParallel.For(rows, r =>
        {
            float* g = (float*)gp + (long)r * 2 * ff;
            float* o = (float*)yp + (long)r * ff;
            int i = 0;
            if (wide)
                for (; i + 16 <= ff; i += 16) (CpuMath.Silu(Vector512.Load(g + i)) * Vector512.Load(g + ff + i)).Store(o + i);
            for (; i + 8 <= ff; i += 8) (CpuMath.Silu(Vector256.Load(g + i)) * Vector256.Load(g + ff + i)).Store(o + i);
            for (; i < ff; i++) o[i] = g[i] / (1f + MathF.Exp(-g[i])) * g[ff + i];
        }, serial: (long)rows * ff < 1 << 14);
    }

    public void GatherRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination, int dim)
    {
        float* s = P(source), d = P(destination);
        for (int i = 0; i < rows.Length; i++)
            new ReadOnlySpan<float>(s + (long)rows[i] * dim, dim).CopyTo(new Span<float>(d + (long)i * dim, dim));
    }

    public void LogProbOfTargets(Tensor logits, int rows, int vocab, ReadOnlySpan<int> targets, Span<float> result)
    {
        if (targets.Length < rows || result.Length < rows) throw new ArgumentException("targets and result need one entry per row");
        for (int r = 0; r < rows; r++)
            if ((uint)targets[r] >= (uint)vocab) throw new ArgumentOutOfRangeException(nameof(targets), targets[r], $"target id outside the vocabulary [0, {vocab})");
        nint l = (nint)P(logits);
        var ids = targets[..rows].ToArray();
        var values = new float[rows];
        bool wide = Isa == CpuIsa.Avx512;
        CpuParallel.For(rows, r =>
        {
            var row = new ReadOnlySpan<float>((float*)l + (long)r * vocab, vocab);
            values[r] = (float)(row[ids[r]] - LogSumExp(row, wide));
        }, serial: rows == 1);
        values.CopyTo(result);
    }

    /// <summary>log Σ exp(x), in one streaming pass over the row: e^(x − max) summed in 16 lanes as
    /// <see cref="CpuMath.Sum"/> does, the last elements and the log in float64.</summary>
    internal static double LogSumExp(ReadOnlySpan<float> row, bool wide)
    {
        float max = TensorPrimitives.Max(row);
        ref float first = ref MemoryMarshal.GetReference(row);
        var m = Vector256.Create(max);
        Vector256<float> lo = default, hi = default;
        int i = 0;
        if (wide)
        {
            var m16 = Vector512.Create(max);
            var acc = Vector512<float>.Zero;
            for (; i + 16 <= row.Length; i += 16) acc += CpuMath.Exp(Vector512.LoadUnsafe(ref first, (nuint)i) - m16);
            (lo, hi) = (acc.GetLower(), acc.GetUpper());
        }
        else
            for (; i + 16 <= row.Length; i += 16)
            {
                lo += CpuMath.Exp(Vector256.LoadUnsafe(ref first, (nuint)i) - m);
                hi += CpuMath.Exp(Vector256.LoadUnsafe(ref first, (nuint)(i + 8)) - m);
            }
        if (i + 8 <= row.Length)
        {
            lo += CpuMath.Exp(Vector256.LoadUnsafe(ref first, (nuint)i) - m);
            i += 8;
        }
        double sum = CpuMath.Reduce(lo, hi);
        for (; i < row.Length; i++) sum += Math.Exp(row[i] - max);
        return max + Math.Log(sum);
    }

    public void Sample(Tensor logits, int vocab, ReadOnlySpan<SamplingRow> rows, Span<int> result)
    {
        nint l = (nint)P(logits);
        var settings = rows.ToArray();
        var tokens = new int[settings.Length];
        CpuParallel.For(settings.Length, r => tokens[r] = CpuSampler.Sample(new ReadOnlySpan<float>((float*)l + (long)r * vocab, vocab), settings[r]), serial: settings.Length == 1);
        tokens.CopyTo(result);
    }

    public void CopyBlock(Tensor keyCache, Tensor valueCache, KvGeometry geometry, int sourceBlock, int destinationBlock)
    {
        long n = geometry.BlockElements;
        foreach (var pool in new[] { keyCache, valueCache })
        {
            float* p = P(pool);
            new ReadOnlySpan<float>(p + sourceBlock * n, (int)n).CopyTo(new Span<float>(p + destinationBlock * n, (int)n));
        }
    }

    public void Dispose()
    {
    }
}
