using WeakToStrong.Backends;
using WeakToStrong.Backends.Cuda;
using WeakToStrong.Backends.Cuda.Kernels;
using WeakToStrong.Diagnostics.Ops;

namespace WeakToStrong.Tests.Cuda;

/// <summary>
/// Every kernel against its CPU op on seeded random inputs at several shapes, odd sizes included. The same bodies
/// run on the host emulator (<see cref="EmulatedKernelTests"/>, every CI run) and on a real device
/// (<see cref="GpuKernelTests"/>, skipped visibly without one).
/// </summary>
public abstract class KernelComparisons
{
    /// <summary>The CPU reference beside the backend under test.</summary>
    private protected abstract BackendPair Pair(int seed, int multiprocessors = 4);

    /// <summary>Shapes for <c>Attention</c> (<see cref="OpShapes.Attention"/>), shared with <c>w2s ops</c>.</summary>
    public static TheoryData<string, int, int, int, int> AttentionCases => Theory(OpShapes.Attention, x => (x.Kind, x.Heads, x.KvHeads, x.HeadDim, x.BlockSize));

    protected void EmbedCase(DType dtype, int tokens, int dim, bool positions)
    {
        using var p = Pair(1);
        int vocab = 11, maxPositions = 40;
        var table = p.Tensors(p.Uniform((long)vocab * dim), dtype);
        var pos = positions ? p.Tensors(p.Uniform((long)maxPositions * dim)) : ((Tensor Cpu, Tensor Cuda)?)null;
        var layout = PagedLayouts.Prefill(p.Random, [tokens], vocab, blockSize: 4);
        var x = p.Zeros((long)tokens * dim);
        foreach (var (b, t, ps, xx) in new[] { (p.Cpu as IBackend, table.Cpu, pos?.Cpu, x.Cpu), (p.Cuda, table.Cuda, pos?.Cuda, x.Cuda) })
        {
            b.BeginBatch(layout);
            b.Embed(layout, t, ps, xx, dim);
        }
        p.AssertClose(x, Tolerance.For(dtype), "embed");
    }

    protected void AddNormCase(NormKind kind, int rows, int dim, bool withDelta, bool withBias)
    {
        using var p = Pair(2);
        var residual = p.Tensors(p.Uniform((long)rows * dim, 3f));
        var delta = withDelta ? p.Tensors(p.Uniform((long)rows * dim)) : ((Tensor Cpu, Tensor Cuda)?)null;
        var weight = p.Tensors(p.Uniform(dim));
        var bias = withBias ? p.Tensors(p.Uniform(dim)) : ((Tensor Cpu, Tensor Cuda)?)null;
        var y = p.Zeros((long)rows * dim);
        p.Cpu.AddNorm(residual.Cpu, delta?.Cpu, weight.Cpu, bias?.Cpu, y.Cpu, rows, dim, kind, 1e-5f);
        p.Cuda.AddNorm(residual.Cuda, delta?.Cuda, weight.Cuda, bias?.Cuda, y.Cuda, rows, dim, kind, 1e-5f);
        p.AssertClose(residual, Tolerance.F32, "residual after the add");
        p.AssertClose(y, Tolerance.F32, $"{kind} output");
    }

    protected void LinearCase(DType dtype, int rows, int inDim, int outDim, bool withBias)
    {
        using var p = Pair(3);
        var x = p.Tensors(p.Uniform((long)rows * inDim));
        var w = p.Tensors(p.Uniform((long)outDim * inDim), dtype);
        using var cpuWeight = p.Cpu.PrepareLinear(w.Cpu, outDim, inDim);
        var cudaWeight = p.Cuda.PrepareLinear(w.Cuda, outDim, inDim);
        var bias = withBias ? p.Tensors(p.Uniform(outDim)) : ((Tensor Cpu, Tensor Cuda)?)null;
        var y = p.Zeros((long)rows * outDim);
        p.Cpu.Linear(x.Cpu, cpuWeight, bias?.Cpu, y.Cpu, rows, inDim, outDim);
        p.Cuda.Linear(x.Cuda, cudaWeight, bias?.Cuda, y.Cuda, rows, inDim, outDim);
        var tolerance = Tolerance.For(dtype);
        p.AssertClose(y, tolerance with { Absolute = tolerance.Absolute * Math.Sqrt(inDim) }, $"linear {dtype} {rows}×{inDim}→{outDim}");
    }

