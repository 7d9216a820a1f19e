using System.Globalization;
using WeakToStrong.Backends;

namespace WeakToStrong.Diagnostics.Ops;

/// <summary>Every backend op at every shape of <see cref="OpShapes"/>, as <see cref="OpCase"/>s.</summary>
public static class OpCases
{
    /// <summary>The op names, in the order the forward uses them.</summary>
    public static IReadOnlyList<string> Names { get; } =
        ["embed", "add_norm", "linear", "rope_cache_write", "attention", "gelu_tanh", "silu_gate", "gather_rows", "log_prob_of_targets", "sample", "copy_block"];

    /// <summary>The small shapes (the emulated-kernel tests run these), then, with <paramref name="modelSized"/>, one model-sized shape per op.</summary>
    public static IReadOnlyList<OpCase> All(bool modelSized = true)
    {
        var cases = new List<OpCase>();
        cases.AddRange(OpShapes.Embed.Select(s => new EmbedCase(s, false)));
        cases.AddRange(OpShapes.AddNorm.Select(s => new AddNormCase(s, false)));
        cases.AddRange(OpShapes.Linear.Select(s => new LinearCase(s, false)));
        cases.AddRange(OpShapes.Rope.Select(s => new RopeCase(s, false)));
        cases.AddRange(OpShapes.Attention.Select(s => new AttentionCase(s, false)));
        cases.AddRange(OpShapes.GeluTanh.Select(n => new GeluTanhCase(n, false)));
        cases.AddRange(OpShapes.SiluGate.Select(s => new SiluGateCase(s, false)));
        cases.Add(new GatherRowsCase(20, 37, [19, 0, 3, 3, 7], false));
        cases.AddRange(OpShapes.LogProbOfTargets.Select(s => new LogProbCase(s, false)));
        foreach (int vocab in OpShapes.Sample)
        {
            cases.Add(new SampleCase(vocab, greedy: true, rows: 12, false));
            cases.Add(new SampleCase(vocab, greedy: false, rows: 66, false));
        }
        cases.Add(new CopyBlockCase(new KvGeometry(1, 5, 4, 2, 3), false));
        if (modelSized)
        {
            cases.Add(new EmbedCase(OpShapes.ModelSized.Embed, true));
            cases.Add(new AddNormCase(OpShapes.ModelSized.AddNorm, true));
            cases.AddRange(OpShapes.ModelSized.Linear.Select(s => new LinearCase(s, true)));
            cases.Add(new RopeCase(OpShapes.ModelSized.Rope, true));
            cases.AddRange(OpShapes.ModelSized.Attention.Select(s => new AttentionCase(s, true)));
            cases.Add(new GeluTanhCase(OpShapes.ModelSized.GeluTanh, true));
            cases.Add(new SiluGateCase(OpShapes.ModelSized.SiluGate, true));
            cases.Add(new GatherRowsCase(64, 4096, Enumerable.Range(0, 16).Select(i => (i * 37 + 5) % 64).ToArray(), true));
            cases.Add(new LogProbCase(OpShapes.ModelSized.LogProbOfTargets, true));
            cases.Add(new SampleCase(OpShapes.ModelSized.Sample, greedy: true, rows: 16, true));
            cases.Add(new SampleCase(OpShapes.ModelSized.Sample, greedy: false, rows: 16, true));
            cases.Add(new CopyBlockCase(new KvGeometry(1, 64, 16, 8, 128), true));
        }
        return cases;
    }

    internal static string Lower(DType dtype) => dtype.Name().ToLowerInvariant();

    internal static string Join(IEnumerable<int> values) => string.Join(",", values.Select(v => v.ToString(CultureInfo.InvariantCulture)));
}

