using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace WeakToStrong.Backends.Cpu;

/// <summary>
/// y[t, n] = Σ_k x[t, k] · W[n, k] (+ b[n]) with W [N, K] in F32, BF16 or F16, read directly (no F32 copy of the
/// model). Work is split over output rows; each task takes 4 rows at a time and runs them against the tokens in
/// register tiles of 4 rows × 2 tokens. Every (row, token) dot product is summed in the same order whatever the
/// tile or batch shape, so a sequence's results do not depend on what else is in the batch.
/// </summary>
internal static unsafe class CpuLinear
{
    private const int RowTile = 4;

    /// <summary>Weight bytes per parallel task: each task starts cold (its first rows wait on DRAM), so tasks must
    /// be long enough for the prefetched stream to dominate, yet numerous enough to balance the cores.</summary>
    private const int TaskBytes = 64 << 10;

    [ThreadStatic] private static float[]? _scratch;
    [ThreadStatic] private static float[]? _permuted;

    public static void Run(float* x, CpuTensor w, float* bias, float* y, int tokens, int k, int n)
    {
        if (w.DType != DType.BF16)
        {
            RunTasks(x, w, bias, y, tokens, k, n);
            return;
        }
        // BF16 rows are consumed in unpack order (see UnpackBf16); x is put in the same order once per call.
        var permuted = _permuted;
        if (permuted is null || permuted.Length < tokens * k) _permuted = permuted = new float[Math.Max(tokens * k, 4096)];
        fixed (float* xp = permuted)
        {
            for (int t = 0; t < tokens; t++) PermuteForBf16(x + (long)t * k, xp + (long)t * k, k);
            RunTasks(xp, w, bias, y, tokens, k, n);
        }
    }

