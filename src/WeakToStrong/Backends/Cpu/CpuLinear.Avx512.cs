using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace WeakToStrong.Backends.Cpu;

/// <summary>
/// The AVX-512 path of <see cref="CpuLinear"/>: the same panels, the same FMA chain per output, twice the width.
/// <para>
/// A 16-row panel's weights of one k are one 512-bit register, so a tile of up to 16 tokens needs 16 accumulators
/// and one weight register out of 32: batch-16 decode reads each panel once (the 256-bit path reads it three times,
/// as tiles of 6 + 5 + 5). x is first laid out per tile as [k][tokens] (<see cref="TransposeTiles"/>), so each
/// token's x[t, k] is a broadcast at a constant offset from one pointer, not one of 16 row pointers.
/// </para>
/// <para>
/// BF16 panels keep the 256-bit path's slot order (<see cref="Bf16Slot"/>): they are widened as loaded, so the
/// accumulators hold the rows in slot order and are permuted back once, when stored. Each output's chain over k
/// is unchanged, so every path gives the same bits.
/// </para>
/// </summary>
internal static unsafe partial class CpuLinear
{
    /// <summary>Tokens per 512-bit register tile: 16 accumulators + 1 weight vector of 32 registers.</summary>
    private const int WideTileTokens = 16;

    /// <summary>Panels per pass for up to 3 tokens: four FMA chains per token hide the FMA latency at batch 1.</summary>
    private const int FewTokensPanels = 4;

    [ThreadStatic] private static float[]? _tiles;

    /// <summary>
    /// x [tokens, k] laid out tile by tile: the tile of <c>count</c> tokens starting at t0 becomes [k, count] at
    /// offset t0·k (this thread's scratch, valid until its next call). One token needs no copy.
    /// </summary>
    private static float* TransposeTiles(float* x, int tokens, int k)
    {
        if (tokens == 1) return x;
        float* xt = Scratch(ref _tiles, (long)tokens * k);
        int tiles = (tokens + WideTileTokens - 1) / WideTileTokens;
        for (int tile = 0; tile < tiles; tile++)
        {
            var (t0, count) = TileSpan(tokens, tiles, tile);
            float* to = xt + (long)t0 * k;
            for (int t = 0; t < count; t++)
            {
                float* from = x + (long)(t0 + t) * k;
                for (int i = 0; i < k; i++) to[(long)i * count + t] = from[i];
            }
        }
        return xt;
    }

    /// <summary>Tiles as even as possible (20 tokens = 10 + 10): the first token and count of tile
    /// <paramref name="tile"/> of <paramref name="tiles"/>.</summary>
    private static (int First, int Count) TileSpan(int tokens, int tiles, int tile)
    {
        int t0 = tokens * tile / tiles;
        return (t0, tokens * (tile + 1) / tiles - t0);
    }

    private static void Panels512(float* xt, byte* w, DType dtype, float* y, int tokens, int k, int n, int p0, int p1)
    {
        if (dtype == DType.BF16) Panels512<Bf16Wide>(xt, w, y, tokens, k, n, p0, p1);
        else if (dtype == DType.F32) Panels512<F32Wide>(xt, w, y, tokens, k, n, p0, p1);
        else Panels512<F16Wide>(xt, w, y, tokens, k, n, p0, p1);
    }

    private static void Panels512<TW>(float* xt, byte* w, float* y, int tokens, int k, int n, int p0, int p1) where TW : struct, IWidePanelWeights
    {
        long panelBytes = (long)k * TW.BytesPerStep;
        int tiles = (tokens + WideTileTokens - 1) / WideTileTokens;
        float* partial = stackalloc float[WideTileTokens * PanelRows];
        for (int p = p0; p < p1; p++)
        {
            byte* panel = w + p * panelBytes;
            int rows = Math.Min(PanelRows, n - p * PanelRows);
            if (tokens <= 3 && p + FewTokensPanels <= p1 && (p + FewTokensPanels) * PanelRows <= n)
            {
                float* yp = y + p * PanelRows;
                switch (tokens)
                {
                    case 1: QuadKernel<Tokens1, TW>(xt, k, panel, panelBytes, yp, n); break;
                    case 2: QuadKernel<Tokens2, TW>(xt, k, panel, panelBytes, yp, n); break;
                    default: QuadKernel<Tokens3, TW>(xt, k, panel, panelBytes, yp, n); break;
                }
                p += FewTokensPanels - 1;
                continue;
            }
            // The next panel of this task is pulled into L2 meanwhile, spread over the tiles (even one tile of 16
            // tokens is compute-bound enough that the hardware prefetcher alone leaves it waiting on memory).
            bool ahead = tokens > 3 && p + 1 < p1;
            var prefetch = ahead ? new Prefetch(w + (p + 1) * panelBytes, TW.BytesPerStep / tiles) : default;
            // Several tiles re-read the panel: an F16 one is widened once into an F32 copy (exact) rather than per tile.
            if (typeof(TW) == typeof(F16Wide) && tiles > 1)
                TilesOfPanel<F32Wide>((byte*)WidenF16Panel(panel, k), xt, y, tokens, tiles, k, n, p, rows, partial, prefetch);
            else
                TilesOfPanel<TW>(panel, xt, y, tokens, tiles, k, n, p, rows, partial, prefetch);
        }
    }