/// <summary>x[t] = table[tokens[t]] (+ positions[t]'s row).</summary>
internal sealed class EmbedCase(EmbedShape s, bool modelSized)
    : OpCase("embed", OpCases.Lower(s.Dtype), $"tokens={s.Tokens} dim={s.Dim} vocab={s.Vocab}{(s.Positions ? " +positions" : "")}", modelSized)
{
    private int MaxPositions => Math.Max(40, s.Tokens);

    private (float[] Table, float[]? Pos, BatchLayout Layout) Draw(int seed)
    {
        var r = new Random(seed);
        var table = HostData.Uniform(r, (long)s.Vocab * s.Dim);
        var pos = s.Positions ? HostData.Uniform(r, (long)MaxPositions * s.Dim) : null;
        return (table, pos, PagedLayouts.Prefill(r, [s.Tokens], s.Vocab, blockSize: 4));
    }

    public override (double Bytes, double Flops) Cost => ((double)s.Tokens * s.Dim * (s.Dtype.Size() + (s.Positions ? 4 : 0) + 4), 0);

    public override OpRun Prepare(IBackend backend, int seed)
    {
        var (table, pos, layout) = Draw(seed);
        var b = new RunBuilder(backend);
        var t = b.Upload(table, s.Dtype);
        var p = b.UploadOrNull(pos);
        var x = b.Zeros((long)s.Tokens * s.Dim);
        return b.Build(() =>
        {
            backend.BeginBatch(layout);
            backend.Embed(layout, t, p, x, s.Dim);
        }, () => [b.Read(x)]);
    }

    public override double[][] Reference(int seed)
    {
        var (table, pos, layout) = Draw(seed);
        var stored = HostData.Stored(table, s.Dtype);
        var x = new double[s.Tokens * s.Dim];
        for (int t = 0; t < s.Tokens; t++)
            for (int i = 0; i < s.Dim; i++)
                x[t * s.Dim + i] = stored[(long)layout.Tokens[t] * s.Dim + i] + (pos is null ? 0 : pos[(long)layout.Positions[t] * s.Dim + i]);
        return [x];
    }
}

/// <summary>residual += delta; y = norm(residual) · weight (+ bias).</summary>
internal sealed class AddNormCase(AddNormShape s, bool modelSized)
    : OpCase("add_norm", "f32", $"{s.Kind} rows={s.Rows} dim={s.Dim}{(s.Delta ? " +delta" : "")}{(s.Bias ? " +bias" : "")}", modelSized)
{
    private const float Eps = 1e-5f;

    private (float[] Residual, float[]? Delta, float[] Weight, float[]? Bias) Draw(int seed)
    {
        var r = new Random(seed);
        long n = (long)s.Rows * s.Dim;
        var residual = HostData.Uniform(r, n, 3f);
        var delta = s.Delta ? HostData.Uniform(r, n) : null;
        var weight = HostData.Uniform(r, s.Dim);
        return (residual, delta, weight, s.Bias ? HostData.Uniform(r, s.Dim) : null);
    }

    public override (double Bytes, double Flops) Cost =>
        ((double)s.Rows * s.Dim * 4 * (s.Delta ? 4 : 2) + s.Dim * 4.0 * (s.Bias ? 2 : 1), 0);

    public override OpRun Prepare(IBackend backend, int seed)
    {
        var (residual, delta, weight, bias) = Draw(seed);
        var b = new RunBuilder(backend);
        var r = b.Upload(residual);
        var d = b.UploadOrNull(delta);
        var w = b.Upload(weight);
        var bb = b.UploadOrNull(bias);
        var y = b.Zeros((long)s.Rows * s.Dim);
        return b.Build(() => backend.AddNorm(r, d, w, bb, y, s.Rows, s.Dim, s.Kind, Eps), () => [b.Read(r), b.Read(y)]);
    }

    public override double[][] Reference(int seed)
    {
        var (residual, delta, weight, bias) = Draw(seed);
        var sums = new double[residual.Length];
        var y = new double[residual.Length];
        for (int row = 0; row < s.Rows; row++)
        {
            int o = row * s.Dim;
            for (int i = 0; i < s.Dim; i++) sums[o + i] = (double)residual[o + i] + (delta is null ? 0 : delta[o + i]);
            double mean = 0, variance = 0;
            if (s.Kind == NormKind.LayerNorm)
            {
                for (int i = 0; i < s.Dim; i++) mean += sums[o + i];
                mean /= s.Dim;
            }
            for (int i = 0; i < s.Dim; i++) variance += (sums[o + i] - mean) * (sums[o + i] - mean);
            double inv = 1 / Math.Sqrt(variance / s.Dim + Eps);
            for (int i = 0; i < s.Dim; i++) y[o + i] = (sums[o + i] - mean) * inv * weight[i] + (bias is null ? 0 : bias[i]);
        }
        return [sums, y];
    }
}

