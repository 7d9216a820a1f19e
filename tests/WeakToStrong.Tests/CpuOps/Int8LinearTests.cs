using System.Runtime.InteropServices;
using WeakToStrong.Backends;
using WeakToStrong.Backends.Cpu;

namespace WeakToStrong.Tests.CpuOps;

/// <summary>
/// Int8 linear weights against a scalar evaluation of the scheme written here from its definition (quantize each
/// group of a weight row and of a token symmetrically, exact integer dot per group, then acc = fma(dot, sw·sx, acc)
/// over the groups in order, then the bias): the kernel must give the same bits for every dtype, batch, odd size,
/// group size and path (<see cref="Int8LinearOnAvx2"/>, <see cref="Int8LinearOnAvx512"/>, and the scalar loop a
/// CPU without AVX2 runs).
/// </summary>
public abstract unsafe class Int8LinearTests
{
    private readonly CpuBackend _b;

    protected Int8LinearTests(CpuIsa isa)
    {
        Skip.IfNot(CpuIsas.IsSupported(isa), $"this CPU has no {CpuIsas.Name(isa)}: that path is not tested on this machine");
        _b = new CpuBackend(isa);
    }

    private static float[] Random(int n, int seed, float scale = 1f)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (r.NextSingle() * 2 - 1) * scale).ToArray();
    }

    /// <summary>Values stored in <paramref name="dtype"/>: the bytes and the exact floats they hold.</summary>
    private static (byte[] Bytes, float[] Values) Stored(float[] values, DType dtype) => dtype switch
    {
        DType.F32 => (MemoryMarshal.AsBytes(values.AsSpan()).ToArray(), values),
        DType.BF16 => (MemoryMarshal.AsBytes(values.Select(v => (ushort)(BitConverter.SingleToInt32Bits(v) >> 16)).ToArray().AsSpan()).ToArray(),
            values.Select(v => BitConverter.Int32BitsToSingle(BitConverter.SingleToInt32Bits(v) & unchecked((int)0xFFFF0000))).ToArray()),
        _ => (MemoryMarshal.AsBytes(values.Select(v => (Half)v).ToArray().AsSpan()).ToArray(), values.Select(v => (float)(Half)v).ToArray()),
    };

    /// <summary>Wᵀ [k, n] of row-major W [n, k] bytes (GPT-2's Conv1D layout).</summary>
    private static byte[] Transpose(byte[] bytes, int n, int k, int size)
    {
        var t = new byte[bytes.Length];
        for (int o = 0; o < n; o++)
            for (int i = 0; i < k; i++)
                bytes.AsSpan((o * k + i) * size, size).CopyTo(t.AsSpan((i * n + o) * size));
        return t;
    }

    /// <summary>Each group of each row of [rows, k]: scale = max|v| / 127, q = round-to-even(v · 127 / max|v|).</summary>
    private static (sbyte[] Q, float[] Scales) Quantize(float[] v, int rows, int k, int group)
    {
        int groups = (k + group - 1) / group;
        var q = new sbyte[rows * k];
        var scales = new float[rows * groups];
        for (int r = 0; r < rows; r++)
            for (int g = 0; g < groups; g++)
            {
                int start = g * group, end = Math.Min(k, start + group);
                float max = 0;
                for (int i = start; i < end; i++) max = Math.Max(max, Math.Abs(v[r * k + i]));
                if (max == 0) continue;
                float inverse = 127f / max;
                for (int i = start; i < end; i++) q[r * k + i] = (sbyte)MathF.Round(v[r * k + i] * inverse, MidpointRounding.ToEven);
                scales[r * groups + g] = max / 127f;
            }
        return (q, scales);
    }

    /// <summary>The scheme, one output at a time.</summary>
    private static float[] Reference(float[] x, float[] w, float[]? bias, int tokens, int k, int n, int group)
    {
        int groups = (k + group - 1) / group;
        var (qx, sx) = Quantize(x, tokens, k, group);
        var (qw, sw) = Quantize(w, n, k, group);
        var y = new float[tokens * n];
        for (int t = 0; t < tokens; t++)
            for (int o = 0; o < n; o++)
            {
                float acc = 0;
                for (int g = 0; g < groups; g++)
                {
                    int dot = 0;
                    for (int i = g * group; i < Math.Min(k, (g + 1) * group); i++) dot += qx[t * k + i] * qw[o * k + i];
                    acc = MathF.FusedMultiplyAdd(dot, sw[o * groups + g] * sx[t * groups + g], acc);
                }
                y[t * n + o] = bias is null ? acc : acc + bias[o];
            }
        return y;
    }

    private Tensor Upload(float[] values)
    {
        var t = _b.Allocate(DType.F32, values.Length);
        _b.Upload(t, MemoryMarshal.AsBytes(values.AsSpan()));
        return t;
    }

    private float[] Linear(Tensor w, float[] x, float[]? bias, int tokens, int k, int n)
    {
        using var xt = Upload(x);
        using var bt = bias is null ? null : Upload(bias);
        using var y = _b.Allocate(DType.F32, tokens * n);
        _b.Linear(xt, w, bt, y, tokens, k, n);
        var result = new float[tokens * n];
        _b.Download(y, result);
        return result;
    }

    private static void SameBits(float[] expected, float[] actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            if (BitConverter.SingleToInt32Bits(expected[i]) != BitConverter.SingleToInt32Bits(actual[i]))
                Assert.Fail($"{what}: element {i} is {actual[i]:R}, the reference {expected[i]:R}");
    }

    public static IEnumerable<object[]> Batches()
    {
        foreach (var dtype in new[] { DType.F32, DType.BF16, DType.F16 })
            foreach (int tokens in new[] { 1, 2, 3, 4, 5, 7, 8, 16, 17, 33 })
                yield return [dtype, tokens];
    }

    [SkippableTheory]
    [MemberData(nameof(Batches))]
    public void Int8LinearEqualsTheScalarReferenceBitForBit(DType dtype, int tokens)
    {
        const int k = 150, n = 37; // two whole groups and a partial one of 22 (a 2-input tail); three panels, the last partial
        var x = Random(tokens * k, 1, 3f);
        var (bytes, w) = Stored(Random(n * k, 2, 0.5f), dtype);
        var bias = Random(n, 3);
        var expected = Reference(x, w, bias, tokens, k, n, CpuLinear.Int8Group);
        using var rowMajor = _b.LoadLinear(bytes, dtype, n, k, transposed: false, LinearWeights.Int8);
        using var transposed = _b.LoadLinear(Transpose(bytes, n, k, dtype.Size()), dtype, n, k, transposed: true, LinearWeights.Int8);
        Assert.Equal(DType.I8, rowMajor.DType);
        SameBits(expected, Linear(rowMajor, x, bias, tokens, k, n), $"{dtype}, {tokens} tokens");
        SameBits(expected, Linear(transposed, x, bias, tokens, k, n), $"{dtype}, {tokens} tokens, loaded from Wᵀ");
    }

    [SkippableTheory]
    [InlineData(1, 1, 1)]
    [InlineData(3, 5, 3)]
    [InlineData(6, 64, 16)]
    [InlineData(17, 77, 33)]
    [InlineData(2, 688, 48)]
    [InlineData(9, 256, 150)]
    public void OddSizesEqualTheReference(int tokens, int k, int n)
    {
        var x = Random(tokens * k, 4);
        var (bytes, w) = Stored(Random(n * k, 5, 0.2f), DType.BF16);
        using var weight = _b.LoadLinear(bytes, DType.BF16, n, k, transposed: false, LinearWeights.Int8);
        SameBits(Reference(x, w, null, tokens, k, n, CpuLinear.Int8Group), Linear(weight, x, null, tokens, k, n), $"[{n}, {k}], {tokens} tokens");
    }

    /// <summary>Other group sizes, and the scalar loop a CPU without AVX2 runs, against the same reference.</summary>
    [SkippableTheory]
    [InlineData(32, 1)]
    [InlineData(32, 7)]
    [InlineData(128, 2)]
    [InlineData(128, 16)]
    [InlineData(4, 5)]
    public void EveryGroupSizeAndTheScalarLoopEqualTheReference(int group, int tokens)
    {
        const int k = 301, n = 21;
        var x = Random(tokens * k, 6, 2f);
        var (bytes, w) = Stored(Random(n * k, 7), DType.F32);
        var bias = Random(n, 8);
        var expected = Reference(x, w, bias, tokens, k, n, group);
        using var weight = Pack(bytes, DType.F32, n, k, group);
        fixed (float* xp = x, bp = bias)
            foreach (bool vector in new[] { true, false })
            {
                var y = new float[tokens * n];
                fixed (float* yp = y) CpuLinear.RunInt8(xp, weight, bp, yp, tokens, k, n, vector);
                SameBits(expected, y, $"group {group}, {tokens} tokens, {(vector ? "avx2 kernel" : "scalar loop")}");
            }
    }

    private static CpuTensor Pack(byte[] bytes, DType dtype, int n, int k, int group)
    {
        fixed (byte* p = bytes) return CpuLinear.PackInt8(p, dtype, n, k, transposed: false, group);
    }

    /// <summary>Quantization rounds half to even in the vector part (the first 32 values) and the scalar tail alike,
    /// and a group of zeros has scale 0.</summary>
    [SkippableFact]
    public void QuantizationRoundsHalfToEvenEverywhere()
    {
        float[] pattern = [127f, 2.5f, -2.5f, 3.5f, 0.5f, -0.5f, 126.5f, -1.5f];
        var values = Enumerable.Range(0, 40).Select(i => pattern[i % pattern.Length]).ToArray(); // max 127: v · 127/127 = v
        sbyte[] expected = [127, 2, -2, 4, 0, 0, 126, -2];
        var q = new sbyte[40];
        var magnitudes = new byte[40];
        float scale;
        fixed (float* v = values)
        fixed (sbyte* qp = q)
        fixed (byte* mp = magnitudes)
            scale = CpuLinear.QuantizeGroup(v, values.Length, qp, mp);
        Assert.Equal(1f, scale);
        for (int i = 0; i < values.Length; i++)
        {
            Assert.Equal(expected[i % expected.Length], q[i]);
            Assert.Equal((byte)Math.Abs(expected[i % expected.Length]), magnitudes[i]);
        }
        var zeros = new float[33];
        fixed (float* v = zeros)
        fixed (sbyte* qp = q)
            Assert.Equal(0f, CpuLinear.QuantizeGroup(v, zeros.Length, qp, null));
        Assert.All(q[..33], b => Assert.Equal(0, b));
    }

    /// <summary>Resident bytes, scales and padding included, within 1.15× the int8 bytes for model shapes.</summary>
    [SkippableTheory]
    [InlineData(2304, 768)]   // GPT-2 q|k|v
    [InlineData(768, 3072)]   // GPT-2 MLP down
    [InlineData(1376, 256)]   // the bundled large model's gate|up
    [InlineData(256, 688)]    // its down (k not a multiple of the group)
    [InlineData(50257, 768)]  // GPT-2's tied embedding (n not a multiple of 16)
    public void Int8WeightsHoldAtMost115PercentOfTheirBytes(int n, int k)
    {
        var bytes = new byte[(long)n * k * 2]; // BF16 zeros: only the size matters
        using var weight = _b.LoadLinear(bytes, DType.BF16, n, k, transposed: false, LinearWeights.Int8);
        double ratio = (double)weight.ByteLength / ((long)n * k);
        Assert.True(ratio <= 1.15, $"[{n}, {k}]: {weight.ByteLength} bytes = {ratio:F4}× the int8 bytes");
        Assert.True(ratio >= 1.0625, $"[{n}, {k}]: {ratio:F4}× cannot hold one F32 scale per 64 weights");
    }

    /// <summary>A tied embedding held as int8 is read back as q · scale, the values the lm_head multiplies by.</summary>
    [SkippableFact]
    public void EmbedReadsAnInt8TiedEmbeddingAsItsDequantizedRows()
    {
        const int vocab = 37, dim = 150;
        var (bytes, values) = Stored(Random(vocab * dim, 9), DType.BF16);
        using var table = _b.LoadLinear(bytes, DType.BF16, vocab, dim, transposed: false, LinearWeights.Int8);
        var (q, scales) = Quantize(values, vocab, dim, CpuLinear.Int8Group);
        int groups = (dim + CpuLinear.Int8Group - 1) / CpuLinear.Int8Group;
        int[] tokens = [0, 5, 36, 17, 16, 15];
        var layout = new BatchLayout
        {
            Tokens = tokens, Positions = new int[tokens.Length], TokenSequence = new int[tokens.Length],
            SlotMapping = new int[tokens.Length], BlockTables = [], MaxBlocksPerSequence = 0,
        };
        using var x = _b.Allocate(DType.F32, tokens.Length * dim);
        _b.Embed(layout, table, null, x, dim);
        var got = new float[tokens.Length * dim];
        _b.Download(x, got);
        for (int t = 0; t < tokens.Length; t++)
            for (int i = 0; i < dim; i++)
                Assert.Equal(q[tokens[t] * dim + i] * scales[tokens[t] * groups + i / CpuLinear.Int8Group], got[t * dim + i]);
    }
}

[Trait("Category", "Unit")]
public sealed class Int8LinearOnAvx2() : Int8LinearTests(CpuIsa.Avx2);

[Trait("Category", "Unit")]
public sealed class Int8LinearOnAvx512() : Int8LinearTests(CpuIsa.Avx512);
