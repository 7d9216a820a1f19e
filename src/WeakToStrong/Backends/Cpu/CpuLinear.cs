using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace WeakToStrong.Backends.Cpu;

/// <summary>
/// y[t, n] = Σ_k x[t, k] · W[n, k] (+ b[n]) with W in its stored dtype (F32, BF16 or F16; no F32 copy of the model).
/// <para>
/// W is kept in panels (<see cref="Pack"/>): 16 output rows at a time, column-interleaved — panel p holds, for
/// k = 0…K−1, the 16 weights W[16p + j, k] side by side. One pass over a panel is an outer product: per k, the 16
/// weights (two 256-bit vectors) are multiplied by a broadcast x[t, k] for up to 6 tokens at once, 12 accumulators
/// that stay in registers. At batch 1 the panel streams from memory once; at batch 16 it is read once from memory
/// and twice more from cache, and the FMA units (not memory) are the limit. The 512-bit path
/// (CpuLinear.Avx512.cs) runs the same panels with one register per k and up to 16 tokens per pass.
/// </para>
/// <para>
/// Every y[t, n] is one FMA chain over k = 0, 1, …, K−1 starting from zero, whatever the tile, batch shape or vector
/// width, so a sequence's results do not depend on what else is in the batch or on the path (bit for bit).
/// </para>
/// </summary>
internal static unsafe partial class CpuLinear
{
    /// <summary>Output rows per panel: two 256-bit or one 512-bit vector of F32.</summary>
    public const int PanelRows = 16;

    /// <summary>Tokens per register tile: 6 × 2 accumulators + 2 weight vectors + 1 broadcast = 15 of 16 registers.</summary>
    private const int TileTokens = 6;

    /// <summary>Weight bytes per parallel task when the panel is read once (up to 6 tokens): enough that the task's
    /// stream is mostly prefetched, few enough to balance the cores.</summary>
    private const int TaskBytes = 64 << 10;

    /// <summary>Weight bytes per task when several tiles re-read each panel: larger, since each panel prefetches
    /// the next one of its task and a task's first panel starts cold.</summary>
    private const int TiledTaskBytes = 512 << 10;


    /// <summary>
    /// W [n, k] row-major → panels [⌈n/16⌉, k, 16], rows past n zero. BF16 panels store each 16 in the order that
    /// AVX2's unpack-with-zero widens into two F32 vectors of rows 0–7 and 8–15 (see <see cref="Bf16Weights"/>).
    /// </summary>
    public static CpuTensor Pack(CpuTensor w, int n, int k)
    {
        if (w.Length != (long)n * k) throw new ArgumentException($"weight has {w.Length} elements, not {n}×{k}", nameof(w));
        return PackFrom(w.Pointer, w.DType, n, k);
    }

    /// <summary>Packs row-major [n, k] weights at <paramref name="source"/> (see <see cref="Pack(CpuTensor, int, int)"/>).</summary>
    public static CpuTensor PackFrom(byte* source, DType dtype, int n, int k) => PackFromParts([(nint)source], [n], dtype, k);

