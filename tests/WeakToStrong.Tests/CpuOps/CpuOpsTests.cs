using System.Runtime.Intrinsics;
using System.Runtime.InteropServices;
using WeakToStrong.Backends;
using WeakToStrong.Backends.Cpu;

namespace WeakToStrong.Tests.CpuOps;

/// <summary>
/// The fast CPU ops against naive float64 loops written from the definitions, on seeded random inputs at odd
/// sizes (tails of the 8- and 16-wide vectors, partial panels and tiles, odd token counts) — on every vector path
/// (<see cref="CpuOpsOnAvx2"/>, <see cref="CpuOpsOnAvx512"/>); a path this CPU lacks is reported as skipped.
/// </summary>
public abstract class CpuOpsTests
{
    private readonly CpuBackend _b;

    protected CpuOpsTests(CpuIsa isa)
    {
        Skip.IfNot(CpuIsas.IsSupported(isa), $"this CPU has no {CpuIsas.Name(isa)}: that path is not tested on this machine");
        _b = new CpuBackend(isa);
    }

    /// <summary>The suite's one tolerance rule; F32 accumulation over k terms carries ~√k ulps of rounding.</summary>
    private static void Close(double expected, double actual, double atol, double rtol, string what) =>
        new Tolerance(atol, rtol).AssertClose(expected, actual, what);

