using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace WeakToStrong.Backends.Cpu;

/// <summary>
/// Int8 linear weights (<see cref="LinearWeights.Int8"/>): y[t, n] = Σ_g (sw[n, g] · sx[t, g]) · Σ_{k∈g} qx[t, k] · qw[n, k].
/// <para>
/// Scheme. Along k the inputs fall in groups of <c>group</c> (the last one may be shorter). Each group of a weight
/// row and each group of a token's activations is quantized symmetrically (<see cref="QuantizeGroup"/>): scale =
/// max|v| / 127, q = round-to-even(v · 127 / max|v|), so q ∈ [−127, 127]. Weights are quantized once at load,
/// activations as they enter each linear. A group's integer dot product is exact (|Σ| ≤ 1024 · 127² &lt; 2²⁴, so it
/// also converts to F32 exactly); the groups are then summed in F32 in one fixed order:
/// acc = fma((float)Σ_g, sw · sx, acc) for g = 0, 1, … from zero, then the bias is added. So every output is the
/// same bits whatever the batch, tile or path, and equals a scalar evaluation of that formula.
/// </para>
/// <para>
/// Layout. Panels of 16 output rows as for float weights; within a panel, group after group: the group's inputs
/// four at a time, as 16 rows × 4 bytes (64 bytes: rows 0–7 then 8–15, each row's 4 consecutive k), then the 16
/// rows' F32 scales (64 bytes). k is padded with zeros to a multiple of 4. A panel is read front to back once per
/// token tile, scales where they are needed.
/// </para>
/// <para>
/// Kernel (AVX2). Per 4 inputs and 8 rows: vpsignb, vpmaddubsw, vpmaddwd, vpaddd — 32 multiply-adds in 4
/// instructions against 8 in one F32 FMA. vpmaddubsw multiplies unsigned by signed bytes, so the token's |q| is the
/// unsigned operand and the weight takes the token's sign (vpsignb); both are at most 127 in magnitude, so its
/// pairwise int16 sums (≤ 2 · 127²) never saturate. Without AVX2 a scalar loop computes the same sums. Both
/// CPU paths run this 256-bit kernel (no AVX-512 BW or AVX-VNNI variant yet), so they give the same bits.
/// </para>
/// </summary>
internal static unsafe partial class CpuLinear
{
    /// <summary>Inputs per scale, chosen from 32, 64 and 128 by measured error and speed (docs/int8.md).</summary>
    public const int Int8Group = 64;

    /// <summary>The largest group whose integer sums stay exact in F32 (1024 · 127² &lt; 2²⁴).</summary>
    public const int MaxInt8Group = 1024;

    /// <summary>Tokens per register tile: 4 × 2 int32 accumulators + 2 weight vectors + broadcasts and products.</summary>
    private const int Int8TileTokens = 4;

    /// <summary>Bytes of one step of the kernel: 16 rows × 4 inputs.</summary>
    private const int Int8StepBytes = PanelRows * 4;

    /// <summary>Bytes of a group's 16 row scales.</summary>
    private const int Int8ScaleBytes = PanelRows * sizeof(float);

    /// <summary>k rounded up to a whole number of 4-input steps.</summary>
    public static int Int8PaddedK(int k) => (k + 3) & ~3;

    /// <summary>Groups along k.</summary>
    public static int Int8Groups(int k, int group) => (k + group - 1) / group;

    /// <summary>Bytes of one panel: the quantized inputs (k padded to 4) and one scale per row per group.</summary>
    public static long Int8PanelBytes(int k, int group) => (long)Int8PaddedK(k) * PanelRows + (long)Int8Groups(k, group) * Int8ScaleBytes;

    /// <summary>Where group <paramref name="g"/> starts in a panel (every group before it is whole).</summary>
    private static long Int8GroupOffset(int g, int group) => (long)g * (group * PanelRows + Int8ScaleBytes);

    [ThreadStatic] private static float[]? _int8Rows;