    /// <summary>Every tile of tokens over one panel; <paramref name="prefetch"/> is spread over the tiles.</summary>
    private static void TilesOfPanel<TW>(byte* panel, float* xt, float* y, int tokens, int tiles, int k, int n, int p, int rows, float* partial, Prefetch prefetch) where TW : struct, IWidePanelWeights
    {
        for (int tile = 0; tile < tiles; tile++)
        {
            var (t0, count) = TileSpan(tokens, tiles, tile);
            bool whole = rows == PanelRows;
            float* target = whole ? y + (long)t0 * n + p * PanelRows : partial;
            int ldy = whole ? n : PanelRows;
            var ahead = prefetch.BytesPerStep == 0 ? default : new Prefetch(prefetch.Start + tile * prefetch.BytesPerStep * k, prefetch.BytesPerStep);
            WideTile<TW>(count, xt + (long)t0 * k, k, panel, target, ldy, ahead);
            if (!whole)
                for (int t = 0; t < count; t++)
                    new ReadOnlySpan<float>(partial + t * PanelRows, rows).CopyTo(new Span<float>(y + (long)(t0 + t) * n + p * PanelRows, rows));
        }
    }

    private static void WideTile<TW>(int tokens, float* xt, int k, byte* panel, float* y, int ldy, Prefetch prefetch) where TW : struct, IWidePanelWeights
    {
        switch (tokens)
        {
            case 1: WideKernel<Tokens1, TW>(xt, k, panel, y, ldy, prefetch); break;
            case 2: WideKernel<Tokens2, TW>(xt, k, panel, y, ldy, prefetch); break;
            case 3: WideKernel<Tokens3, TW>(xt, k, panel, y, ldy, prefetch); break;
            case 4: WideKernel<Tokens4, TW>(xt, k, panel, y, ldy, prefetch); break;
            case 5: WideKernel<Tokens5, TW>(xt, k, panel, y, ldy, prefetch); break;
            case 6: WideKernel<Tokens6, TW>(xt, k, panel, y, ldy, prefetch); break;
            case 7: WideKernel<Tokens7, TW>(xt, k, panel, y, ldy, prefetch); break;
            case 8: WideKernel<Tokens8, TW>(xt, k, panel, y, ldy, prefetch); break;
            case 9: WideKernel<Tokens9, TW>(xt, k, panel, y, ldy, prefetch); break;
            case 10: WideKernel<Tokens10, TW>(xt, k, panel, y, ldy, prefetch); break;
            case 11: WideKernel<Tokens11, TW>(xt, k, panel, y, ldy, prefetch); break;
            case 12: WideKernel<Tokens12, TW>(xt, k, panel, y, ldy, prefetch); break;
            case 13: WideKernel<Tokens13, TW>(xt, k, panel, y, ldy, prefetch); break;
            case 14: WideKernel<Tokens14, TW>(xt, k, panel, y, ldy, prefetch); break;
            case 15: WideKernel<Tokens15, TW>(xt, k, panel, y, ldy, prefetch); break;
            default: WideKernel<Tokens16, TW>(xt, k, panel, y, ldy, prefetch); break;
        }
    }

