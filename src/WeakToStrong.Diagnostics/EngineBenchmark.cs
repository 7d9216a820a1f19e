using System.Diagnostics;
using WeakToStrong.Backends;
using WeakToStrong.Checkpoints;
using WeakToStrong.Engine;
using WeakToStrong.Engine.KvCache;

namespace WeakToStrong.Diagnostics;

/// <summary>One measured configuration.</summary>
/// <param name="Model">Shape name.</param>
/// <param name="Dtype">Weight dtype.</param>
/// <param name="Phase">"prefill" or "decode".</param>
/// <param name="Batch">Sequences per forward.</param>
/// <param name="Tokens">Tokens produced or consumed.</param>
/// <param name="Seconds">Time measured.</param>
/// <param name="TokensPerSecond">Throughput (decode: batch / median step time).</param>
/// <param name="WeightGigabytesPerSecond">Weight bytes read per second (decode: every weight once per step).</param>
/// <param name="FractionOfBandwidth">WeightGigabytesPerSecond over the memory bandwidth measured around this run.</param>
/// <param name="BandwidthGigabytesPerSecond">Memory bandwidth measured around this decode run: the CPU's read bandwidth, or a device-to-device copy (bytes read + written) on a GPU.</param>
/// <param name="Gigaflops">Matrix-multiply GFLOP/s achieved (2 FLOP per weight per token; attention not counted).</param>
/// <param name="FractionOfCompute">Gigaflops over the FMA ceiling measured just before (CPU backend only).</param>
/// <param name="ComputeGigaflops">The CPU's F32 FMA ceiling (int8 weights: the int8 multiply-add ceiling of their kernel's path), all cores, measured just before this run (0: not measured).</param>
public sealed record BenchResult(string Model, string Dtype, string Phase, int Batch, int Tokens, double Seconds, double TokensPerSecond, double WeightGigabytesPerSecond, double FractionOfBandwidth, double BandwidthGigabytesPerSecond = 0,
    double Gigaflops = 0, double FractionOfCompute = 0, double ComputeGigaflops = 0);