/// <summary>y = x · Wᵀ (+ bias), W in the weight type, x and y F32.</summary>
internal sealed class LinearCase(LinearShape s, bool modelSized)
    : OpCase("linear", OpCases.Lower(s.Dtype), $"rows={s.Rows} in={s.InDim} out={s.OutDim}{(s.Bias ? " +bias" : "")}", modelSized)
{
    private (float[] X, float[] W, float[]? Bias) Draw(int seed)
    {
        var r = new Random(seed);
        var x = HostData.Uniform(r, (long)s.Rows * s.InDim);
        var w = HostData.Uniform(r, (long)s.OutDim * s.InDim);
        return (x, w, s.Bias ? HostData.Uniform(r, s.OutDim) : null);
    }

    public override (double Bytes, double Flops) Cost =>
        ((double)s.OutDim * s.InDim * s.Dtype.Size() + 4.0 * s.Rows * (s.InDim + s.OutDim) + (s.Bias ? 4.0 * s.OutDim : 0), 2.0 * s.Rows * s.InDim * s.OutDim);

    public override OpRun Prepare(IBackend backend, int seed)
    {
        var (x, w, bias) = Draw(seed);
        var b = new RunBuilder(backend);
        var xt = b.Upload(x);
        var wt = b.PrepareLinear(b.Upload(w, s.Dtype), s.OutDim, s.InDim);
        var bt = b.UploadOrNull(bias);
        var y = b.Zeros((long)s.Rows * s.OutDim);
        return b.Build(() => backend.Linear(xt, wt, bt, y, s.Rows, s.InDim, s.OutDim), () => [b.Read(y)]);
    }

    public override double[][] Reference(int seed)
    {
        var (x, w, bias) = Draw(seed);
        var stored = HostData.Stored(w, s.Dtype);
        var y = new double[s.Rows * s.OutDim];
        Parallel.For(0, s.OutDim, o =>
        {
            for (int t = 0; t < s.Rows; t++)
            {
                double sum = bias is null ? 0 : bias[o];
                long wo = (long)o * s.InDim, xo = (long)t * s.InDim;
                for (int i = 0; i < s.InDim; i++) sum += x[xo + i] * stored[wo + i];
                y[t * s.OutDim + o] = sum;
            }
        });
        return [y];
    }
}

/// <summary>Rotary embedding of q and k (rotate-half), then k and v written to the paged cache at each token's slot.</summary>
internal sealed class RopeCase(RopeShape s, bool modelSized)
    : OpCase("rope_cache_write", "f32", $"heads={s.Heads}/{s.KvHeads} head_dim={s.HeadDim} block={s.BlockSize} tokens={OpCases.Join(s.Lengths ?? DefaultLengths)}{(s.Rotary ? "" : " no-rope")}", modelSized)
{
    private static readonly int[] DefaultLengths = [5, 1, 19];

    private int Width => (s.Heads + 2 * s.KvHeads) * s.HeadDim;

    private int Tokens => (s.Lengths ?? DefaultLengths).Sum();

    private (float[] Qkv, BatchLayout Layout, long Pool, RopeTable? Rope) Draw(int seed)
    {
        var r = new Random(seed);
        var layout = PagedLayouts.Prefill(r, s.Lengths ?? DefaultLengths, 100, s.BlockSize);
        var qkv = HostData.Uniform(r, (long)layout.TokenCount * Width);
        long pool = (long)PagedLayouts.Blocks(layout) * s.BlockSize * s.KvHeads * s.HeadDim;
        var rope = s.Rotary ? new RopeTable(Enumerable.Range(0, s.HeadDim / 2).Select(i => Math.Pow(10000, -2.0 * i / s.HeadDim)).ToArray()) : null;
        return (qkv, layout, pool, rope);
    }

    public override (double Bytes, double Flops) Cost =>
        ((double)Tokens * 4 * (2 * (s.Heads + s.KvHeads) * s.HeadDim + 3 * s.KvHeads * s.HeadDim), (double)Tokens * (s.Heads + s.KvHeads) * s.HeadDim * 3);

    public override OpRun Prepare(IBackend backend, int seed)
    {
        var (qkv, layout, pool, rope) = Draw(seed);
        var b = new RunBuilder(backend);
        var q = b.Upload(qkv);
        var keys = b.Zeros(pool);
        var values = b.Zeros(pool);
        return b.Build(() =>
        {
            backend.BeginBatch(layout);
            backend.RopeAndCacheWrite(layout, q, keys, values, rope, s.Heads, s.KvHeads, s.HeadDim, s.BlockSize);
        }, () => [b.Read(q), b.Read(keys), b.Read(values)]);
    }

    public override double[][] Reference(int seed)
    {
        var (qkv, layout, pool, rope) = Draw(seed);
        var x = qkv.Select(v => (double)v).ToArray();
        var keys = new double[pool];
        var values = new double[pool];
        int hd = s.HeadDim, half = hd / 2, kvWidth = s.KvHeads * hd;
        for (int t = 0; t < layout.TokenCount; t++)
        {
            long row = (long)t * Width;
            if (rope is not null)
                for (int h = 0; h < s.Heads + s.KvHeads; h++)
                    for (int i = 0; i < half; i++)
                    {
                        double angle = layout.Positions[t] * rope.InverseFrequencies[i];
                        long a = row + h * hd + i, c = a + half;
                        (x[a], x[c]) = (x[a] * Math.Cos(angle) - x[c] * Math.Sin(angle), x[c] * Math.Cos(angle) + x[a] * Math.Sin(angle));
                    }
            long slot = (long)layout.SlotMapping[t] * kvWidth;
            Array.Copy(x, row + s.Heads * hd, keys, slot, kvWidth);
            Array.Copy(x, row + s.Heads * hd + kvWidth, values, slot, kvWidth);
        }
        return [x, keys, values];
    }
}