    /// <summary>
    /// Quantizes W (row-major [n, k], or with <paramref name="transposed"/> Wᵀ [k, n]) in F32, F16 or BF16 straight
    /// into int8 panels: one pass over the source; besides the result, only one panel's rows in F32 per thread.
    /// </summary>
    public static CpuTensor PackInt8(byte* source, DType dtype, int n, int k, bool transposed, int group = Int8Group)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(k);
        if (group <= 0 || group % 4 != 0 || group > MaxInt8Group) throw new ArgumentOutOfRangeException(nameof(group), group, $"an int8 group is a multiple of 4 up to {MaxInt8Group}");
        if (dtype is not (DType.F32 or DType.BF16 or DType.F16)) throw new ArgumentException($"weight dtype {dtype} is not F32, BF16 or F16", nameof(dtype));
        long panels = (n + PanelRows - 1) / PanelRows, panelBytes = Int8PanelBytes(k, group);
        var packed = new CpuTensor(DType.I8, panels * panelBytes) { PackedRows = n, PackedColumns = k, PackedGroup = group };
        Native.MemoryAdvice.Populate((nint)packed.Pointer, packed.ByteLength);
        int size = dtype.Size();
        byte* src = source, dst = packed.Pointer;
        CpuParallel.For((int)panels, p =>
        {
            int rows = (int)Math.Min(PanelRows, n - (long)p * PanelRows); // rows past n stay zero, scale 0
            float* values = Scratch(ref _int8Rows, (long)rows * k); // [rows, k]
            long first = (long)p * PanelRows;
            if (transposed)
                for (int i = 0; i < k; i++)
                    for (int j = 0; j < rows; j++) values[(long)j * k + i] = Widen(src + ((long)i * n + first + j) * size, dtype);
            else
                for (int j = 0; j < rows; j++)
                {
                    byte* row = src + (first + j) * k * size;
                    for (int i = 0; i < k; i++) values[(long)j * k + i] = Widen(row + (long)i * size, dtype);
                }
            byte* panel = dst + p * panelBytes;
            sbyte* q = stackalloc sbyte[group];
            for (int j = 0; j < rows; j++)
                for (int g = 0, start = 0; start < k; g++, start += group)
                {
                    int length = Math.Min(group, k - start);
                    float scale = QuantizeGroup(values + (long)j * k + start, length, q, null);
                    byte* at = panel + Int8GroupOffset(g, group);
                    for (int i = 0; i < length; i++) at[i / 4 * Int8StepBytes + j * 4 + i % 4] = (byte)q[i];
                    ((float*)(at + (length + 3) / 4 * Int8StepBytes))[j] = scale;
                }
        });
        return packed;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Widen(byte* p, DType dtype) => dtype switch
    {
        DType.F32 => *(float*)p,
        DType.BF16 => BitConverter.Int32BitsToSingle(*(ushort*)p << 16),
        _ => (float)*(Half*)p,
    };