    private static void RunTasks(float* x, CpuTensor w, float* bias, float* y, int tokens, int k, int n)
    {
        int rowsPerTask = Math.Max(RowTile, TaskBytes / (k * w.DType.Size()) / RowTile * RowTile);
        rowsPerTask = Math.Min(rowsPerTask, Math.Max(RowTile, (n / (4 * CpuParallel.Threads) + RowTile - 1) / RowTile * RowTile));
        int tasks = (n + rowsPerTask - 1) / rowsPerTask;
        nint xp = (nint)x, bp = (nint)bias, yp = (nint)y, wp = (nint)w.Pointer;
        var dtype = w.DType;
        CpuParallel.For(tasks, task =>
        {
            int n0 = task * rowsPerTask, n1 = Math.Min(n, n0 + rowsPerTask);
            RowRange((float*)xp, wp, dtype, (float*)bp, (float*)yp, tokens, k, n, n0, n1);
        }, serial: (long)tokens * k * n < 1 << 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void RowRange(float* x, nint w, DType dtype, float* bias, float* y, int tokens, int k, int n, int n0, int n1)
    {
        bool direct = dtype == DType.F32 || (dtype == DType.BF16 && tokens <= 2);
        float[]? scratch = null;
        if (!direct)
        {
            scratch = _scratch;
            if (scratch is null || scratch.Length < RowTile * k) _scratch = scratch = new float[RowTile * k];
        }

        if (dtype == DType.BF16 && direct)
        {
            // Eight rows per pass: twice the independent FMA chains per weight stream of the F32 tiles.
            for (int r = n0; r < n1; r += 2 * RowTile)
            {
                int rows = Math.Min(2 * RowTile, n1 - r), next = Math.Min(2 * RowTile, n1 - r - rows);
                var prefetch = new Prefetcher((byte*)((ushort*)w + (long)(r + rows) * k), next > 0 ? (long)next * k * sizeof(ushort) : 0);
                ushort* wr = (ushort*)w + (long)r * k;
                for (int t = 0; t < tokens; t++)
                {
                    if (rows == 2 * RowTile) TileBf16x8(x + (long)t * k, wr, y + (long)t * n + r, k, ref prefetch);
                    else TileBf16(x + (long)t * k, wr, y + (long)t * n + r, rows, k, ref prefetch);
                }
            }
            AddBias(bias, y, tokens, n, n0, n1);
            return;
        }

        fixed (float* s = scratch)
        {
            for (int r = n0; r < n1; r += RowTile)
            {
                int rows = Math.Min(RowTile, n1 - r);
                // While this tile computes, pull the next tile's rows towards the cache (weights are read once per
                // step from DRAM; without this the first token's pass over a tile waits on memory latency).
                int size = dtype.Size();
                int nextRows = Math.Min(RowTile, n1 - r - RowTile);
                var prefetch = new Prefetcher((byte*)w + (long)(r + RowTile) * k * size, nextRows > 0 ? (long)nextRows * k * size : 0);
                float* wf;
                if (dtype == DType.F32) wf = (float*)w + (long)r * k;
                else
                {
                    ToFloat((ushort*)w + (long)r * k, dtype, s, rows * k, k, ref prefetch);
                    wf = s;
                }
                int t0 = 0;
                // Tokens in threes, then twos; a lone last token (a remainder of 1 after threes, e.g. 16 = 5·3 + 1)
                // is avoided by taking 2 + 2 instead of 3 + 1, since a single-token tile is latency-bound.
                int triples = tokens % 3 == 1 && tokens >= 4 ? tokens / 3 - 1 : tokens / 3;
                if (rows == RowTile)
                    for (int i = 0; i < triples; i++, t0 += 3) Tile4x3(x + (long)t0 * k, k, wf, y + (long)t0 * n + r, n, ref prefetch);
                if (rows == RowTile)
                    for (; t0 + 2 <= tokens; t0 += 2) Tile4x2(x + (long)t0 * k, k, wf, y + (long)t0 * n + r, n, ref prefetch);
                for (int t = t0; t < tokens; t++) Tile1(x + (long)t * k, wf, y + (long)t * n + r, rows, k, ref prefetch);
            }
        }

        AddBias(bias, y, tokens, n, n0, n1);
    }

    private static void AddBias(float* bias, float* y, int tokens, int n, int n0, int n1)
    {
        if (bias == null) return;
        for (int t = 0; t < tokens; t++)
            TensorPrimitives.Add(new ReadOnlySpan<float>(y + (long)t * n + n0, n1 - n0), new ReadOnlySpan<float>(bias + n0, n1 - n0), new Span<float>(y + (long)t * n + n0, n1 - n0));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ToFloat(ushort* source, DType dtype, float* destination, int count, int k, ref Prefetcher prefetch)
    {
        if (dtype == DType.F16)
        {
            TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(source, count), new Span<float>(destination, count));
            prefetch.All();
            return;
        }
        for (int row = 0; row < count / k; row++)
        {
            ushort* src = source + (long)row * k;
            float* dst = destination + (long)row * k;
            int kb = k & ~15, i = 0;
            for (; i < kb; i += 16)
            {
                var (lo, hi) = UnpackBf16(src + i);
                lo.Store(dst + i);
                hi.Store(dst + i + 8);
                prefetch.Step();
            }
            if (i + 8 <= k)
            {
                LoadBf16(src + i).Store(dst + i);
                i += 8;
            }
            for (; i < k; i++) dst[i] = BitConverter.Int32BitsToSingle(src[i] << 16);
        }
    }

    /// <summary>
    /// 16 BF16 values as two F32 vectors in unpack order — elements [0–3, 8–11] then [4–7, 12–15] — which AVX2's
    /// vpunpcklwd/vpunpckhwd against zero produce in one instruction each (BF16 is the high half of an F32).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static (Vector256<float> Lo, Vector256<float> Hi) UnpackBf16(ushort* p)
    {
        if (Avx2.IsSupported)
        {
            var v = Vector256.Load(p);
            return (Avx2.UnpackLow(Vector256<ushort>.Zero, v).AsSingle(), Avx2.UnpackHigh(Vector256<ushort>.Zero, v).AsSingle());
        }
        return (Vector256.Create(Bf16(p[0]), Bf16(p[1]), Bf16(p[2]), Bf16(p[3]), Bf16(p[8]), Bf16(p[9]), Bf16(p[10]), Bf16(p[11])),
                Vector256.Create(Bf16(p[4]), Bf16(p[5]), Bf16(p[6]), Bf16(p[7]), Bf16(p[12]), Bf16(p[13]), Bf16(p[14]), Bf16(p[15])));
    }

    private static float Bf16(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>x in the unpack order of <see cref="UnpackBf16"/> for every whole 16-block; the rest as it is.</summary>
    private static void PermuteForBf16(float* x, float* destination, int k)
    {
        int kb = k & ~15;
        for (int b = 0; b < kb; b += 16)
            for (int j = 0; j < 4; j++)
            {
                destination[b + j] = x[b + j];
                destination[b + 4 + j] = x[b + 8 + j];
                destination[b + 8 + j] = x[b + 4 + j];
                destination[b + 12 + j] = x[b + 12 + j];
            }
        for (int i = kb; i < k; i++) destination[i] = x[i];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> LoadBf16(ushort* p)
    {
        if (Avx2.IsSupported) return Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32(p), 16).AsSingle();
        var wide = Vector256.WidenLower(Vector128.Load(p).ToVector256Unsafe());
        return Vector256.ShiftLeft(wide, 16).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Tail(float* a, float* b, int from, int k)
    {
        float sum = 0;
        for (int i = from; i < k; i++) sum = MathF.FusedMultiplyAdd(a[i], b[i], sum);
        return sum;
    }

    /// <summary>Up to 4 F32 rows against one token.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile1(float* x, float* w, float* y, int rows, int k, ref Prefetcher prefetch)
    {
        int kv = k & ~7;
        if (rows == RowTile)
        {
            float* w0 = w, w1 = w + k, w2 = w + 2 * k, w3 = w + 3 * k;
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int i = 0; i < kv; i += 8)
            {
                var xv = Vector256.Load(x + i);
                a0 = Vector256.FusedMultiplyAdd(Vector256.Load(w0 + i), xv, a0);
                a1 = Vector256.FusedMultiplyAdd(Vector256.Load(w1 + i), xv, a1);
                a2 = Vector256.FusedMultiplyAdd(Vector256.Load(w2 + i), xv, a2);
                a3 = Vector256.FusedMultiplyAdd(Vector256.Load(w3 + i), xv, a3);
                prefetch.Step();
            }
            // Reduce every accumulator before anything else so no vector stays live across the tails.
            float s0 = Vector256.Sum(a0), s1 = Vector256.Sum(a1), s2 = Vector256.Sum(a2), s3 = Vector256.Sum(a3);
            y[0] = s0 + Tail(x, w0, kv, k);
            y[1] = s1 + Tail(x, w1, kv, k);
            y[2] = s2 + Tail(x, w2, kv, k);
            y[3] = s3 + Tail(x, w3, kv, k);
            return;
        }
        for (int r = 0; r < rows; r++)
        {
            float* wr = w + (long)r * k;
            Vector256<float> a = default;
            for (int i = 0; i < kv; i += 8) a = Vector256.FusedMultiplyAdd(Vector256.Load(wr + i), Vector256.Load(x + i), a);
            y[r] = Vector256.Sum(a) + Tail(x, wr, kv, k);
        }
    }

    /// <summary>4 F32 rows against 3 tokens: 12 accumulators, 7 loads per 12 FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile4x3(float* x, int k, float* w, float* y, int n, ref Prefetcher prefetch)
    {
        int kv = k & ~7;
        float* x0 = x, x1 = x + k, x2 = x + 2 * k;
        float* w0 = w, w1 = w + k, w2 = w + 2 * k, w3 = w + 3 * k;
        Vector256<float> a00 = default, a10 = default, a20 = default, a30 = default;
        Vector256<float> a01 = default, a11 = default, a21 = default, a31 = default;
        Vector256<float> a02 = default, a12 = default, a22 = default, a32 = default;
        for (int i = 0; i < kv; i += 8)
        {
            var xa = Vector256.Load(x0 + i);
            var xb = Vector256.Load(x1 + i);
            var xc = Vector256.Load(x2 + i);
            var v = Vector256.Load(w0 + i);
            a00 = Vector256.FusedMultiplyAdd(v, xa, a00);
            a01 = Vector256.FusedMultiplyAdd(v, xb, a01);
            a02 = Vector256.FusedMultiplyAdd(v, xc, a02);
            v = Vector256.Load(w1 + i);
            a10 = Vector256.FusedMultiplyAdd(v, xa, a10);
            a11 = Vector256.FusedMultiplyAdd(v, xb, a11);
            a12 = Vector256.FusedMultiplyAdd(v, xc, a12);
            v = Vector256.Load(w2 + i);
            a20 = Vector256.FusedMultiplyAdd(v, xa, a20);
            a21 = Vector256.FusedMultiplyAdd(v, xb, a21);
            a22 = Vector256.FusedMultiplyAdd(v, xc, a22);
            v = Vector256.Load(w3 + i);
            a30 = Vector256.FusedMultiplyAdd(v, xa, a30);
            a31 = Vector256.FusedMultiplyAdd(v, xb, a31);
            a32 = Vector256.FusedMultiplyAdd(v, xc, a32);
            prefetch.Step();
        }
        float s00 = Vector256.Sum(a00), s10 = Vector256.Sum(a10), s20 = Vector256.Sum(a20), s30 = Vector256.Sum(a30);
        float s01 = Vector256.Sum(a01), s11 = Vector256.Sum(a11), s21 = Vector256.Sum(a21), s31 = Vector256.Sum(a31);
        float s02 = Vector256.Sum(a02), s12 = Vector256.Sum(a12), s22 = Vector256.Sum(a22), s32 = Vector256.Sum(a32);
        y[0] = s00 + Tail(x0, w0, kv, k);
        y[1] = s10 + Tail(x0, w1, kv, k);
        y[2] = s20 + Tail(x0, w2, kv, k);
        y[3] = s30 + Tail(x0, w3, kv, k);
        y[n + 0] = s01 + Tail(x1, w0, kv, k);
        y[n + 1] = s11 + Tail(x1, w1, kv, k);
        y[n + 2] = s21 + Tail(x1, w2, kv, k);
        y[n + 3] = s31 + Tail(x1, w3, kv, k);
        y[2 * n + 0] = s02 + Tail(x2, w0, kv, k);
        y[2 * n + 1] = s12 + Tail(x2, w1, kv, k);
        y[2 * n + 2] = s22 + Tail(x2, w2, kv, k);
        y[2 * n + 3] = s32 + Tail(x2, w3, kv, k);
    }

    /// <summary>4 F32 rows against 2 tokens (rows of y are <paramref name="n"/> apart).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile4x2(float* x, int k, float* w, float* y, int n, ref Prefetcher prefetch)
    {
        int kv = k & ~7;
        float* x0 = x, x1 = x + k;
        float* w0 = w, w1 = w + k, w2 = w + 2 * k, w3 = w + 3 * k;
        Vector256<float> a00 = default, a10 = default, a20 = default, a30 = default;
        Vector256<float> a01 = default, a11 = default, a21 = default, a31 = default;
        for (int i = 0; i < kv; i += 8)
        {
            var xa = Vector256.Load(x0 + i);
            var xb = Vector256.Load(x1 + i);
            var v = Vector256.Load(w0 + i);
            a00 = Vector256.FusedMultiplyAdd(v, xa, a00);
            a01 = Vector256.FusedMultiplyAdd(v, xb, a01);
            v = Vector256.Load(w1 + i);
            a10 = Vector256.FusedMultiplyAdd(v, xa, a10);
            a11 = Vector256.FusedMultiplyAdd(v, xb, a11);
            v = Vector256.Load(w2 + i);
            a20 = Vector256.FusedMultiplyAdd(v, xa, a20);
            a21 = Vector256.FusedMultiplyAdd(v, xb, a21);
            v = Vector256.Load(w3 + i);
            a30 = Vector256.FusedMultiplyAdd(v, xa, a30);
            a31 = Vector256.FusedMultiplyAdd(v, xb, a31);
            prefetch.Step();
        }
        float s00 = Vector256.Sum(a00), s10 = Vector256.Sum(a10), s20 = Vector256.Sum(a20), s30 = Vector256.Sum(a30);
        float s01 = Vector256.Sum(a01), s11 = Vector256.Sum(a11), s21 = Vector256.Sum(a21), s31 = Vector256.Sum(a31);
        y[0] = s00 + Tail(x0, w0, kv, k);
        y[1] = s10 + Tail(x0, w1, kv, k);
        y[2] = s20 + Tail(x0, w2, kv, k);
        y[3] = s30 + Tail(x0, w3, kv, k);
        y[n + 0] = s01 + Tail(x1, w0, kv, k);
        y[n + 1] = s11 + Tail(x1, w1, kv, k);
        y[n + 2] = s21 + Tail(x1, w2, kv, k);
        y[n + 3] = s31 + Tail(x1, w3, kv, k);
    }

    /// <summary>
    /// Up to 4 BF16 rows against one token (x in unpack order), widening in registers: per 16 weights one load and
    /// two unpacks. The FMA sequence per row equals the F32 tiles' over a row converted by <see cref="ToFloat"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TileBf16(float* x, ushort* w, float* y, int rows, int k, ref Prefetcher prefetch)
    {
        int kb = k & ~15, kv = k & ~7;
        if (rows == RowTile)
        {
            ushort* w0 = w, w1 = w + k, w2 = w + 2 * k, w3 = w + 3 * k;
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (int i = 0; i < kb; i += 16)
            {
                var xl = Vector256.Load(x + i);
                var xh = Vector256.Load(x + i + 8);
                var (l0, h0) = UnpackBf16(w0 + i);
                a0 = Vector256.FusedMultiplyAdd(h0, xh, Vector256.FusedMultiplyAdd(l0, xl, a0));
                var (l1, h1) = UnpackBf16(w1 + i);
                a1 = Vector256.FusedMultiplyAdd(h1, xh, Vector256.FusedMultiplyAdd(l1, xl, a1));
                var (l2, h2) = UnpackBf16(w2 + i);
                a2 = Vector256.FusedMultiplyAdd(h2, xh, Vector256.FusedMultiplyAdd(l2, xl, a2));
                var (l3, h3) = UnpackBf16(w3 + i);
                a3 = Vector256.FusedMultiplyAdd(h3, xh, Vector256.FusedMultiplyAdd(l3, xl, a3));
                prefetch.Step();
            }
            if (kv > kb)
            {
                var xv = Vector256.Load(x + kb);
                a0 = Vector256.FusedMultiplyAdd(LoadBf16(w0 + kb), xv, a0);
                a1 = Vector256.FusedMultiplyAdd(LoadBf16(w1 + kb), xv, a1);
                a2 = Vector256.FusedMultiplyAdd(LoadBf16(w2 + kb), xv, a2);
                a3 = Vector256.FusedMultiplyAdd(LoadBf16(w3 + kb), xv, a3);
            }
            float s0 = Vector256.Sum(a0), s1 = Vector256.Sum(a1), s2 = Vector256.Sum(a2), s3 = Vector256.Sum(a3);
            y[0] = s0 + TailBf16(x, w0, kv, k);
            y[1] = s1 + TailBf16(x, w1, kv, k);
            y[2] = s2 + TailBf16(x, w2, kv, k);
            y[3] = s3 + TailBf16(x, w3, kv, k);
            return;
        }
        for (int r = 0; r < rows; r++)
        {
            ushort* wr = w + (long)r * k;
            Vector256<float> a = default;
            for (int i = 0; i < kb; i += 16)
            {
                var (l, h) = UnpackBf16(wr + i);
                a = Vector256.FusedMultiplyAdd(h, Vector256.Load(x + i + 8), Vector256.FusedMultiplyAdd(l, Vector256.Load(x + i), a));
            }
            if (kv > kb) a = Vector256.FusedMultiplyAdd(LoadBf16(wr + kb), Vector256.Load(x + kb), a);
            y[r] = Vector256.Sum(a) + TailBf16(x, wr, kv, k);
        }
    }

    /// <summary>8 BF16 rows against one token; per row the same FMA sequence as <see cref="TileBf16"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void TileBf16x8(float* x, ushort* w, float* y, int k, ref Prefetcher prefetch)
    {
        int kb = k & ~15, kv = k & ~7;
        ushort* w0 = w, w1 = w + k, w2 = w + 2 * k, w3 = w + 3 * k, w4 = w + 4 * k, w5 = w + 5 * k, w6 = w + 6 * k, w7 = w + 7 * k;
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        for (int i = 0; i < kb; i += 16)
        {
            var xl = Vector256.Load(x + i);
            var xh = Vector256.Load(x + i + 8);
            var (l, h) = UnpackBf16(w0 + i);
            a0 = Vector256.FusedMultiplyAdd(h, xh, Vector256.FusedMultiplyAdd(l, xl, a0));
            (l, h) = UnpackBf16(w1 + i);
            a1 = Vector256.FusedMultiplyAdd(h, xh, Vector256.FusedMultiplyAdd(l, xl, a1));
            (l, h) = UnpackBf16(w2 + i);
            a2 = Vector256.FusedMultiplyAdd(h, xh, Vector256.FusedMultiplyAdd(l, xl, a2));
            (l, h) = UnpackBf16(w3 + i);
            a3 = Vector256.FusedMultiplyAdd(h, xh, Vector256.FusedMultiplyAdd(l, xl, a3));
            (l, h) = UnpackBf16(w4 + i);
            a4 = Vector256.FusedMultiplyAdd(h, xh, Vector256.FusedMultiplyAdd(l, xl, a4));
            (l, h) = UnpackBf16(w5 + i);
            a5 = Vector256.FusedMultiplyAdd(h, xh, Vector256.FusedMultiplyAdd(l, xl, a5));
            (l, h) = UnpackBf16(w6 + i);
            a6 = Vector256.FusedMultiplyAdd(h, xh, Vector256.FusedMultiplyAdd(l, xl, a6));
            (l, h) = UnpackBf16(w7 + i);
            a7 = Vector256.FusedMultiplyAdd(h, xh, Vector256.FusedMultiplyAdd(l, xl, a7));
            prefetch.Step();
        }
        if (kv > kb)
        {
            var xv = Vector256.Load(x + kb);
            a0 = Vector256.FusedMultiplyAdd(LoadBf16(w0 + kb), xv, a0);
            a1 = Vector256.FusedMultiplyAdd(LoadBf16(w1 + kb), xv, a1);
            a2 = Vector256.FusedMultiplyAdd(LoadBf16(w2 + kb), xv, a2);
            a3 = Vector256.FusedMultiplyAdd(LoadBf16(w3 + kb), xv, a3);
            a4 = Vector256.FusedMultiplyAdd(LoadBf16(w4 + kb), xv, a4);
            a5 = Vector256.FusedMultiplyAdd(LoadBf16(w5 + kb), xv, a5);
            a6 = Vector256.FusedMultiplyAdd(LoadBf16(w6 + kb), xv, a6);
            a7 = Vector256.FusedMultiplyAdd(LoadBf16(w7 + kb), xv, a7);
        }
        float s0 = Vector256.Sum(a0), s1 = Vector256.Sum(a1), s2 = Vector256.Sum(a2), s3 = Vector256.Sum(a3);
        float s4 = Vector256.Sum(a4), s5 = Vector256.Sum(a5), s6 = Vector256.Sum(a6), s7 = Vector256.Sum(a7);
        y[0] = s0 + TailBf16(x, w0, kv, k);
        y[1] = s1 + TailBf16(x, w1, kv, k);
        y[2] = s2 + TailBf16(x, w2, kv, k);
        y[3] = s3 + TailBf16(x, w3, kv, k);
        y[4] = s4 + TailBf16(x, w4, kv, k);
        y[5] = s5 + TailBf16(x, w5, kv, k);
        y[6] = s6 + TailBf16(x, w6, kv, k);
        y[7] = s7 + TailBf16(x, w7, kv, k);
    }

    /// <summary>Issues software prefetches over a byte range, four cache lines per step.</summary>
    private struct Prefetcher(byte* start, long bytes)
    {
        private byte* _next = start;
        private readonly byte* _end = start + bytes;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Step()
        {
            if (_next >= _end) return;
            if (Sse.IsSupported)
            {
                Sse.Prefetch0(_next);
                Sse.Prefetch0(_next + 64);
                Sse.Prefetch0(_next + 128);
                Sse.Prefetch0(_next + 192);
            }
            _next += 256;
        }

        public void All()
        {
            while (_next < _end) Step();
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float TailBf16(float* x, ushort* w, int from, int k)
    {
        float sum = 0;
        for (int i = from; i < k; i++) sum = MathF.FusedMultiplyAdd(x[i], BitConverter.Int32BitsToSingle(w[i] << 16), sum);
        return sum;
    }
}