    /// <summary>
    /// Packs a weight whose rows are stacked from several row-major parts ([rows_i, k] at parts[i]; q|k|v, gate|up)
    /// straight from each part, with no stacked copy in between. A panel whose 16 rows lie in one part is transposed
    /// in blocks; one that straddles two parts is copied row by row.
    /// </summary>
    public static CpuTensor PackFromParts(ReadOnlySpan<nint> parts, ReadOnlySpan<int> partRows, DType dtype, int k)
    {
        if (parts.Length != partRows.Length || parts.Length == 0) throw new ArgumentException("one row count per part", nameof(partRows));
        int n = 0;
        foreach (int rows in partRows) n = checked(n + rows);
        var packed = NewPanels(dtype, n, k, out long panels);
        int size = dtype.Size();
        // Row j's part: the part index and the row's first byte, from the first row of each part.
        var starts = new int[parts.Length + 1];
        for (int i = 0; i < parts.Length; i++) starts[i + 1] = starts[i] + partRows[i];
        var bases = parts.ToArray();
        byte* Row(int j)
        {
            int i = Array.BinarySearch(starts, j);
            if (i < 0) i = ~i - 1;
            while (i + 1 < starts.Length - 1 && starts[i + 1] == j) i++; // an empty part shares its start with the next
            return (byte*)bases[i] + (long)(j - starts[i]) * k * size;
        }
        byte* dst = packed.Pointer;
        bool permute = dtype == DType.BF16;
        long panelBytes = (long)k * PanelRows * size;
        CpuParallel.For((int)panels, p =>
        {
            int rows = (int)Math.Min(PanelRows, n - (long)p * PanelRows); // rows past n stay zero
            byte* to = dst + p * panelBytes;
            PrefaultPanel(packed, p * panelBytes, panelBytes);
            byte* first = Row(p * PanelRows);
            // The fast transpose reads 16 rows k apart from one base: the whole panel in one part.
            bool onePart = rows == PanelRows && Row(p * PanelRows + PanelRows - 1) == first + (long)(PanelRows - 1) * k * size;
            int done = 0;
            if (onePart && Sse2.IsSupported)
                done = size == 4 ? Transpose4((uint*)first, k, (uint*)to) : Transpose2((ushort*)first, k, (ushort*)to, permute);
            for (int j = 0; j < rows; j++)
            {
                int slot = permute ? Bf16Slot(j) : j;
                byte* from = Row(p * PanelRows + j);
                byte* panel = to + slot * size;
                if (size == 4)
                    for (int i = done; i < k; i++) ((uint*)panel)[(long)i * PanelRows] = ((uint*)from)[i];
                else
                    for (int i = done; i < k; i++) ((ushort*)panel)[(long)i * PanelRows] = ((ushort*)from)[i];
            }
        });
        return packed;
    }

    /// <summary>
    /// Faults in, for writing, the pages of a packed tensor that start inside one panel's byte range — on the thread
    /// about to write that panel, so both threads take page faults in parallel while the other packs, and each page
    /// is faulted once in one call (MADV_POPULATE_WRITE) rather than trapped 4 KiB at a time.
    /// </summary>
    private static void PrefaultPanel(CpuTensor packed, long offset, long bytes)
    {
        long page = Environment.SystemPageSize;
        long start = (long)packed.Pointer, end = start + packed.ByteLength;
        // Pages are owned by the panel their first byte lies in; none outside the tensor is touched.
        long from = (start + offset + page - 1) / page * page;
        long to = Math.Min((start + offset + bytes + page - 1) / page * page, end / page * page);
        if (to > from) Native.MemoryAdvice.Populate((nint)from, to - from);
    }

    /// <summary>
    /// Packs Wᵀ stored row-major as [k, n] (GPT-2's Conv1D): a panel's 16 weights of one k are 16 neighbours in
    /// row k of the source, so each is one contiguous copy (BF16 permuted as <see cref="Bf16Slot"/> says).
    /// </summary>
    public static CpuTensor PackFromTransposed(byte* source, DType dtype, int n, int k)
    {
        var packed = NewPanels(dtype, n, k, out long panels);
        int size = dtype.Size();
        byte* src = source, dst = packed.Pointer;
        bool permute = dtype == DType.BF16;
        long panelBytes = (long)k * PanelRows * size;
        // A task packs a group of neighbouring panels, walking the source row by row: each row is read as one
        // contiguous 1 KiB run, not as 64-byte pieces n elements apart (a TLB miss and a cache miss per piece).
        int group = Math.Max(1, 1024 / (PanelRows * size));
        int tasks = (int)((panels + group - 1) / group);
        CpuParallel.For(tasks, task =>
        {
            long p0 = (long)task * group, p1 = Math.Min(panels, p0 + group);
            PrefaultPanel(packed, p0 * panelBytes, (p1 - p0) * panelBytes);
            for (int i = 0; i < k; i++)
            {
                byte* row = src + ((long)i * n + p0 * PanelRows) * size;
                for (long p = p0; p < p1; p++)
                {
                    int rows = (int)Math.Min(PanelRows, n - p * PanelRows); // rows past n stay zero
                    byte* from = row + (p - p0) * PanelRows * size;
                    byte* panel = dst + p * panelBytes + (long)i * PanelRows * size;
                    if (rows == PanelRows && size == 4)
                    {
                        Vector256.Store(Vector256.Load((float*)from), (float*)panel);
                        Vector256.Store(Vector256.Load((float*)from + 8), (float*)panel + 8);
                    }
                    else if (rows == PanelRows && Avx2.IsSupported)
                    {
                        // 16 two-byte values are four 64-bit lanes of rows 0–3, 4–7, 8–11, 12–15; BF16's slot order
                        // (Bf16Slot) swaps the middle two.
                        var v = Vector256.Load((ulong*)from);
                        Vector256.Store(permute ? Avx2.Permute4x64(v, 0b11_01_10_00) : v, (ulong*)panel);
                    }
                    else
                        for (int j = 0; j < rows; j++)
                        {
                            if (size == 4) ((uint*)panel)[j] = ((uint*)from)[j];
                            else ((ushort*)panel)[permute ? Bf16Slot(j) : j] = ((ushort*)from)[j];
                        }
                }
            }
        });
        return packed;
    }