/// <summary>Causal attention over the paged cache (grouped-query: query head h reads KV head h / (heads / kvHeads)).</summary>
internal sealed class AttentionCase(AttentionShape s, bool modelSized)
    : OpCase("attention", "f32", $"{s.Kind} heads={s.Heads}/{s.KvHeads} head_dim={s.HeadDim} block={s.BlockSize}{(s.Lengths is null ? "" : $" {(s.Kind == "decode" ? "contexts" : "tokens")}={Summary(s.Lengths)}")}", modelSized)
{
    private static string Summary(int[] lengths) => lengths.Distinct().Count() == 1 && lengths.Length > 1 ? $"{lengths.Length}×{lengths[0]}" : OpCases.Join(lengths);

    private int Width => (s.Heads + 2 * s.KvHeads) * s.HeadDim;

    private BatchLayout Layout(Random r) => s.Kind switch
    {
        "prefill" => PagedLayouts.Prefill(r, s.Lengths ?? [1, 7, 40], 50, s.BlockSize),
        "decode" => PagedLayouts.Decode(r, s.Lengths ?? [300, 45, 1], 50, s.BlockSize),
        _ => PagedLayouts.Mixed(r, s.BlockSize),
    };

    private (float[] Qkv, float[] Keys, float[] Values, BatchLayout Layout) Draw(int seed)
    {
        var r = new Random(seed);
        var layout = Layout(r);
        var qkv = HostData.Uniform(r, (long)layout.TokenCount * Width, 2f);
        long pool = (long)PagedLayouts.Blocks(layout) * s.BlockSize * s.KvHeads * s.HeadDim;
        return (qkv, HostData.Uniform(r, pool, 2f), HostData.Uniform(r, pool), layout);
    }

    public override (double Bytes, double Flops) Cost
    {
        get
        {
            var layout = Layout(new Random(0));
            // Each sequence's cached keys and values read once; q read and the output written once.
            var lastPosition = new Dictionary<int, int>();
            for (int t = 0; t < layout.TokenCount; t++) lastPosition[layout.TokenSequence[t]] = Math.Max(lastPosition.GetValueOrDefault(layout.TokenSequence[t]), layout.Positions[t]);
            double kv = lastPosition.Values.Sum(p => (p + 1.0) * s.KvHeads * s.HeadDim * 8);
            double flops = layout.Positions.Sum(p => (p + 1.0) * s.Heads * s.HeadDim * 4);
            return (kv + layout.TokenCount * 8.0 * s.Heads * s.HeadDim, flops);
        }
    }

    public override OpRun Prepare(IBackend backend, int seed)
    {
        var (qkv, keys, values, layout) = Draw(seed);
        var b = new RunBuilder(backend);
        var q = b.Upload(qkv);
        var k = b.Upload(keys);
        var v = b.Upload(values);
        var output = b.Zeros((long)layout.TokenCount * s.Heads * s.HeadDim);
        return b.Build(() =>
        {
            backend.BeginBatch(layout);
            backend.Attention(layout, q, k, v, output, s.Heads, s.KvHeads, s.HeadDim, s.BlockSize);
        }, () => [b.Read(output)]);
    }

    public override double[][] Reference(int seed)
    {
        var (qkv, keys, values, layout) = Draw(seed);
        int hd = s.HeadDim, group = s.Heads / s.KvHeads;
        var output = new double[(long)layout.TokenCount * s.Heads * hd];
        double scale = 1 / Math.Sqrt(hd);
        Parallel.For(0, layout.TokenCount, t =>
        {
            int p = layout.Positions[t], sequence = layout.TokenSequence[t];
            var scores = new double[p + 1];
            for (int h = 0; h < s.Heads; h++)
            {
                int kvh = h / group;
                long q = (long)t * Width + h * hd;
                double max = double.NegativeInfinity;
                for (int j = 0; j <= p; j++)
                {
                    long slot = ((long)layout.BlockTables[sequence * layout.MaxBlocksPerSequence + j / s.BlockSize] * s.BlockSize + j % s.BlockSize) * s.KvHeads * hd + kvh * hd;
                    double dot = 0;
                    for (int i = 0; i < hd; i++) dot += (double)qkv[q + i] * keys[slot + i];
                    scores[j] = dot * scale;
                    max = Math.Max(max, scores[j]);
                }
                double sum = 0;
                for (int j = 0; j <= p; j++) sum += scores[j] = Math.Exp(scores[j] - max);
                long o = ((long)t * s.Heads + h) * hd;
                for (int j = 0; j <= p; j++)
                {
                    long slot = ((long)layout.BlockTables[sequence * layout.MaxBlocksPerSequence + j / s.BlockSize] * s.BlockSize + j % s.BlockSize) * s.KvHeads * hd + kvh * hd;
                    double weight = scores[j] / sum;
                    for (int i = 0; i < hd; i++) output[o + i] += weight * values[slot + i];
                }
            }
        });
        return [output];
    }
}