    /// <summary>
    /// Quantizes <paramref name="length"/> values symmetrically: returns the scale max|v| / 127 (0 for all zeros)
    /// and writes q = round-to-even(v · (127 / max|v|)) ∈ [−127, 127], and |q| when <paramref name="magnitudes"/> is
    /// given. 32 values at a time, then one by one: the same multiply and rounding either way.
    /// </summary>
    public static float QuantizeGroup(float* values, int length, sbyte* q, byte* magnitudes)
    {
        float max = 0;
        for (int i = 0; i < length; i++) max = MathF.Max(max, MathF.Abs(values[i]));
        if (max == 0)
        {
            new Span<sbyte>(q, length).Clear();
            if (magnitudes != null) new Span<byte>(magnitudes, length).Clear();
            return 0;
        }
        float inverse = 127f / max;
        int done = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            var scale = Vector256.Create(inverse);
            for (; done + 32 <= length; done += 32)
            {
                var a = Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(values + done) * scale));
                var b = Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(values + done + 8) * scale));
                var c = Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(values + done + 16) * scale));
                var d = Vector256.ConvertToInt32(Vector256.Round(Vector256.Load(values + done + 24) * scale));
                var bytes = Vector256.Narrow(Vector256.Narrow(a, b), Vector256.Narrow(c, d));
                bytes.Store(q + done);
                if (magnitudes != null) Vector256.Abs(bytes).AsByte().Store(magnitudes + done);
            }
        }
        for (int i = done; i < length; i++)
        {
            q[i] = (sbyte)MathF.Round(values[i] * inverse);
            if (magnitudes != null) magnitudes[i] = (byte)Math.Abs(q[i]);
        }
        return max / 127f;
    }

    /// <summary>Row <paramref name="row"/> of an int8 weight as F32: q · scale (a tied embedding's lookup).</summary>
    private static void RowInt8(CpuTensor packed, int row, Span<float> destination)
    {
        int k = packed.PackedColumns, group = packed.PackedGroup;
        int j = row % PanelRows;
        byte* panel = packed.Pointer + row / PanelRows * Int8PanelBytes(k, group);
        for (int g = 0, start = 0; start < k; g++, start += group)
        {
            int length = Math.Min(group, k - start);
            byte* at = panel + Int8GroupOffset(g, group);
            float scale = ((float*)(at + (length + 3) / 4 * Int8StepBytes))[j];
            for (int i = 0; i < length; i++) destination[start + i] = (sbyte)at[i / 4 * Int8StepBytes + j * 4 + i % 4] * scale;
        }
    }

    [ThreadStatic] private static byte[]? _int8Activations;

    /// <summary>
    /// y = x · Wᵀ (+ b) for an int8 weight: each token's activations quantized per group (in parallel for many
    /// tokens), then panels in parallel, tiles of up to <see cref="Int8TileTokens"/> tokens per pass over a panel.
    /// </summary>
    public static void RunInt8(float* x, CpuTensor w, float* bias, float* y, int tokens, int k, int n) =>
        RunInt8(x, w, bias, y, tokens, k, n, Avx2.IsSupported);

    /// <summary><see cref="RunInt8(float*, CpuTensor, float*, float*, int, int, int)"/> on the AVX2 kernel
    /// (<paramref name="vector"/>) or the scalar loop a CPU without AVX2 runs (tests run both).</summary>
    internal static void RunInt8(float* x, CpuTensor w, float* bias, float* y, int tokens, int k, int n, bool vector)
    {
        if (vector && !Avx2.IsSupported) throw new PlatformNotSupportedException("the int8 kernel needs AVX2");
        if (w.DType != DType.I8 || w.PackedRows != n || w.PackedColumns != k)
            throw new ArgumentException($"weight is not an int8 weight packed for a {n}×{k} linear (it is {w.DType}, packed {w.PackedRows}×{w.PackedColumns})", nameof(w));
        int group = w.PackedGroup, groups = Int8Groups(k, group), kp = Int8PaddedK(k);
        // Activations: q [tokens, kp], |q| [tokens, kp], then the scales [tokens, groups] (kp is a multiple of 4).
        long quantizedBytes = (long)tokens * kp;
        long need = 2 * quantizedBytes + (long)tokens * groups * sizeof(float);
        if (_int8Activations is null || _int8Activations.Length < need) _int8Activations = GC.AllocateUninitializedArray<byte>(checked((int)need), pinned: true);
        byte* scratch = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_int8Activations));
        nint qp = (nint)scratch, ap = (nint)(scratch + quantizedBytes), sp = (nint)(scratch + 2 * quantizedBytes), xp = (nint)x;
        CpuParallel.For(tokens, t =>
        {
            sbyte* q = (sbyte*)qp + (long)t * kp;
            byte* a = (byte*)ap + (long)t * kp;
            float* source = (float*)xp + (long)t * k;
            for (int g = 0, start = 0; start < k; g++, start += group)
                ((float*)sp)[(long)t * groups + g] = QuantizeGroup(source + start, Math.Min(group, k - start), q + start, a + start);
            for (int i = k; i < kp; i++) q[i] = 0; // the padding multiplies the weights' zero padding
            for (int i = k; i < kp; i++) a[i] = 0;
        }, serial: (long)tokens * k < 1 << 15);

        int panels = (n + PanelRows - 1) / PanelRows;
        long panelBytes = Int8PanelBytes(k, group);
        int perTask = PanelsPerTask(tokens, tokens > Int8TileTokens, 1, panels, panelBytes);
        int tasks = (panels + perTask - 1) / perTask;
        nint bp = (nint)bias, yp = (nint)y, wp = (nint)w.Pointer;
        var activations = new Int8Activations((sbyte*)qp, (byte*)ap, (float*)sp, k, kp, group, groups);
        CpuParallel.For(tasks, task =>
        {
            int p0 = task * perTask, p1 = Math.Min(panels, p0 + perTask);
            Int8Panels(activations, (byte*)wp, panelBytes, (float*)yp, tokens, n, p0, p1, vector);
            AddBias((float*)bp, (float*)yp, tokens, n, p0 * PanelRows, Math.Min(n, p1 * PanelRows));
        }, serial: (long)tokens * k * n < 1 << 16);
    }

    /// <summary>A batch's quantized activations: q and |q| [tokens, PaddedK], scales [tokens, Groups].</summary>
    private readonly struct Int8Activations(sbyte* q, byte* magnitudes, float* scales, int k, int paddedK, int group, int groups)
    {
        public readonly sbyte* Q = q;
        public readonly byte* Magnitudes = magnitudes;
        public readonly float* Scales = scales;
        public readonly int K = k, PaddedK = paddedK, Group = group, Groups = groups;
    }

    /// <summary>Panels [p0, p1) for every token, in tiles; <paramref name="vector"/> picks the AVX2 kernel or the
    /// scalar loop (the same sums and the same F32 operations in the same order).</summary>
    private static void Int8Panels(in Int8Activations x, byte* w, long panelBytes, float* y, int tokens, int n, int p0, int p1, bool vector)
    {
        int tiles = (tokens + Int8TileTokens - 1) / Int8TileTokens;
        float* acc = stackalloc float[Int8TileTokens * PanelRows]; // [tile tokens, 16]
        for (int p = p0; p < p1; p++)
        {
            byte* panel = w + p * panelBytes;
            int rows = Math.Min(PanelRows, n - p * PanelRows);
            for (int tile = 0; tile < tiles; tile++)
            {
                var (t0, count) = TileSpan(tokens, tiles, tile);
                if (vector) Int8Tile(count, x, t0, panel, acc);
                else Int8Scalar(count, x, t0, panel, acc);
                for (int t = 0; t < count; t++)
                    new ReadOnlySpan<float>(acc + t * PanelRows, rows).CopyTo(new Span<float>(y + (long)(t0 + t) * n + p * PanelRows, rows));
            }
        }
    }

    private static void Int8Tile(int tokens, in Int8Activations x, int t0, byte* panel, float* acc)
    {
        switch (tokens)
        {
            case 1: Int8Kernel<Tokens1>(x, t0, panel, acc); break;
            case 2: Int8Kernel<Tokens2>(x, t0, panel, acc); break;
            case 3: Int8Kernel<Tokens3>(x, t0, panel, acc); break;
            default: Int8Kernel<Tokens4>(x, t0, panel, acc); break;
        }
    }

    /// <summary>
    /// acc[t, 0…15] = the tile's outputs for one panel, <typeparamref name="TT"/>.Count ≤ 4 tokens from
    /// <paramref name="t0"/>. Per group, two int32 accumulators per token (rows 0–7, 8–15) take the exact sums; at
    /// the group's end they are scaled into acc (in L1, touched once per group).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Int8Kernel<TT>(in Int8Activations x, int t0, byte* panel, float* acc) where TT : struct, ITokenCount
    {
        int m = TT.Count;
        for (int i = 0; i < m * PanelRows; i += 8) Vector256<float>.Zero.Store(acc + i);
        var ones = Vector256.Create((short)1);
        // The batch's fields as locals: read through the reference they would be reloaded at every group.
        int k = x.K, group = x.Group, groups = x.Groups;
        long stride = x.PaddedK;
        // Each token's 4 inputs of a step are one int32: broadcast, they meet the 4 weights of every row.
        int* q0 = (int*)(x.Q + t0 * stride), q1 = (int*)((sbyte*)q0 + stride), q2 = (int*)((sbyte*)q1 + stride), q3 = (int*)((sbyte*)q2 + stride);
        int* a0 = (int*)(x.Magnitudes + t0 * stride), a1 = (int*)((byte*)a0 + stride), a2 = (int*)((byte*)a1 + stride), a3 = (int*)((byte*)a2 + stride);
        float* s0 = x.Scales + (long)t0 * groups, s1 = s0 + groups, s2 = s1 + groups, s3 = s2 + groups;
        for (int g = 0, start = 0; g < groups; g++, start += group)
        {
            int steps = (Math.Min(group, k - start) + 3) / 4, first = start / 4;
            Vector256<int> l0 = default, h0 = default, l1 = default, h1 = default, l2 = default, h2 = default, l3 = default, h3 = default;
            for (int i = first; i < first + steps; i++, panel += Int8StepBytes)
            {
                var lo = Vector256.Load((sbyte*)panel);
                var hi = Vector256.Load((sbyte*)panel + 32);
                l0 += Step(a0[i], q0[i], lo, ones);
                h0 += Step(a0[i], q0[i], hi, ones);
                if (m > 1)
                {
                    l1 += Step(a1[i], q1[i], lo, ones);
                    h1 += Step(a1[i], q1[i], hi, ones);
                }
                if (m > 2)
                {
                    l2 += Step(a2[i], q2[i], lo, ones);
                    h2 += Step(a2[i], q2[i], hi, ones);
                }
                if (m > 3)
                {
                    l3 += Step(a3[i], q3[i], lo, ones);
                    h3 += Step(a3[i], q3[i], hi, ones);
                }
            }
            var scaleLo = Vector256.Load((float*)panel);
            var scaleHi = Vector256.Load((float*)panel + 8);
            panel += Int8ScaleBytes;
            Scale(acc, l0, h0, scaleLo, scaleHi, s0[g]);
            if (m > 1) Scale(acc + PanelRows, l1, h1, scaleLo, scaleHi, s1[g]);
            if (m > 2) Scale(acc + 2 * PanelRows, l2, h2, scaleLo, scaleHi, s2[g]);
            if (m > 3) Scale(acc + 3 * PanelRows, l3, h3, scaleLo, scaleHi, s3[g]);
        }
    }

    /// <summary>8 rows' sums of 4 products: |q| (unsigned) times the weights given q's signs, pairs to int16 (no
    /// saturation: |each| ≤ 127), then pairs of those to int32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<int> Step(int magnitudes, int q, Vector256<sbyte> weights, Vector256<short> ones) =>
        Avx2.MultiplyAddAdjacent(Avx2.MultiplyAddAdjacent(Vector256.Create(magnitudes).AsByte(), Avx2.Sign(weights, Vector256.Create(q).AsSByte())), ones);

    /// <summary>acc[0…15] = fma((float)sum, weight scale · token scale, acc[0…15]).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Scale(float* acc, Vector256<int> lo, Vector256<int> hi, Vector256<float> scaleLo, Vector256<float> scaleHi, float tokenScale)
    {
        var s = Vector256.Create(tokenScale);
        Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(lo), scaleLo * s, Vector256.Load(acc)).Store(acc);
        Vector256.FusedMultiplyAdd(Vector256.ConvertToSingle(hi), scaleHi * s, Vector256.Load(acc + 8)).Store(acc + 8);
    }

    /// <summary><see cref="Int8Kernel{TT}"/> one value at a time, for a CPU without AVX2.</summary>
    private static void Int8Scalar(int tokens, in Int8Activations x, int t0, byte* panel, float* acc)
    {
        for (int t = 0; t < tokens; t++)
        {
            sbyte* q = x.Q + (long)(t0 + t) * x.PaddedK;
            float* scales = x.Scales + (long)(t0 + t) * x.Groups;
            for (int j = 0; j < PanelRows; j++)
            {
                float sum = 0;
                for (int g = 0, start = 0; g < x.Groups; g++, start += x.Group)
                {
                    int steps = (Math.Min(x.Group, x.K - start) + 3) / 4;
                    byte* at = panel + Int8GroupOffset(g, x.Group);
                    int dot = 0;
                    for (int i = 0; i < 4 * steps; i++) dot += q[start + i] * (sbyte)at[i / 4 * Int8StepBytes + j * 4 + i % 4];
                    float weightScale = ((float*)(at + steps * Int8StepBytes))[j];
                    sum = MathF.FusedMultiplyAdd(dot, weightScale * scales[g], sum);
                }
                acc[t * PanelRows + j] = sum;
            }
        }
    }
}