/// <summary>
/// Prefill and decode throughput of a synthetic model, reported against ceilings measured in the same run: memory
/// read bandwidth (decode at small batch reads every weight once per step, so weight bytes / median step time is
/// the achieved rate) and, on the CPU backend, the FMA ceiling (prefill and decode at batch 16 are compute-bound).
/// </summary>
public static class EngineBenchmark
{
    /// <summary>
    /// Runs prefill and decode at each batch size. The memory read bandwidth and the FMA ceiling are measured right
    /// before and right after each decode run (best of a few passes), so each ratio compares numbers taken moments
    /// apart on a shared machine.
    /// </summary>
    public static IEnumerable<BenchResult> Run(Transformer model, string name, int[] batches, int promptTokens, int decodeSteps, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        var results = new List<BenchResult>();
        string dtype = model.Weights.WeightDType.Name();
        long stepBytes = model.Weights.BytesPerDecodeStep;
        double flopsPerToken = 2.0 * MatmulWeights(model.Spec), headFlops = 2.0 * model.Spec.VocabSize * model.Spec.Dim;
        bool cpu = model.Backend.Name == "cpu";
        // Int8 weights chase the int8 multiply-add ceiling of their kernel's path, float weights the F32 FMA one.
        Func<double> ceiling = model.Weights.WeightDType == DType.I8 ? () => Int8Peak.Measure() : () => ComputePeak.MeasureFma();
        foreach (int batch in batches)
        {
            progress?.Report($"{name} {dtype} batch {batch}: prefill");
            var random = new Random(batch);
            var prompts = Enumerable.Range(0, batch)
                .Select(_ => Enumerable.Range(0, promptTokens).Select(_ => random.Next(model.Spec.VocabSize)).ToArray()).ToList();
            var sequences = prompts.Select((p, i) => model.CreateSequence(p, (ulong)i)).ToList();
            try
            {
                var sampling = new SamplingSettings(0f);
                var requests = sequences.Select(s => new ForwardRequest(s, Sampling: sampling)).ToList();
                model.Forward(requests, cancellationToken); // warm-up prefill (JIT, buffers), kept out of the timing
                for (int i = 0; i < batch; i++)
                {
                    sequences[i].Truncate(0);
                    sequences[i].Append(prompts[i]);
                }
                var clock = Stopwatch.StartNew();
                var first = model.Forward(requests, cancellationToken);
                double prefill = clock.Elapsed.TotalSeconds;
                for (int i = 0; i < batch; i++) sequences[i].Append(first[i].SampledToken);
                // Prefill computes logits for each sequence's last token only.
                double prefillFlops = (batch * promptTokens * (flopsPerToken - headFlops) + batch * headFlops) / prefill;
                double peak = cpu ? ceiling() : 0;
                results.Add(new BenchResult(name, dtype, "prefill", batch, batch * promptTokens, prefill, batch * promptTokens / prefill, 0, 0,
                    Gigaflops: prefillFlops / 1e9, FractionOfCompute: cpu ? prefillFlops / peak : 0, ComputeGigaflops: peak / 1e9));

                progress?.Report($"{name} {dtype} batch {batch}: decode");
                Step(model, sequences, sampling, cancellationToken); // warm-up steps, kept out of the timing
                Step(model, sequences, sampling, cancellationToken);
                double bandwidthBytesPerSecond = Ops.Ceilings.MemoryBytesPerSecond(model.Backend);
                peak = cpu ? ceiling() : 0;
                var times = new double[decodeSteps];
                for (int step = 0; step < decodeSteps; step++)
                {
                    clock.Restart();
                    Step(model, sequences, sampling, cancellationToken);
                    times[step] = clock.Elapsed.TotalSeconds;
                }
                // Ceilings are the best seen before and after the run (a neighbour's burst during one probe would
                // otherwise make the ratio exceed 100 %); the step is the median, robust to the other tenants.
                bandwidthBytesPerSecond = Math.Max(bandwidthBytesPerSecond, Ops.Ceilings.MemoryBytesPerSecond(model.Backend));
                if (cpu) peak = Math.Max(peak, ceiling());
                Array.Sort(times);
                double median = times[decodeSteps / 2];
                double gbps = stepBytes / median;
                double flops = batch * flopsPerToken / median;
                results.Add(new BenchResult(name, dtype, "decode", batch, batch * decodeSteps, times.Sum(), batch / median, gbps / 1e9, gbps / bandwidthBytesPerSecond, bandwidthBytesPerSecond / 1e9,
                    flops / 1e9, cpu ? flops / peak : 0, peak / 1e9));
            }
            finally
            {
                sequences.ForEach(s => s.Dispose());
            }
        }
        return results;
    }

    /// <summary>Weights of every matrix a token passes through, lm_head included (each is one multiply-add per token).</summary>
    public static long MatmulWeights(ModelSpec spec)
    {
        int up = spec.Mlp == MlpKind.SiluGated ? 2 * spec.FeedForwardDim : spec.FeedForwardDim;
        long perLayer = (long)spec.QkvDim * spec.Dim + (long)spec.Dim * spec.AttentionDim + (long)up * spec.Dim + (long)spec.Dim * spec.FeedForwardDim;
        return spec.Layers * perLayer + (long)spec.VocabSize * spec.Dim;
    }

    private static void Step(Transformer model, List<Sequence> sequences, SamplingSettings sampling, CancellationToken cancellationToken)
    {
        var r = model.Forward(sequences.Select(s => new ForwardRequest(s, Sampling: sampling)).ToList(), cancellationToken);
        for (int i = 0; i < sequences.Count; i++) sequences[i].Append(r[i].SampledToken);
    }
}