/// <summary>x = 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) in place.</summary>
internal sealed class GeluTanhCase(long count, bool modelSized) : OpCase("gelu_tanh", "f32", $"n={count}", modelSized)
{
    /// <summary>
    /// Σ(a − r)² / Σx², normalised by the inputs: in F32 the formula's 1 + tanh(u) cancels for x ≪ 0, where gelu(x)
    /// → 0, so an F32 evaluation is accurate to ε·|x|, not to ε·|gelu(x)| (the kernel's tanhf, emulated, was 1.3e-5
    /// off relative to the single output of the n=1 shape, 1.6e-10 by Σr²). Over many inputs the two normalisations
    /// agree within a factor of about 2.
    /// </summary>
    public override double Error(int seed, double[] expected, float[] actual)
    {
        double error = OpThresholds.NormalisedSquaredError(expected, actual);
        double outputs = expected.Sum(r => r * r), inputs = HostData.Uniform(new Random(seed), count, 6f).Sum(x => (double)x * x);
        return double.IsFinite(error) && inputs > 0 && outputs > 0 ? error * outputs / inputs : error;
    }

    public override (double Bytes, double Flops) Cost => (8.0 * count, 0);

    public override int MaxCallsPerSample => 64;

    public override OpRun Prepare(IBackend backend, int seed)
    {
        var b = new RunBuilder(backend);
        var input = HostData.Uniform(new Random(seed), count, 6f);
        var x = b.Upload(input);
        byte[] bytes = HostData.Encode(input, DType.F32);
        return b.Build(() => backend.GeluTanh(x, count), () => [b.Read(x)], reset: () => backend.Upload(x, bytes));
    }

    public override double[][] Reference(int seed) =>
        [HostData.Uniform(new Random(seed), count, 6f).Select(v => 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * (double)v * v * v)))).ToArray()];
}