    /// <summary>
    /// y[t, 0…15] = Σ_k x[t, k] · panel[k, 0…15] for <typeparamref name="TT"/>.Count ≤ 16 tokens, x laid out as
    /// [k, Count]. The token count is a type, so the JIT compiles one kernel per count with the unused
    /// accumulators removed and each x[t, k] a broadcast at a constant offset.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WideKernel<TT, TW>(float* xt, int k, byte* panel, float* y, int ldy, Prefetch prefetch) where TT : struct, ITokenCount where TW : struct, IWidePanelWeights
    {
        int m = TT.Count;
        byte* ahead = prefetch.Start;
        nint aheadStep = (nint)prefetch.BytesPerStep;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default;
        Vector512<float> a8 = default, a9 = default, a10 = default, a11 = default, a12 = default, a13 = default, a14 = default, a15 = default;
        for (int i = 0; i < k; i++, xt += m)
        {
            var v = TW.Load(panel);
            panel += TW.BytesPerStep;
            if (aheadStep != 0)
            {
                Sse.Prefetch1(ahead);
                ahead += aheadStep;
            }
            a0 = Vector512.FusedMultiplyAdd(v, Vector512.Create(xt[0]), a0);
            if (m > 1) a1 = Vector512.FusedMultiplyAdd(v, Vector512.Create(xt[1]), a1);
            if (m > 2) a2 = Vector512.FusedMultiplyAdd(v, Vector512.Create(xt[2]), a2);
            if (m > 3) a3 = Vector512.FusedMultiplyAdd(v, Vector512.Create(xt[3]), a3);
            if (m > 4) a4 = Vector512.FusedMultiplyAdd(v, Vector512.Create(xt[4]), a4);
            if (m > 5) a5 = Vector512.FusedMultiplyAdd(v, Vector512.Create(xt[5]), a5);
            if (m > 6) a6 = Vector512.FusedMultiplyAdd(v, Vector512.Create(xt[6]), a6);
            if (m > 7) a7 = Vector512.FusedMultiplyAdd(v, Vector512.Create(xt[7]), a7);
            if (m > 8) a8 = Vector512.FusedMultiplyAdd(v, Vector512.Create(xt[8]), a8);
            if (m > 9) a9 = Vector512.FusedMultiplyAdd(v, Vector512.Create(xt[9]), a9);
            if (m > 10) a10 = Vector512.FusedMultiplyAdd(v, Vector512.Create(xt[10]), a10);
            if (m > 11) a11 = Vector512.FusedMultiplyAdd(v, Vector512.Create(xt[11]), a11);
            if (m > 12) a12 = Vector512.FusedMultiplyAdd(v, Vector512.Create(xt[12]), a12);
            if (m > 13) a13 = Vector512.FusedMultiplyAdd(v, Vector512.Create(xt[13]), a13);
            if (m > 14) a14 = Vector512.FusedMultiplyAdd(v, Vector512.Create(xt[14]), a14);
            if (m > 15) a15 = Vector512.FusedMultiplyAdd(v, Vector512.Create(xt[15]), a15);
        }
        TW.Store(a0, y);
        if (m > 1) TW.Store(a1, y + ldy);
        if (m > 2) TW.Store(a2, y + 2 * ldy);
        if (m > 3) TW.Store(a3, y + 3 * ldy);
        if (m > 4) TW.Store(a4, y + 4 * ldy);
        if (m > 5) TW.Store(a5, y + 5 * ldy);
        if (m > 6) TW.Store(a6, y + 6 * ldy);
        if (m > 7) TW.Store(a7, y + 7 * ldy);
        if (m > 8) TW.Store(a8, y + 8 * ldy);
        if (m > 9) TW.Store(a9, y + 9 * ldy);
        if (m > 10) TW.Store(a10, y + 10 * ldy);
        if (m > 11) TW.Store(a11, y + 11 * ldy);
        if (m > 12) TW.Store(a12, y + 12 * ldy);
        if (m > 13) TW.Store(a13, y + 13 * ldy);
        if (m > 14) TW.Store(a14, y + 14 * ldy);
        if (m > 15) TW.Store(a15, y + 15 * ldy);
    }