    protected void RopeAndCacheWriteCase(int heads, int kvHeads, int headDim, int blockSize, bool rotary)
    {
        using var p = Pair(4);
        var layout = PagedLayouts.Prefill(p.Random, [5, 1, 19], 100, blockSize);
        int width = (heads + 2 * kvHeads) * headDim;
        var qkv = p.Tensors(p.Uniform((long)layout.TokenCount * width));
        long pool = (long)PagedLayouts.Blocks(layout) * blockSize * kvHeads * headDim;
        var keys = p.Zeros(pool);
        var values = p.Zeros(pool);
        var rope = rotary ? new RopeTable(Enumerable.Range(0, headDim / 2).Select(i => Math.Pow(10000, -2.0 * i / headDim)).ToArray()) : null;
        p.Cpu.BeginBatch(layout);
        p.Cuda.BeginBatch(layout);
        p.Cpu.RopeAndCacheWrite(layout, qkv.Cpu, keys.Cpu, values.Cpu, rope, heads, kvHeads, headDim, blockSize);
        p.Cuda.RopeAndCacheWrite(layout, qkv.Cuda, keys.Cuda, values.Cuda, rope, heads, kvHeads, headDim, blockSize);
        p.AssertClose(qkv, Tolerance.F32, "rotated q|k|v");
        p.AssertClose(keys, Tolerance.F32, "key cache");
        p.AssertClose(values, Tolerance.F32, "value cache");
    }

    protected void AttentionCase(string shape, int heads, int kvHeads, int headDim, int blockSize)
    {
        using var p = Pair(5, 8);
        var layout = shape switch
        {
            "prefill" => PagedLayouts.Prefill(p.Random, [1, 7, 40], 50, blockSize),
            "decode" => PagedLayouts.Decode(p.Random, [300, 45, 1], 50, blockSize),
            _ => PagedLayouts.Mixed(p.Random, blockSize),
        };
        int width = (heads + 2 * kvHeads) * headDim;
        var qkv = p.Tensors(p.Uniform((long)layout.TokenCount * width, 2f));
        long pool = (long)PagedLayouts.Blocks(layout) * blockSize * kvHeads * headDim;
        var keys = p.Tensors(p.Uniform(pool, 2f));
        var values = p.Tensors(p.Uniform(pool));
        var output = p.Zeros((long)layout.TokenCount * heads * headDim);
        p.Cpu.BeginBatch(layout);
        p.Cuda.BeginBatch(layout);
        p.Cpu.Attention(layout, qkv.Cpu, keys.Cpu, values.Cpu, output.Cpu, heads, kvHeads, headDim, blockSize);
        p.Cuda.Attention(layout, qkv.Cuda, keys.Cuda, values.Cuda, output.Cuda, heads, kvHeads, headDim, blockSize);
        p.AssertClose(output, Tolerance.Attention, $"attention ({shape})");
    }

    protected void GeluTanhCase(long count)
    {
        using var p = Pair(7);
        var x = p.Tensors(p.Uniform(count, 6f));
        p.Cpu.GeluTanh(x.Cpu, count);
        p.Cuda.GeluTanh(x.Cuda, count);
        p.AssertClose(x, Tolerance.F32, "gelu_tanh");
    }

    protected void SiluGateCase(int rows, int ff)
    {
        using var p = Pair(8);
        var gateUp = p.Tensors(p.Uniform(2L * rows * ff, 8f));
        var y = p.Zeros((long)rows * ff);
        p.Cpu.SiluGate(gateUp.Cpu, y.Cpu, rows, ff);
        p.Cuda.SiluGate(gateUp.Cuda, y.Cuda, rows, ff);
        p.AssertClose(y, Tolerance.F32, "silu_gate");
    }

    protected void GatherRowsCase()
    {
        using var p = Pair(9);
        int dim = 37;
        var source = p.Tensors(p.Uniform(20L * dim));
        int[] rows = [19, 0, 3, 3, 7];
        var destination = p.Zeros(rows.Length * dim);
        p.Cpu.GatherRows(source.Cpu, rows, destination.Cpu, dim);
        p.Cuda.GatherRows(source.Cuda, rows, destination.Cuda, dim);
        p.AssertClose(destination, new Tolerance(0, 0), "gathered rows");
    }

    protected void LogProbOfTargetsCase(int rows, int vocab)
    {
        using var p = Pair(10);
        var logits = p.Tensors(p.Uniform((long)rows * vocab, 12f));
        int[] targets = Enumerable.Range(0, rows).Select(_ => p.Random.Next(vocab)).ToArray();
        var expected = new float[rows];
        var actual = new float[rows];
        p.Cpu.LogProbOfTargets(logits.Cpu, rows, vocab, targets, expected);
        p.Cuda.LogProbOfTargets(logits.Cuda, rows, vocab, targets, actual);
        Tolerance.F32.AssertClose(expected, actual, "log p(target)");
    }

    protected void LogProbRejectsATargetOutsideTheVocabularyCase()
    {
        using var p = Pair(11);
        var logits = p.Tensors(p.Uniform(10));
        Assert.Throws<ArgumentOutOfRangeException>(() => p.Cuda.LogProbOfTargets(logits.Cuda, 1, 10, [10], new float[1]));
    }