/// <summary>y[r, i] = silu(gate[r, i]) · up[r, i], gate and up side by side in one row.</summary>
internal sealed class SiluGateCase(SiluGateShape s, bool modelSized) : OpCase("silu_gate", "f32", $"rows={s.Rows} ff={s.Ff}", modelSized)
{
    public override (double Bytes, double Flops) Cost => (12.0 * s.Rows * s.Ff, 0);

    public override OpRun Prepare(IBackend backend, int seed)
    {
        var b = new RunBuilder(backend);
        var gateUp = b.Upload(HostData.Uniform(new Random(seed), 2L * s.Rows * s.Ff, 8f));
        var y = b.Zeros((long)s.Rows * s.Ff);
        return b.Build(() => backend.SiluGate(gateUp, y, s.Rows, s.Ff), () => [b.Read(y)]);
    }

    public override double[][] Reference(int seed)
    {
        var gu = HostData.Uniform(new Random(seed), 2L * s.Rows * s.Ff, 8f);
        var y = new double[s.Rows * s.Ff];
        for (int r = 0; r < s.Rows; r++)
            for (int i = 0; i < s.Ff; i++)
            {
                double a = gu[2L * r * s.Ff + i], u = gu[2L * r * s.Ff + s.Ff + i];
                y[r * s.Ff + i] = a / (1 + Math.Exp(-a)) * u;
            }
        return [y];
    }
}

/// <summary>destination[i] = source[rows[i]] (the last-token rows before the LM head).</summary>
internal sealed class GatherRowsCase(int sourceRows, int dim, int[] rows, bool modelSized)
    : OpCase("gather_rows", "f32", $"rows={rows.Length} of {sourceRows} dim={dim}", modelSized)
{
    public override (double Bytes, double Flops) Cost => (8.0 * rows.Length * dim, 0);

    public override OpRun Prepare(IBackend backend, int seed)
    {
        var b = new RunBuilder(backend);
        var source = b.Upload(HostData.Uniform(new Random(seed), (long)sourceRows * dim));
        var destination = b.Zeros((long)rows.Length * dim);
        return b.Build(() => backend.GatherRows(source, rows, destination, dim), () => [b.Read(destination)]);
    }

    public override double[][] Reference(int seed)
    {
        var source = HostData.Uniform(new Random(seed), (long)sourceRows * dim);
        return [rows.SelectMany(r => source.AsSpan(r * dim, dim).ToArray().Select(v => (double)v)).ToArray()];
    }
}

/// <summary>result[r] = logits[r, target[r]] − log Σ_v exp(logits[r, v]).</summary>
internal sealed class LogProbCase(LogitsShape s, bool modelSized) : OpCase("log_prob_of_targets", "f32", $"rows={s.Rows} vocab={s.Vocab}", modelSized)
{
    private (float[] Logits, int[] Targets) Draw(int seed)
    {
        var r = new Random(seed);
        var logits = HostData.Uniform(r, (long)s.Rows * s.Vocab, 12f);
        return (logits, Enumerable.Range(0, s.Rows).Select(_ => r.Next(s.Vocab)).ToArray());
    }

    public override (double Bytes, double Flops) Cost => (4.0 * s.Rows * s.Vocab, 0);

    public override OpRun Prepare(IBackend backend, int seed)
    {
        var (logits, targets) = Draw(seed);
        var b = new RunBuilder(backend);
        var l = b.Upload(logits);
        var result = new float[s.Rows];
        return b.Build(() => backend.LogProbOfTargets(l, s.Rows, s.Vocab, targets, result), () => [(float[])result.Clone()]);
    }

    public override double[][] Reference(int seed)
    {
        var (logits, targets) = Draw(seed);
        var result = new double[s.Rows];
        for (int r = 0; r < s.Rows; r++)
        {
            var row = logits.AsSpan(r * s.Vocab, s.Vocab);
            double max = double.NegativeInfinity, sum = 0;
            foreach (float v in row) max = Math.Max(max, v);
            foreach (float v in row) sum += Math.Exp(v - max);
            result[r] = row[targets[r]] - max - Math.Log(sum);
        }
        return [result];
    }
}

