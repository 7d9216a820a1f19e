using System.Diagnostics;
using WeakToStrong.Backends;
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
/// <param name="FractionOfBandwidth">WeightGigabytesPerSecond over the memory read bandwidth measured just before.</param>
/// <param name="BandwidthGigabytesPerSecond">Memory read bandwidth measured just before this decode run.</param>
public sealed record BenchResult(string Model, string Dtype, string Phase, int Batch, int Tokens, double Seconds, double TokensPerSecond, double WeightGigabytesPerSecond, double FractionOfBandwidth, double BandwidthGigabytesPerSecond = 0);

/// <summary>
/// Prefill and decode throughput of a synthetic model, reported against a bandwidth ceiling measured in the same
/// run (decode at small batch reads every weight once per step, so weight bytes / median step time is the
/// achieved rate).
/// </summary>
public static class EngineBenchmark
{
    /// <summary>
    /// Runs prefill and decode at each batch size. The memory read bandwidth is measured right before each decode
    /// run (best of a few passes), so each ratio compares numbers taken moments apart on a shared machine.
    /// </summary>
    public static IEnumerable<BenchResult> Run(Transformer model, string name, int[] batches, int promptTokens, int decodeSteps, IProgress<string>? progress = null, CancellationToken cancellationToken = default)
    {
        var results = new List<BenchResult>();
        string dtype = model.Weights.WeightDType.Name();
        long stepBytes = model.Weights.BytesPerDecodeStep;
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
                results.Add(new BenchResult(name, dtype, "prefill", batch, batch * promptTokens, prefill, batch * promptTokens / prefill, 0, 0));

                progress?.Report($"{name} {dtype} batch {batch}: decode");
                Step(model, sequences, sampling, cancellationToken); // warm-up steps, kept out of the timing
                Step(model, sequences, sampling, cancellationToken);
                double bandwidthBytesPerSecond = MemoryBandwidth.MeasureRead(512L << 20, 5);
                var times = new double[decodeSteps];
                for (int step = 0; step < decodeSteps; step++)
                {
                    clock.Restart();
                    Step(model, sequences, sampling, cancellationToken);
                    times[step] = clock.Elapsed.TotalSeconds;
                }
                // The median step: robust to the other tenants of a shared machine.
                Array.Sort(times);
                double median = times[decodeSteps / 2];
                double gbps = stepBytes / median;
                results.Add(new BenchResult(name, dtype, "decode", batch, batch * decodeSteps, times.Sum(), batch / median, gbps / 1e9, gbps / bandwidthBytesPerSecond, bandwidthBytesPerSecond / 1e9));
            }
            finally
            {
                sequences.ForEach(s => s.Dispose());
            }
        }
        return results;
    }

    private static void Step(Transformer model, List<Sequence> sequences, SamplingSettings sampling, CancellationToken cancellationToken)
    {
        var r = model.Forward(sequences.Select(s => new ForwardRequest(s, Sampling: sampling)).ToList(), cancellationToken);
        for (int i = 0; i < sequences.Count; i++) sequences[i].Append(r[i].SampledToken);
    }
}