    protected void SampleMatchesTheCpuSamplerDrawForDrawCase(int vocab)
    {
        using var p = Pair(12);
        var settings = new (float T, int K, float P)[]
        {
            (0f, 0, 1f), (1f, 0, 1f), (0.7f, 0, 1f), (1f, 3, 1f), (1.3f, 40, 1f), (1f, 0, 0.9f), (0.8f, 0, 0.5f),
            (1f, 5, 0.8f), (2f, vocab, 0.95f), (1f, 1, 1f), (0.5f, 0, 0.05f),
        };
        int rows = settings.Length * 6;
        // Quantised logits: plenty of exact ties, so the (logit desc, index asc) order is exercised.
        var values = p.Uniform((long)rows * vocab, 4f).Select(v => MathF.Round(v * 4) / 4).ToArray();
        var logits = p.Tensors(values);
        var sampling = Enumerable.Range(0, rows).Select(r =>
        {
            var (t, k, pp) = settings[r % settings.Length];
            return new SamplingRow(t, k, pp, (ulong)(r * 7919 + 3), (ulong)r << 33 | 5, r * 3 + 1);
        }).ToArray();
        var expected = new int[rows];
        var actual = new int[rows];
        p.Cpu.Sample(logits.Cpu, vocab, sampling, expected);
        p.Cuda.Sample(logits.Cuda, vocab, sampling, actual);
        for (int r = 0; r < rows; r++)
            Assert.True(expected[r] == actual[r], $"row {r} ({sampling[r]}): cpu {expected[r]}, cuda {actual[r]}");
    }

    protected void GreedyRowsTakeTheFirstIndexOfTheMaximumCase()
    {
        using var p = Pair(13);
        float[] values = [1f, 3f, 3f, -1f, float.NegativeInfinity, 2f, 2f, float.NegativeInfinity, float.NegativeInfinity];
        var logits = p.Tensors(values);
        var result = new int[3];
        p.Cuda.Sample(logits.Cuda, 3, [new SamplingRow(0, 0, 1, 0, 0, 0), new SamplingRow(0, 0, 1, 0, 0, 0), new SamplingRow(0, 0, 1, 0, 0, 0)], result);
        Assert.Equal([1, 2, 0], result);
    }

    protected void CopyBlockCase()
    {
        using var p = Pair(14);
        var geometry = new KvGeometry(1, 5, 4, 2, 3);
        var keys = p.Tensors(p.Uniform(geometry.LayerElements));
        var values = p.Tensors(p.Uniform(geometry.LayerElements));
        p.Cpu.CopyBlock(keys.Cpu, values.Cpu, geometry, 3, 1);
        p.Cuda.CopyBlock(keys.Cuda, values.Cuda, geometry, 3, 1);
        p.AssertClose(keys, new Tolerance(0, 0), "key pool");
        p.AssertClose(values, new Tolerance(0, 0), "value pool");
    }

    // The shapes below are the library's (OpShapes), which `w2s ops` runs too: one definition for CI and the device.

    public static TheoryData<DType, int, int, bool> EmbedShapes => Theory(OpShapes.Embed, x => (x.Dtype, x.Tokens, x.Dim, x.Positions));

    public static TheoryData<NormKind, int, int, bool, bool> AddNormShapes => Theory(OpShapes.AddNorm, x => (x.Kind, x.Rows, x.Dim, x.Delta, x.Bias));

    public static TheoryData<DType, int, int, int, bool> LinearShapes => Theory(OpShapes.Linear, x => (x.Dtype, x.Rows, x.InDim, x.OutDim, x.Bias));

    public static TheoryData<int, int, int, int, bool> RopeAndCacheWriteShapes => Theory(OpShapes.Rope, x => (x.Heads, x.KvHeads, x.HeadDim, x.BlockSize, x.Rotary));

    public static TheoryData<long> GeluTanhShapes => new(OpShapes.GeluTanh);

    public static TheoryData<int, int> SiluGateShapes => Theory(OpShapes.SiluGate, x => (x.Rows, x.Ff));

    public static TheoryData<int, int> LogProbOfTargetsShapes => Theory(OpShapes.LogProbOfTargets, x => (x.Rows, x.Vocab));

    public static TheoryData<int> SampleMatchesTheCpuSamplerDrawForDrawShapes => new(OpShapes.Sample);

    private static TheoryData<T1, T2> Theory<TShape, T1, T2>(IEnumerable<TShape> shapes, Func<TShape, (T1, T2)> row)
    {
        var data = new TheoryData<T1, T2>();
        foreach (var (a, b) in shapes.Select(row)) data.Add(a, b);
        return data;
    }

    private static TheoryData<T1, T2, T3, T4> Theory<TShape, T1, T2, T3, T4>(IEnumerable<TShape> shapes, Func<TShape, (T1, T2, T3, T4)> row)
    {
        var data = new TheoryData<T1, T2, T3, T4>();
        foreach (var (a, b, c, d) in shapes.Select(row)) data.Add(a, b, c, d);
        return data;
    }

    private static TheoryData<T1, T2, T3, T4, T5> Theory<TShape, T1, T2, T3, T4, T5>(IEnumerable<TShape> shapes, Func<TShape, (T1, T2, T3, T4, T5)> row)
    {
        var data = new TheoryData<T1, T2, T3, T4, T5>();
        foreach (var (a, b, c, d, e) in shapes.Select(row)) data.Add(a, b, c, d, e);
        return data;
    }
}