/// <summary>
/// One token per row of quantised logits (plenty of exact ties). Greedy rows (temperature 0, or top-k 1) have a
/// float64 reference: the first index of the maximum. The mixed rows (temperature, top-k, top-p) are compared
/// draw for draw with another backend's sampler. The error is the fraction of rows that differ; none may.
/// </summary>
internal sealed class SampleCase(int vocab, bool greedy, int rows, bool modelSized)
    : OpCase("sample", "f32", $"{(greedy ? "greedy" : "mixed settings")} rows={rows} vocab={vocab}", modelSized)
{
    private static readonly (float T, int K, float P)[] Settings =
        [(0f, 0, 1f), (1f, 0, 1f), (0.7f, 0, 1f), (1f, 3, 1f), (1.3f, 40, 1f), (1f, 0, 0.9f), (0.8f, 0, 0.5f), (1f, 5, 0.8f), (2f, -1, 0.95f), (1f, 1, 1f), (0.5f, 0, 0.05f)];

    public override bool HasFloat64Reference => greedy;

    private (float[] Logits, SamplingRow[] Rows) Draw(int seed)
    {
        var r = new Random(seed);
        var logits = HostData.Uniform(r, (long)rows * vocab, 4f).Select(v => MathF.Round(v * 4) / 4).ToArray();
        var sampling = Enumerable.Range(0, rows).Select(i =>
        {
            var (t, k, p) = greedy ? (i % 2 == 0 ? (0f, 0, 1f) : (0.9f, 1, 1f)) : Settings[i % Settings.Length];
            return new SamplingRow(t, k < 0 ? vocab : k, p, (ulong)(i * 7919 + seed), (ulong)i << 33 | 5, i * 3 + 1);
        }).ToArray();
        return (logits, sampling);
    }

    public override (double Bytes, double Flops) Cost => (4.0 * rows * vocab, 0);

    public override OpRun Prepare(IBackend backend, int seed)
    {
        var (logits, sampling) = Draw(seed);
        var b = new RunBuilder(backend);
        var l = b.Upload(logits);
        var result = new int[rows];
        return b.Build(() => backend.Sample(l, vocab, sampling, result), () => [result.Select(v => (float)v).ToArray()]);
    }

    public override double[][] Reference(int seed)
    {
        if (!greedy) throw new NotSupportedException("stochastic sampling has no float64 reference; compare with the CPU backend");
        var (logits, _) = Draw(seed);
        var result = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            int best = 0;
            for (int v = 1; v < vocab; v++)
                if (logits[(long)r * vocab + v] > logits[(long)r * vocab + best]) best = v;
            result[r] = best;
        }
        return [result];
    }

    public override double Error(int seed, double[] expected, float[] actual) =>
        expected.Length != actual.Length ? double.PositiveInfinity : (double)expected.Where((e, i) => e != actual[i]).Count() / expected.Length;
}

/// <summary>One block of a layer's key and value pools copied to another block (copy-on-write of a shared prefix).</summary>
internal sealed class CopyBlockCase(KvGeometry g, bool modelSized)
    : OpCase("copy_block", "f32", $"blocks={g.Blocks} block={g.BlockSize} kv_heads={g.KvHeads} head_dim={g.HeadDim}", modelSized)
{
    private const int Source = 3, Destination = 1;

    public override (double Bytes, double Flops) Cost => (2 * 2 * 4.0 * g.BlockElements, 0);

    public override OpRun Prepare(IBackend backend, int seed)
    {
        var r = new Random(seed);
        var b = new RunBuilder(backend);
        var keys = b.Upload(HostData.Uniform(r, g.LayerElements));
        var values = b.Upload(HostData.Uniform(r, g.LayerElements));
        return b.Build(() => backend.CopyBlock(keys, values, g, Source, Destination), () => [b.Read(keys), b.Read(values)]);
    }

    public override double[][] Reference(int seed)
    {
        var r = new Random(seed);
        return [Copy(HostData.Uniform(r, g.LayerElements)), Copy(HostData.Uniform(r, g.LayerElements))];
    }

    private double[] Copy(float[] pool)
    {
        var x = pool.Select(v => (double)v).ToArray();
        Array.Copy(x, Source * g.BlockElements, x, Destination * g.BlockElements, g.BlockElements);
        return x;
    }
}