    /// <summary>
    /// <see cref="WideKernel{TT, TW}"/> over four adjacent panels (64 outputs) for up to 3 tokens: the same FMA chain
    /// per output, four chains per token in flight.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void QuadKernel<TT, TW>(float* xt, int k, byte* panel, long panelBytes, float* y, int ldy) where TT : struct, ITokenCount where TW : struct, IWidePanelWeights
    {
        int m = TT.Count;
        Vector512<float> a0 = default, b0 = default, c0 = default, d0 = default, a1 = default, b1 = default;
        Vector512<float> c1 = default, d1 = default, a2 = default, b2 = default, c2 = default, d2 = default;
        byte* second = panel + panelBytes, third = second + panelBytes, fourth = third + panelBytes;
        for (int i = 0; i < k; i++, xt += m)
        {
            var va = TW.Load(panel);
            var vb = TW.Load(second);
            var vc = TW.Load(third);
            var vd = TW.Load(fourth);
            panel += TW.BytesPerStep;
            second += TW.BytesPerStep;
            third += TW.BytesPerStep;
            fourth += TW.BytesPerStep;
            var s = Vector512.Create(xt[0]);
            a0 = Vector512.FusedMultiplyAdd(va, s, a0);
            b0 = Vector512.FusedMultiplyAdd(vb, s, b0);
            c0 = Vector512.FusedMultiplyAdd(vc, s, c0);
            d0 = Vector512.FusedMultiplyAdd(vd, s, d0);
            if (m > 1)
            {
                s = Vector512.Create(xt[1]);
                a1 = Vector512.FusedMultiplyAdd(va, s, a1);
                b1 = Vector512.FusedMultiplyAdd(vb, s, b1);
                c1 = Vector512.FusedMultiplyAdd(vc, s, c1);
                d1 = Vector512.FusedMultiplyAdd(vd, s, d1);
            }
            if (m > 2)
            {
                s = Vector512.Create(xt[2]);
                a2 = Vector512.FusedMultiplyAdd(va, s, a2);
                b2 = Vector512.FusedMultiplyAdd(vb, s, b2);
                c2 = Vector512.FusedMultiplyAdd(vc, s, c2);
                d2 = Vector512.FusedMultiplyAdd(vd, s, d2);
            }
        }
        for (int t = 0; t < m; t++)
        {
            var (a, b, c, d) = t == 0 ? (a0, b0, c0, d0) : t == 1 ? (a1, b1, c1, d1) : (a2, b2, c2, d2);
            float* row = y + t * ldy;
            TW.Store(a, row);
            TW.Store(b, row + PanelRows);
            TW.Store(c, row + 2 * PanelRows);
            TW.Store(d, row + 3 * PanelRows);
        }
    }

    private struct Tokens7 : ITokenCount { public static int Count => 7; }
    private struct Tokens8 : ITokenCount { public static int Count => 8; }
    private struct Tokens9 : ITokenCount { public static int Count => 9; }
    private struct Tokens10 : ITokenCount { public static int Count => 10; }
    private struct Tokens11 : ITokenCount { public static int Count => 11; }
    private struct Tokens12 : ITokenCount { public static int Count => 12; }
    private struct Tokens13 : ITokenCount { public static int Count => 13; }
    private struct Tokens14 : ITokenCount { public static int Count => 14; }
    private struct Tokens15 : ITokenCount { public static int Count => 15; }
    private struct Tokens16 : ITokenCount { public static int Count => 16; }

    /// <summary>How one k of a panel (16 weights) becomes one F32 vector, and how an accumulator of such vectors
    /// is stored as outputs 0–15.</summary>
    private interface IWidePanelWeights
    {
        static abstract int BytesPerStep { get; }

        static abstract Vector512<float> Load(byte* p);

        static abstract void Store(Vector512<float> accumulator, float* y);
    }

    private struct F32Wide : IWidePanelWeights
    {
        public static int BytesPerStep => PanelRows * sizeof(float);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load(byte* p) => Vector512.Load((float*)p);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Store(Vector512<float> accumulator, float* y) => accumulator.Store(y);
    }

    /// <summary>Zero-extended to 32 bits and shifted up (BF16 is the high half of an F32); the lanes are in slot
    /// order (rows 0–3, 8–11, 4–7, 12–15), put back in row order when stored.</summary>
    private struct Bf16Wide : IWidePanelWeights
    {
        public static int BytesPerStep => PanelRows * sizeof(ushort);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load(byte* p) => Vector512.ShiftLeft(Avx512F.ConvertToVector512Int32(Vector256.Load((ushort*)p)), 16).AsSingle();

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Store(Vector512<float> accumulator, float* y) =>
            Avx512F.PermuteVar16x32(accumulator, Vector512.Create(0, 1, 2, 3, 8, 9, 10, 11, 4, 5, 6, 7, 12, 13, 14, 15)).Store(y);
    }

    /// <summary>IEEE half → single exactly with integer ops, as <see cref="F16Weights"/> does on 256 bits (.NET
    /// exposes no 512-bit vcvtph2ps).</summary>
    private struct F16Wide : IWidePanelWeights
    {
        public static int BytesPerStep => PanelRows * sizeof(ushort);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector512<float> Load(byte* p)
        {
            var half = Avx512F.ConvertToVector512Int32(Vector256.Load((ushort*)p));
            var magnitude = half & Vector512.Create(0x7fff);
            var shifted = Vector512.ShiftLeft(magnitude, 13);
            var finite = shifted.AsSingle() * Vector512.Create(5.192296858534828e33f); // 2^112
            var special = (shifted | Vector512.Create(0x7f800000)).AsSingle();
            var value = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(magnitude, Vector512.Create(0x7c00)).AsSingle(), special, finite);
            return value | Vector512.ShiftLeft(half & Vector512.Create(0x8000), 16).AsSingle();
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Store(Vector512<float> accumulator, float* y) => accumulator.Store(y);
    }
}