    private static float[] Random(int n, int seed, float scale = 1f)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (r.NextSingle() * 2 - 1) * scale).ToArray();
    }

    private Tensor Upload(float[] values)
    {
        var t = _b.Allocate(DType.F32, values.Length);
        _b.Upload(t, MemoryMarshal.AsBytes(values.AsSpan()));
        return t;
    }

    private float[] Download(Tensor t, int n)
    {
        var result = new float[n];
        _b.Download(t, result);
        return result;
    }

    /// <summary>A linear weight [n, k] stored in <paramref name="dtype"/> and prepared for the backend; returns the
    /// tensor and the exact row-major values it holds.</summary>
    private (Tensor Tensor, double[] Values) LinearWeights(DType dtype, int n, int k, int seed)
    {
        var (t, values) = Weights(dtype, n * k, seed);
        return (_b.PrepareLinear(t, n, k), values);
    }

    /// <summary>Weights stored in <paramref name="dtype"/>; returns the tensor and the exact values it holds.</summary>
    private (Tensor Tensor, double[] Values) Weights(DType dtype, int n, int seed)
    {
        var f = Random(n, seed, 0.5f);
        var t = _b.Allocate(dtype, n);
        switch (dtype)
        {
            case DType.F32:
                _b.Upload(t, MemoryMarshal.AsBytes(f.AsSpan()));
                return (t, f.Select(v => (double)v).ToArray());
            case DType.BF16:
                var bf = f.Select(v => (ushort)(BitConverter.SingleToInt32Bits(v) >> 16)).ToArray();
                _b.Upload(t, MemoryMarshal.AsBytes(bf.AsSpan()));
                return (t, bf.Select(h => (double)BitConverter.Int32BitsToSingle(h << 16)).ToArray());
            default:
                var hf = f.Select(v => (Half)v).ToArray();
                _b.Upload(t, MemoryMarshal.AsBytes(hf.AsSpan()));
                return (t, hf.Select(h => (double)h).ToArray());
        }
    }

    public static IEnumerable<object[]> LinearShapes()
    {
        foreach (var dtype in new[] { DType.F32, DType.BF16, DType.F16 })
            foreach (var (t, k, n) in new[] { (1, 1, 1), (1, 7, 5), (2, 8, 4), (3, 33, 37), (5, 64, 9), (17, 100, 23), (1, 768, 50), (16, 768, 64), (13, 40, 300), (1, 96, 128), (2, 100, 130), (3, 50, 200), (33, 64, 40), (4, 16, 70) })
                yield return [dtype, t, k, n];
    }

    [SkippableTheory]
    [MemberData(nameof(LinearShapes))]
    public void LinearMatchesANaiveDotProduct(DType dtype, int tokens, int k, int n)
    {
        var x = Random(tokens * k, 1);
        var (w, wv) = LinearWeights(dtype, n, k, 2);
        var bias = Random(n, 3);
        using var xt = Upload(x);
        using var bt = Upload(bias);
        using var y = _b.Allocate(DType.F32, tokens * n);
        _b.Linear(xt, w, bt, y, tokens, k, n);
        var got = Download(y, tokens * n);
        for (int t = 0; t < tokens; t++)
            for (int o = 0; o < n; o++)
            {
                double expected = bias[o];
                for (int i = 0; i < k; i++) expected += x[t * k + i] * wv[o * k + i];
                Close(expected, got[t * n + o], 1e-5 * Math.Sqrt(k), 1e-5, $"{dtype} y[{t},{o}]");
            }
        w.Dispose();
    }

    /// <summary>The loader's path (packing straight from file bytes, row-major or transposed) gives the weight
    /// PrepareLinear gives, bit for bit.</summary>
    [SkippableTheory]
    [MemberData(nameof(LinearShapes))]
    public void LoadLinearFromBytesEqualsPrepareLinear(DType dtype, int tokens, int k, int n)
    {
        var (t, values) = Weights(dtype, n * k, 7);
        var bytes = new byte[t.ByteLength];
        switch (dtype)
        {
            case DType.F32:
                MemoryMarshal.AsBytes(values.Select(v => (float)v).ToArray().AsSpan()).CopyTo(bytes);
                break;
            case DType.BF16:
                MemoryMarshal.AsBytes(values.Select(v => (ushort)(BitConverter.SingleToInt32Bits((float)v) >> 16)).ToArray().AsSpan()).CopyTo(bytes);
                break;
            default:
                MemoryMarshal.AsBytes(values.Select(v => (Half)v).ToArray().AsSpan()).CopyTo(bytes);
                break;
        }
        // Wᵀ [k, n] row-major, as GPT-2's Conv1D stores it.
        int size = dtype.Size();
        var transposed = new byte[bytes.Length];
        for (int o = 0; o < n; o++)
            for (int i = 0; i < k; i++)
                bytes.AsSpan((o * k + i) * size, size).CopyTo(transposed.AsSpan((i * n + o) * size));
        using var prepared = _b.PrepareLinear(t, n, k);
        using var loaded = _b.LoadLinear(bytes, dtype, n, k);
        using var loadedTransposed = _b.LoadLinear(transposed, dtype, n, k, transposed: true);
        using var xt = Upload(Random(tokens * k, 8));
        var expected = Run(prepared);
        Assert.Equal(expected, Run(loaded));
        Assert.Equal(expected, Run(loadedTransposed));

        float[] Run(Tensor w)
        {
            using var y = _b.Allocate(DType.F32, tokens * n);
            _b.Linear(xt, w, null, y, tokens, k, n);
            return Download(y, tokens * n);
        }
    }

    /// <summary>A fused weight packed straight from its parts (q|k|v, gate|up, with part boundaries inside panels)
    /// is the weight packed from the parts copied into one span, bit for bit.</summary>
    [SkippableTheory]
    [MemberData(nameof(LinearShapes))]
    public unsafe void StackedLoadFromPartsEqualsLoadFromOneSpan(DType dtype, int tokens, int k, int n)
    {
        var bytes = new byte[(long)n * k * dtype.Size()];
        new Random(11).NextBytes(bytes);
        if (dtype != DType.F32)
            for (int i = 1; i < bytes.Length; i += 2) bytes[i] &= 0x3f; // finite BF16 / F16 values, no NaN or infinity
        else
            for (int i = 3; i < bytes.Length; i += 4) bytes[i] &= 0x3f;
        // Three parts; the first boundary falls inside a panel whenever n allows it.
        int a = Math.Min(n, 5), b = (n - a) / 2;
        int[] rows = [a, b, n - a - b];
        long rowBytes = (long)k * dtype.Size();
        using var stacked = _b.LoadLinear(bytes, dtype, n, k);
        Tensor fromParts;
        fixed (byte* p = bytes)
            fromParts = ((IStackedLinearLoad)_b).LoadLinearStacked([(nint)p, (nint)(p + a * rowBytes), (nint)(p + (a + b) * rowBytes)], rows, dtype, k);
        using var parts = fromParts;
        using var xt = Upload(Random(tokens * k, 8));
        Assert.Equal(Run(stacked), Run(parts));

        float[] Run(Tensor w)
        {
            using var y = _b.Allocate(DType.F32, tokens * n);
            _b.Linear(xt, w, null, y, tokens, k, n);
            return Download(y, tokens * n);
        }
    }

    [SkippableTheory]
    [InlineData(DType.F32, 9)]
    [InlineData(DType.BF16, 9)]
    [InlineData(DType.F16, 9)]
    [InlineData(DType.BF16, 16)]
    [InlineData(DType.F32, 23)]
    [InlineData(DType.BF16, 3)]
    [InlineData(DType.F32, 2)]
    public void LinearGivesBitIdenticalRowsWhateverTheBatch(DType dtype, int tokens)
    {
        const int k = 77, n = 37; // three panels, the last one partial
        var (w, _) = LinearWeights(dtype, n, k, 4);
        var x = Random(tokens * k, 5);
        using var xt = Upload(x);
        using var y = _b.Allocate(DType.F32, tokens * n);
        _b.Linear(xt, w, null, y, tokens, k, n);
        var batched = Download(y, tokens * n);
        for (int t = 0; t < tokens; t++)
        {
            using var one = Upload(x[(t * k)..((t + 1) * k)]);
            using var y1 = _b.Allocate(DType.F32, n);
            _b.Linear(one, w, null, y1, 1, k, n);
            Assert.Equal(batched[(t * n)..((t + 1) * n)], Download(y1, n));
        }
        w.Dispose();
    }

    [SkippableTheory]
    [InlineData(DType.F32)]
    [InlineData(DType.BF16)]
    [InlineData(DType.F16)]
    public void EmbedReadsRowsOfAPreparedTiedEmbedding(DType dtype)
    {
        const int vocab = 37, dim = 20;
        var (table, values) = LinearWeights(dtype, vocab, dim, 6);
        int[] tokens = [0, 5, 36, 17, 16, 15];
        var layout = new BatchLayout
        {
            Tokens = tokens, Positions = new int[tokens.Length], TokenSequence = new int[tokens.Length],
            SlotMapping = new int[tokens.Length], BlockTables = [], MaxBlocksPerSequence = 0,
        };
        using var x = _b.Allocate(DType.F32, tokens.Length * dim);
        _b.Embed(layout, table, null, x, dim);
        var got = Download(x, tokens.Length * dim);
        for (int t = 0; t < tokens.Length; t++)
            for (int i = 0; i < dim; i++)
                Assert.Equal(values[tokens[t] * dim + i], got[t * dim + i]);
        table.Dispose();
    }

    [SkippableFact]
    public unsafe void F16PanelsWidenEveryHalfExactly()
    {
        var halves = new ushort[16];
        var lo = new float[8];
        var hi = new float[8];
        for (int start = 0; start < 1 << 16; start += 16)
        {
            for (int i = 0; i < 16; i++) halves[i] = (ushort)(start + i);
            fixed (ushort* p = halves)
            {
                var (l, h) = CpuLinear.F16Weights.Load((byte*)p);
                l.CopyTo(lo);
                h.CopyTo(hi);
            }
            for (int i = 0; i < 16; i++)
            {
                float expected = (float)BitConverter.UInt16BitsToHalf(halves[i]);
                float got = i < 8 ? lo[i] : hi[i - 8];
                if (float.IsNaN(expected)) Assert.True(float.IsNaN(got), $"half 0x{halves[i]:x4}");
                else Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(got), $"half 0x{halves[i]:x4}: {got}, expected {expected}");
            }
        }
    }

    [SkippableFact]
    public void LinearRefusesAWeightThatWasNotPrepared()
    {
        var (w, _) = Weights(DType.F32, 4 * 8, 7);
        using var x = _b.Allocate(DType.F32, 8);
        using var y = _b.Allocate(DType.F32, 4);
        var e = Assert.Throws<ArgumentException>(() => _b.Linear(x, w, null, y, 1, 8, 4));
        Assert.Contains("PrepareLinear", e.Message);
        var wrongShape = Assert.Throws<ArgumentException>(() => _b.PrepareLinear(w, 5, 8));
        Assert.Contains("5×8", wrongShape.Message);
        w.Dispose();
    }

    [SkippableTheory]
    [InlineData(NormKind.LayerNorm, 3, 37)]
    [InlineData(NormKind.RmsNorm, 5, 64)]
    public void AddNormMatchesTheDefinition(NormKind kind, int rows, int dim)
    {
        var residual = Random(rows * dim, 6, 3f);
        var delta = Random(rows * dim, 7);
        var weight = Random(dim, 8);
        var bias = Random(dim, 9);
        using var r = Upload(residual);
        using var d = Upload(delta);
        using var w = Upload(weight);
        using var b = Upload(bias);
        using var y = _b.Allocate(DType.F32, rows * dim);
        _b.AddNorm(r, d, w, kind == NormKind.LayerNorm ? b : null, y, rows, dim, kind, 1e-5f);
        var got = Download(y, rows * dim);
        var sums = Download(r, rows * dim);
        for (int row = 0; row < rows; row++)
        {
            var x = Enumerable.Range(0, dim).Select(i => (double)residual[row * dim + i] + delta[row * dim + i]).ToArray();
            for (int i = 0; i < dim; i++) Close(x[i], sums[row * dim + i], 1e-6, 1e-6, "residual");
            double mean = kind == NormKind.LayerNorm ? x.Average() : 0;
            double var_ = x.Select(v => (v - mean) * (v - mean)).Average();
            for (int i = 0; i < dim; i++)
            {
                double expected = (x[i] - mean) / Math.Sqrt(var_ + 1e-5) * weight[i] + (kind == NormKind.LayerNorm ? bias[i] : 0);
                Close(expected, got[row * dim + i], 1e-5, 1e-5, $"{kind}[{row},{i}]");
            }
        }
    }

    [SkippableFact]
    public void PagedAttentionMatchesDenseCausalAttentionWithGqa()
    {
        const int heads = 4, kvHeads = 2, hd = 8, blockSize = 4, blocks = 16;
        int[] lengths = [5, 9, 1];
        var geometry = new KvGeometry(1, blocks, blockSize, kvHeads, hd);
        using var kc = _b.Allocate(DType.F32, geometry.LayerElements);
        using var vc = _b.Allocate(DType.F32, geometry.LayerElements);
        // Scattered, out-of-order block tables.
        int[][] tables = [[7, 2], [0, 11, 5], [9]];
        int total = lengths.Sum(), width = (heads + 2 * kvHeads) * hd;
        var qkv = Random(total * width, 10);
        var positions = lengths.SelectMany(l => Enumerable.Range(0, l)).ToArray();
        var owners = lengths.SelectMany((l, s) => Enumerable.Repeat(s, l)).ToArray();
        var slots = positions.Select((p, t) => tables[owners[t]][p / blockSize] * blockSize + p % blockSize).ToArray();
        var flat = tables.SelectMany(t => t.Concat(Enumerable.Repeat(-1, 3 - t.Length))).ToArray();
        var layout = new BatchLayout { Tokens = new int[total], Positions = positions, TokenSequence = owners, SlotMapping = slots, BlockTables = flat, MaxBlocksPerSequence = 3 };
        using var q = Upload(qkv);
        using var o = _b.Allocate(DType.F32, total * heads * hd);
        _b.RopeAndCacheWrite(layout, q, kc, vc, null, heads, kvHeads, hd, blockSize);
        _b.Attention(layout, q, kc, vc, o, heads, kvHeads, hd, blockSize);
        var got = Download(o, total * heads * hd);

        for (int t = 0; t < total; t++)
            for (int h = 0; h < heads; h++)
            {
                int kvh = h / (heads / kvHeads);
                // Same sequence, positions 0..p: tokens t − p … t in this packed batch.
                int p = positions[t];
                var scores = Enumerable.Range(t - p, p + 1).Select(j =>
                    Enumerable.Range(0, hd).Sum(i => (double)qkv[t * width + h * hd + i] * qkv[j * width + heads * hd + kvh * hd + i]) / Math.Sqrt(hd)).ToArray();
                double max = scores.Max(), sum = scores.Sum(s => Math.Exp(s - max));
                for (int i = 0; i < hd; i++)
                {
                    double expected = Enumerable.Range(0, p + 1).Sum(j => Math.Exp(scores[j] - max) / sum * qkv[(t - p + j) * width + (heads + kvHeads) * hd + kvh * hd + i]);
                    Close(expected, got[t * heads * hd + h * hd + i], 1e-5, 1e-5, $"out[{t},{h},{i}]");
                }
            }
    }

    [SkippableFact]
    public void LogProbOfTargetsMatchesFloat64LogSoftmax()
    {
        const int rows = 3, vocab = 50257;
        var logits = Random(rows * vocab, 11, 8f);
        using var l = Upload(logits);
        int[] targets = [0, 12345, vocab - 1];
        var got = new float[rows];
        _b.LogProbOfTargets(l, rows, vocab, targets, got);
        for (int r = 0; r < rows; r++)
        {
            var row = logits.AsSpan(r * vocab, vocab).ToArray();
            double max = row.Max();
            double lse = max + Math.Log(row.Sum(v => Math.Exp(v - max)));
            Close(row[targets[r]] - lse, got[r], 1e-5, 1e-6, $"row {r}");
        }
    }

    [SkippableFact]
    public void VectorExpIsWithinTwoUlpOfDoublePrecisionAndHandlesTheEdges()
    {
        var inputs = Enumerable.Range(0, 200_001).Select(i => -87f + 175f * i / 200_000f).ToArray();
        var got = new float[inputs.Length];
        bool wide = _b.Isa == CpuIsa.Avx512;
        CpuMath.ExpShifted(inputs, 0f, got, wide);
        for (int i = 0; i < inputs.Length; i++)
        {
            double expected = Math.Exp(inputs[i]);
            Assert.True(Math.Abs(got[i] - expected) <= 2.4e-7 * expected, $"exp({inputs[i]}) = {got[i]}, expected {expected}");
        }
        float[] edges = [float.NegativeInfinity, -200f, -87.5f, 0f, 89f, 1000f, float.PositiveInfinity, float.NaN];
        var e = new float[16];
        if (wide) CpuMath.Exp(Vector512.Create([.. edges, .. edges])).CopyTo(e);
        else CpuMath.Exp(Vector256.Create(edges)).CopyTo(e);
        if (wide) Assert.Equal(e[..8], e[8..]);
        Assert.Equal([0f, 0f, 0f, 1f, float.PositiveInfinity, float.PositiveInfinity, float.PositiveInfinity], e[..7]);
        Assert.True(float.IsNaN(e[7]));
    }

    [SkippableFact]
    public void GeluTanhAndSiluGateMatchTheirFormulas()
    {
        var x = Random(20001, 12, 6f);
        using var t = Upload(x);
        _b.GeluTanh(t, x.Length);
        var got = Download(t, x.Length);
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            Close(0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v))), got[i], 1e-6, 1e-5, $"gelu {v}");
        }

        var gu = Random(3 * 2 * 11, 13, 5f);
        using var g = Upload(gu);
        using var y = _b.Allocate(DType.F32, 3 * 11);
        _b.SiluGate(g, y, 3, 11);
        var s = Download(y, 33);
        for (int r = 0; r < 3; r++)
            for (int i = 0; i < 11; i++)
            {
                double a = gu[r * 22 + i], u = gu[r * 22 + 11 + i];
                Close(a / (1 + Math.Exp(-a)) * u, s[r * 11 + i], 1e-6, 1e-5, "silu");
            }
    }

    [SkippableFact]
    public void RotaryEmbeddingRotatesHalvesByPositionTimesFrequency()
    {
        const int heads = 1, kvHeads = 1, hd = 4;
        var qkv = new float[] { 1, 2, 3, 4, /* k */ 5, 6, 7, 8, /* v */ 9, 9, 9, 9 };
        var rope = new RopeTable([0.5, 0.25]);
        var layout = new BatchLayout { Tokens = [0], Positions = [3], TokenSequence = [0], SlotMapping = [0], BlockTables = [0], MaxBlocksPerSequence = 1 };
        var geometry = new KvGeometry(1, 1, 4, kvHeads, hd);
        using var kc = _b.Allocate(DType.F32, geometry.LayerElements);
        using var vc = _b.Allocate(DType.F32, geometry.LayerElements);
        using var t = Upload(qkv);
        _b.RopeAndCacheWrite(layout, t, kc, vc, rope, heads, kvHeads, hd, 4);
        var got = Download(t, 12);
        double[] angle = [3 * 0.5, 3 * 0.25];
        // q: pairs (0,2) and (1,3)
        Close(1 * Math.Cos(angle[0]) - 3 * Math.Sin(angle[0]), got[0], 1e-6, 1e-6, "q0");
        Close(3 * Math.Cos(angle[0]) + 1 * Math.Sin(angle[0]), got[2], 1e-6, 1e-6, "q2");
        Close(2 * Math.Cos(angle[1]) - 4 * Math.Sin(angle[1]), got[1], 1e-6, 1e-6, "q1");
        Close(6 * Math.Cos(angle[1]) - 8 * Math.Sin(angle[1]), got[5], 1e-6, 1e-6, "k1");
        Assert.Equal(got[4..8], Download(kc, 4));
        Assert.Equal(new float[] { 9, 9, 9, 9 }, Download(vc, 4));
    }
}

[Trait("Category", "Unit")]
public sealed class CpuOpsOnAvx2() : CpuOpsTests(CpuIsa.Avx2);

[Trait("Category", "Unit")]
public sealed class CpuOpsOnAvx512() : CpuOpsTests(CpuIsa.Avx512);