    /// <summary>The zeroed panel tensor for an [n, k] weight in <paramref name="dtype"/>; its pages are faulted in by
    /// the packing threads, panel by panel (<see cref="PrefaultPanel"/>).</summary>
    private static CpuTensor NewPanels(DType dtype, int n, int k, out long panels)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(k);
        if (dtype is not (DType.F32 or DType.BF16 or DType.F16)) throw new ArgumentException($"weight dtype {dtype} is not F32, BF16 or F16", nameof(dtype));
        panels = (n + PanelRows - 1) / PanelRows;
        return new CpuTensor(dtype, panels * PanelRows * k) { PackedRows = n, PackedColumns = k };
    }

    /// <summary>
    /// A full panel of 4-byte weights, 4 k at a time: each group of 4 rows is a 4×4 transpose (unpacks of 32- then
    /// 64-bit lanes), giving those rows' 4 weights for each k. Returns the k done (a multiple of 4).
    /// </summary>
    private static int Transpose4(uint* rows, int k, uint* panel)
    {
        int i = 0;
        for (; i + 4 <= k; i += 4)
            for (int g = 0; g < PanelRows; g += 4)
            {
                uint* r = rows + (long)g * k + i;
                var a0 = Sse2.LoadVector128(r);
                var a1 = Sse2.LoadVector128(r + k);
                var a2 = Sse2.LoadVector128(r + 2L * k);
                var a3 = Sse2.LoadVector128(r + 3L * k);
                var t0 = Sse2.UnpackLow(a0, a1).AsUInt64();
                var t1 = Sse2.UnpackHigh(a0, a1).AsUInt64();
                var t2 = Sse2.UnpackLow(a2, a3).AsUInt64();
                var t3 = Sse2.UnpackHigh(a2, a3).AsUInt64();
                uint* o = panel + (long)i * PanelRows + g;
                Sse2.Store(o, Sse2.UnpackLow(t0, t2).AsUInt32());
                Sse2.Store(o + PanelRows, Sse2.UnpackHigh(t0, t2).AsUInt32());
                Sse2.Store(o + 2 * PanelRows, Sse2.UnpackLow(t1, t3).AsUInt32());
                Sse2.Store(o + 3 * PanelRows, Sse2.UnpackHigh(t1, t3).AsUInt32());
            }
        return i;
    }

    /// <summary>
    /// A full panel of 2-byte weights, 8 k at a time: two 8×8 transposes (unpacks of 16-, 32-, then 64-bit lanes),
    /// one per half of the 16 slots. For BF16 the halves hold rows 0–3, 8–11 and 4–7, 12–15
    /// (<see cref="Bf16Slot"/>). Returns the k done (a multiple of 8).
    /// </summary>
    private static int Transpose2(ushort* rows, int k, ushort* panel, bool bf16)
    {
        int* order = stackalloc int[PanelRows];
        for (int j = 0; j < PanelRows; j++) order[bf16 ? Bf16Slot(j) : j] = j;
        var a = stackalloc Vector128<ushort>[8];
        int i = 0;
        for (; i + 8 <= k; i += 8)
            for (int half = 0; half < 2; half++)
            {
                for (int j = 0; j < 8; j++) a[j] = Sse2.LoadVector128(rows + (long)order[8 * half + j] * k + i);
                var t0 = Sse2.UnpackLow(a[0], a[1]).AsUInt32();
                var t1 = Sse2.UnpackHigh(a[0], a[1]).AsUInt32();
                var t2 = Sse2.UnpackLow(a[2], a[3]).AsUInt32();
                var t3 = Sse2.UnpackHigh(a[2], a[3]).AsUInt32();
                var t4 = Sse2.UnpackLow(a[4], a[5]).AsUInt32();
                var t5 = Sse2.UnpackHigh(a[4], a[5]).AsUInt32();
                var t6 = Sse2.UnpackLow(a[6], a[7]).AsUInt32();
                var t7 = Sse2.UnpackHigh(a[6], a[7]).AsUInt32();
                var u0 = Sse2.UnpackLow(t0, t2).AsUInt64();
                var u1 = Sse2.UnpackHigh(t0, t2).AsUInt64();
                var u2 = Sse2.UnpackLow(t1, t3).AsUInt64();
                var u3 = Sse2.UnpackHigh(t1, t3).AsUInt64();
                var u4 = Sse2.UnpackLow(t4, t6).AsUInt64();
                var u5 = Sse2.UnpackHigh(t4, t6).AsUInt64();
                var u6 = Sse2.UnpackLow(t5, t7).AsUInt64();
                var u7 = Sse2.UnpackHigh(t5, t7).AsUInt64();
                ushort* o = panel + (long)i * PanelRows + 8 * half;
                Sse2.Store(o, Sse2.UnpackLow(u0, u4).AsUInt16());
                Sse2.Store(o + PanelRows, Sse2.UnpackHigh(u0, u4).AsUInt16());
                Sse2.Store(o + 2 * PanelRows, Sse2.UnpackLow(u1, u5).AsUInt16());
                Sse2.Store(o + 3 * PanelRows, Sse2.UnpackHigh(u1, u5).AsUInt16());
                Sse2.Store(o + 4 * PanelRows, Sse2.UnpackLow(u2, u6).AsUInt16());
                Sse2.Store(o + 5 * PanelRows, Sse2.UnpackHigh(u2, u6).AsUInt16());
                Sse2.Store(o + 6 * PanelRows, Sse2.UnpackLow(u3, u7).AsUInt16());
                Sse2.Store(o + 7 * PanelRows, Sse2.UnpackHigh(u3, u7).AsUInt16());
            }
        return i;
    }

    /// <summary>Where row j of a panel sits among the 16 BF16 values of one k (an involution: swaps 4–7 and 8–11).</summary>
    public static int Bf16Slot(int j) => j is >= 4 and < 8 ? j + 4 : j is >= 8 and < 12 ? j - 4 : j;

    /// <summary>Row <paramref name="row"/> of a packed weight as F32 (the embedding lookup of a tied lm_head).</summary>
    public static void Row(CpuTensor packed, int row, Span<float> destination)
    {
        if (packed.DType == DType.I8)
        {
            RowInt8(packed, row, destination);
            return;
        }
        int k = packed.PackedColumns;
        int panel = row / PanelRows, j = row % PanelRows;
        long start = (long)panel * k * PanelRows + (packed.DType == DType.BF16 ? Bf16Slot(j) : j);
        for (int i = 0; i < k; i++)
        {
            long at = start + (long)i * PanelRows;
            destination[i] = packed.DType switch
            {
                DType.F32 => packed.F32[at],
                DType.BF16 => BitConverter.Int32BitsToSingle(((ushort*)packed.Pointer)[at] << 16),
                _ => (float)((Half*)packed.Pointer)[at],
            };
        }
    }

    public static void Run(CpuIsa isa, float* x, CpuTensor w, float* bias, float* y, int tokens, int k, int n)
    {
        if (w.DType == DType.I8)
        {
            RunInt8(x, w, bias, y, tokens, k, n); // one 256-bit kernel on every path (CpuLinear.Int8.cs)
            return;
        }
        if (w.PackedRows != n || w.PackedColumns != k)
            throw new ArgumentException($"weight is not packed for a {n}×{k} linear (packed {w.PackedRows}×{w.PackedColumns}); pass it through PrepareLinear first", nameof(w));
        bool wide = isa == CpuIsa.Avx512;
        int panels = (n + PanelRows - 1) / PanelRows;
        long panelBytes = (long)k * PanelRows * w.DType.Size();
        // Many tokens: the kernel is compute-bound and prefetches each task's next panel (the 256-bit path only when
        // several tiles re-read a panel, the 512-bit one past the few-tokens kernel).
        bool many = wide ? tokens > 3 : tokens > TileTokens;
        int perTask = PanelsPerTask(tokens, many, wide ? FewTokensPanels : 2, panels, panelBytes);
        int tasks = (panels + perTask - 1) / perTask;
        float* xt = wide ? TransposeTiles(x, tokens, k) : x;
        nint xp = (nint)xt, bp = (nint)bias, yp = (nint)y, wp = (nint)w.Pointer;
        var dtype = w.DType;
        CpuParallel.For(tasks, task =>
        {
            int p0 = task * perTask, p1 = Math.Min(panels, p0 + perTask);
            if (wide) Panels512((float*)xp, (byte*)wp, dtype, (float*)yp, tokens, k, n, p0, p1);
            else Panels((float*)xp, (byte*)wp, dtype, (float*)yp, tokens, k, n, p0, p1);
            AddBias((float*)bp, (float*)yp, tokens, n, p0 * PanelRows, Math.Min(n, p1 * PanelRows));
        }, serial: (long)tokens * k * n < 1 << 16);
    }

    /// <summary>
    /// Panels per parallel task. For <paramref name="many"/> tokens, a whole number of rounds over the threads (at
    /// least two, for balance), each task about <see cref="TiledTaskBytes"/>, so most panels have a next one to
    /// prefetch. Otherwise each panel streams from memory once: tasks of about <see cref="TaskBytes"/>, at least
    /// four per thread, in whole groups of <paramref name="group"/> panels for the few-tokens kernel.
    /// </summary>
    private static int PanelsPerTask(int tokens, bool many, int group, int panels, long panelBytes)
    {
        if (many)
        {
            int threads = CpuParallel.Threads;
            long rounds = Math.Max(2, panels * panelBytes / ((long)threads * TiledTaskBytes));
            return (int)Math.Max(1, (panels + threads * rounds - 1) / (threads * rounds));
        }
        int perTask = (int)Math.Clamp(TaskBytes / panelBytes, 1, Math.Max(1, panels / (4 * CpuParallel.Threads)));
        return tokens <= 3 ? Math.Max(group, perTask / group * group) : perTask;
    }

    private static void Panels(float* x, byte* w, DType dtype, float* y, int tokens, int k, int n, int p0, int p1)
    {
        long panelBytes = (long)k * PanelRows * dtype.Size();
        int tiles = (tokens + TileTokens - 1) / TileTokens;
        float* partial = stackalloc float[TileTokens * PanelRows];
        for (int p = p0; p < p1; p++)
        {
            byte* panel = w + p * panelBytes;
            int rows = Math.Min(PanelRows, n - p * PanelRows);
            if (tokens <= 3 && p + 1 < p1 && (p + 2) * PanelRows <= n)
            {
                // Few tokens: two panels per pass, so each token has four FMA chains in flight, not two (a pass over
                // one panel at batch 1 is bound by FMA latency, not by memory).
                float* yp = y + p * PanelRows;
                if (dtype == DType.BF16) PairTile<Bf16Weights>(tokens, x, k, panel, panelBytes, yp, n);
                else if (dtype == DType.F32) PairTile<F32Weights>(tokens, x, k, panel, panelBytes, yp, n);
                else PairTile<F16Weights>(tokens, x, k, panel, panelBytes, yp, n);
                p++;
                continue;
            }
            // Several tiles re-read the panel: F16 is widened once into an F32 copy of the panel rather than per tile.
            var panelType = dtype;
            if (dtype == DType.F16 && tiles > 1)
            {
                panel = (byte*)WidenF16Panel(panel, k);
                panelType = DType.F32;
            }
            // While the tiles compute, the next panel of this task is pulled into L2, spread evenly over all the
            // tiles: without it the first tile waits on memory and the others leave memory idle (F32 at batch 16
            // ran at ~120 GFLOP/s instead of ~165). With one tile the hardware prefetcher keeps up by itself.
            bool ahead = tiles > 1 && p + 1 < p1;
            byte* next = ahead ? w + (p + 1) * panelBytes : panel;
            long nextStep = ahead ? PanelRows * dtype.Size() / tiles : 0;
            for (int tile = 0; tile < tiles; tile++)
            {
                // Tiles as even as possible (16 tokens = 6 + 5 + 5): each keeps at least 8 FMA chains in flight.
                int t0 = tokens * tile / tiles, count = tokens * (tile + 1) / tiles - t0;
                bool whole = rows == PanelRows;
                float* target = whole ? y + (long)t0 * n + p * PanelRows : partial;
                int ldy = whole ? n : PanelRows;
                float* xt = x + (long)t0 * k;
                var prefetch = new Prefetch(next + tile * nextStep * k, nextStep);
                if (panelType == DType.BF16) Tile<Bf16Weights>(count, xt, k, panel, target, ldy, prefetch);
                else if (panelType == DType.F32) Tile<F32Weights>(count, xt, k, panel, target, ldy, prefetch);
                else Tile<F16Weights>(count, xt, k, panel, target, ldy, prefetch);
                if (!whole)
                    for (int t = 0; t < count; t++)
                        new ReadOnlySpan<float>(partial + t * PanelRows, rows).CopyTo(new Span<float>(y + (long)(t0 + t) * n + p * PanelRows, rows));
            }
        }
    }

    [ThreadStatic] private static float[]? _widened;

    /// <summary>At least <paramref name="length"/> pinned floats in a thread's scratch <paramref name="slot"/>, grown as needed.</summary>
    private static float* Scratch(ref float[]? slot, long length)
    {
        if (slot is null || slot.Length < length) slot = GC.AllocateUninitializedArray<float>(checked((int)length), pinned: true);
        return (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(slot));
    }

    /// <summary>An F16 panel as F32, in this thread's scratch (valid until the next call on this thread).</summary>
    private static float* WidenF16Panel(byte* panel, int k)
    {
        float* destination = Scratch(ref _widened, (long)k * PanelRows);
        for (int i = 0; i < k; i++, panel += F16Weights.BytesPerStep)
        {
            var (lo, hi) = F16Weights.Load(panel);
            lo.Store(destination + i * PanelRows);
            hi.Store(destination + i * PanelRows + 8);
        }
        return destination;
    }

    private static void AddBias(float* bias, float* y, int tokens, int n, int n0, int n1)
    {
        if (bias == null) return;
        for (int t = 0; t < tokens; t++)
            TensorPrimitives.Add(new ReadOnlySpan<float>(y + (long)t * n + n0, n1 - n0), new ReadOnlySpan<float>(bias + n0, n1 - n0), new Span<float>(y + (long)t * n + n0, n1 - n0));
    }

    private static void Tile<TW>(int tokens, float* x, int k, byte* panel, float* y, int ldy, Prefetch prefetch) where TW : struct, IPanelWeights
    {
        switch (tokens)
        {
            case 1: Kernel<Tokens1, TW>(x, k, panel, y, ldy, prefetch); break;
            case 2: Kernel<Tokens2, TW>(x, k, panel, y, ldy, prefetch); break;
            case 3: Kernel<Tokens3, TW>(x, k, panel, y, ldy, prefetch); break;
            case 4: Kernel<Tokens4, TW>(x, k, panel, y, ldy, prefetch); break;
            case 5: Kernel<Tokens5, TW>(x, k, panel, y, ldy, prefetch); break;
            default: Kernel<Tokens6, TW>(x, k, panel, y, ldy, prefetch); break;
        }
    }

    /// <summary>Where to start prefetching into L2 and how far to move per k (0: no prefetching).</summary>
    private readonly struct Prefetch(byte* start, long bytesPerStep)
    {
        public readonly byte* Start = start;
        public readonly long BytesPerStep = bytesPerStep;
    }

    private static void PairTile<TW>(int tokens, float* x, int k, byte* panel, long panelBytes, float* y, int ldy) where TW : struct, IPanelWeights
    {
        switch (tokens)
        {
            case 1: PairKernel<Tokens1, TW>(x, k, panel, panelBytes, y, ldy); break;
            case 2: PairKernel<Tokens2, TW>(x, k, panel, panelBytes, y, ldy); break;
            default: PairKernel<Tokens3, TW>(x, k, panel, panelBytes, y, ldy); break;
        }
    }

    /// <summary>
    /// <see cref="Kernel{TT, TW}"/> over two adjacent panels (32 outputs) for up to 3 tokens: the same FMA chain per
    /// output, twice the chains per token.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void PairKernel<TT, TW>(float* x, int k, byte* panel, long panelBytes, float* y, int ldy) where TT : struct, ITokenCount where TW : struct, IPanelWeights
    {
        int m = TT.Count;
        Vector256<float> a0 = default, b0 = default, c0 = default, d0 = default, a1 = default, b1 = default;
        Vector256<float> c1 = default, d1 = default, a2 = default, b2 = default, c2 = default, d2 = default;
        float* x0 = x, x1 = x0 + k, x2 = x1 + k;
        byte* second = panel + panelBytes;
        for (int i = 0; i < k; i++)
        {
            var (lo, hi) = TW.Load(panel);
            var (lo2, hi2) = TW.Load(second);
            panel += TW.BytesPerStep;
            second += TW.BytesPerStep;
            var s = Vector256.Create(x0[i]);
            a0 = Vector256.FusedMultiplyAdd(lo, s, a0);
            b0 = Vector256.FusedMultiplyAdd(hi, s, b0);
            c0 = Vector256.FusedMultiplyAdd(lo2, s, c0);
            d0 = Vector256.FusedMultiplyAdd(hi2, s, d0);
            if (m > 1)
            {
                s = Vector256.Create(x1[i]);
                a1 = Vector256.FusedMultiplyAdd(lo, s, a1);
                b1 = Vector256.FusedMultiplyAdd(hi, s, b1);
                c1 = Vector256.FusedMultiplyAdd(lo2, s, c1);
                d1 = Vector256.FusedMultiplyAdd(hi2, s, d1);
            }
            if (m > 2)
            {
                s = Vector256.Create(x2[i]);
                a2 = Vector256.FusedMultiplyAdd(lo, s, a2);
                b2 = Vector256.FusedMultiplyAdd(hi, s, b2);
                c2 = Vector256.FusedMultiplyAdd(lo2, s, c2);
                d2 = Vector256.FusedMultiplyAdd(hi2, s, d2);
            }
        }
        a0.Store(y); b0.Store(y + 8); c0.Store(y + 16); d0.Store(y + 24);
        if (m > 1) { a1.Store(y + ldy); b1.Store(y + ldy + 8); c1.Store(y + ldy + 16); d1.Store(y + ldy + 24); }
        if (m > 2) { a2.Store(y + 2 * ldy); b2.Store(y + 2 * ldy + 8); c2.Store(y + 2 * ldy + 16); d2.Store(y + 2 * ldy + 24); }
    }

    /// <summary>
    /// y[t, 0…15] = Σ_k x[t, k] · panel[k, 0…15] for <typeparamref name="TT"/>.Count ≤ 6 tokens (x rows k apart,
    /// y rows <paramref name="ldy"/> apart). The token count is a type so the JIT compiles one kernel per count with
    /// the unused accumulators removed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel<TT, TW>(float* x, int k, byte* panel, float* y, int ldy, Prefetch prefetch) where TT : struct, ITokenCount where TW : struct, IPanelWeights
    {
        int m = TT.Count;
        byte* ahead = prefetch.Start;
        nint aheadStep = (nint)prefetch.BytesPerStep;
        Vector256<float> a0 = default, b0 = default, a1 = default, b1 = default, a2 = default, b2 = default;
        Vector256<float> a3 = default, b3 = default, a4 = default, b4 = default, a5 = default, b5 = default;
        float* x0 = x, x1 = x0 + k, x2 = x1 + k, x3 = x2 + k, x4 = x3 + k, x5 = x4 + k;
        for (int i = 0; i < k; i++)
        {
            var (lo, hi) = TW.Load(panel);
            panel += TW.BytesPerStep;
            if (aheadStep != 0 && Sse.IsSupported)
            {
                Sse.Prefetch1(ahead);
                ahead += aheadStep;
            }
            var s = Vector256.Create(x0[i]);
            a0 = Vector256.FusedMultiplyAdd(lo, s, a0);
            b0 = Vector256.FusedMultiplyAdd(hi, s, b0);
            if (m > 1)
            {
                s = Vector256.Create(x1[i]);
                a1 = Vector256.FusedMultiplyAdd(lo, s, a1);
                b1 = Vector256.FusedMultiplyAdd(hi, s, b1);
            }
            if (m > 2)
            {
                s = Vector256.Create(x2[i]);
                a2 = Vector256.FusedMultiplyAdd(lo, s, a2);
                b2 = Vector256.FusedMultiplyAdd(hi, s, b2);
            }
            if (m > 3)
            {
                s = Vector256.Create(x3[i]);
                a3 = Vector256.FusedMultiplyAdd(lo, s, a3);
                b3 = Vector256.FusedMultiplyAdd(hi, s, b3);
            }
            if (m > 4)
            {
                s = Vector256.Create(x4[i]);
                a4 = Vector256.FusedMultiplyAdd(lo, s, a4);
                b4 = Vector256.FusedMultiplyAdd(hi, s, b4);
            }
            if (m > 5)
            {
                s = Vector256.Create(x5[i]);
                a5 = Vector256.FusedMultiplyAdd(lo, s, a5);
                b5 = Vector256.FusedMultiplyAdd(hi, s, b5);
            }
        }
        a0.Store(y);
        b0.Store(y + 8);
        if (m > 1) { a1.Store(y + ldy); b1.Store(y + ldy + 8); }
        if (m > 2) { a2.Store(y + 2 * ldy); b2.Store(y + 2 * ldy + 8); }
        if (m > 3) { a3.Store(y + 3 * ldy); b3.Store(y + 3 * ldy + 8); }
        if (m > 4) { a4.Store(y + 4 * ldy); b4.Store(y + 4 * ldy + 8); }
        if (m > 5) { a5.Store(y + 5 * ldy); b5.Store(y + 5 * ldy + 8); }
    }

    private interface ITokenCount
    {
        static abstract int Count { get; }
    }

    private struct Tokens1 : ITokenCount { public static int Count => 1; }
    private struct Tokens2 : ITokenCount { public static int Count => 2; }
    private struct Tokens3 : ITokenCount { public static int Count => 3; }
    private struct Tokens4 : ITokenCount { public static int Count => 4; }
    private struct Tokens5 : ITokenCount { public static int Count => 5; }
    private struct Tokens6 : ITokenCount { public static int Count => 6; }

    /// <summary>How one k of a panel (16 weights) becomes two F32 vectors: rows 0–7 and rows 8–15.</summary>
    internal interface IPanelWeights
    {
        static abstract int BytesPerStep { get; }

        static abstract (Vector256<float> Lo, Vector256<float> Hi) Load(byte* p);
    }

    private struct F32Weights : IPanelWeights
    {
        public static int BytesPerStep => PanelRows * sizeof(float);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static (Vector256<float> Lo, Vector256<float> Hi) Load(byte* p) => (Vector256.Load((float*)p), Vector256.Load((float*)p + 8));
    }

    /// <summary>
    /// One 32-byte load and two unpacks against zero (BF16 is the high half of an F32). Per 128-bit lane vpunpcklwd
    /// takes values 0–3 | 8–11 and vpunpckhwd 4–7 | 12–15, which <see cref="Bf16Slot"/> has made rows 0–7 and 8–15.
    /// </summary>
    private struct Bf16Weights : IPanelWeights
    {
        public static int BytesPerStep => PanelRows * sizeof(ushort);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static (Vector256<float> Lo, Vector256<float> Hi) Load(byte* p)
        {
            if (Avx2.IsSupported)
            {
                var v = Vector256.Load((ushort*)p);
                return (Avx2.UnpackLow(Vector256<ushort>.Zero, v).AsSingle(), Avx2.UnpackHigh(Vector256<ushort>.Zero, v).AsSingle());
            }
            var u = (ushort*)p;
            return (Vector256.Create(F(u[0]), F(u[1]), F(u[2]), F(u[3]), F(u[8]), F(u[9]), F(u[10]), F(u[11])),
                    Vector256.Create(F(u[4]), F(u[5]), F(u[6]), F(u[7]), F(u[12]), F(u[13]), F(u[14]), F(u[15])));
        }

        private static float F(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);
    }

    /// <summary>
    /// Two 16-byte loads widened to 32-bit lanes, then IEEE half → single exactly with integer ops: the exponent and
    /// mantissa shifted into place and scaled by 2^112 (re-biases normals, turns subnormals into normals), infinity
    /// and NaN given the all-ones exponent, the sign put back.
    /// </summary>
    internal struct F16Weights : IPanelWeights
    {
        public static int BytesPerStep => PanelRows * sizeof(ushort);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static (Vector256<float> Lo, Vector256<float> Hi) Load(byte* p)
        {
            if (Avx2.IsSupported)
                return (Widen(Avx2.ConvertToVector256Int32((ushort*)p)), Widen(Avx2.ConvertToVector256Int32((ushort*)p + 8)));
            var h = (Half*)p;
            return (Vector256.Create((float)h[0], (float)h[1], (float)h[2], (float)h[3], (float)h[4], (float)h[5], (float)h[6], (float)h[7]),
                    Vector256.Create((float)h[8], (float)h[9], (float)h[10], (float)h[11], (float)h[12], (float)h[13], (float)h[14], (float)h[15]));
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static Vector256<float> Widen(Vector256<int> half)
        {
            var magnitude = half & Vector256.Create(0x7fff);
            var shifted = Vector256.ShiftLeft(magnitude, 13);
            var finite = shifted.AsSingle() * Vector256.Create(5.192296858534828e33f); // 2^112
            var special = (shifted | Vector256.Create(0x7f800000)).AsSingle();
            var value = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(magnitude, Vector256.Create(0x7c00)).AsSingle(), special, finite);
            return value | Vector256.ShiftLeft(half & Vector256.Create(0x8000), 16).AsSingle();
        }
    }
}
