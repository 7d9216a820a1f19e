using WeakToStrong.Engine;
using WeakToStrong.Engine.KvCache;

namespace WeakToStrong.Diagnostics;

/// <summary>How far one model's next-token distributions are from another's over the same tokens.</summary>
/// <param name="Positions">Next-token distributions compared.</param>
/// <param name="MeanKl">Mean KL(reference ‖ candidate) per position, in nats.</param>
/// <param name="MaxKl">The largest KL at one position, in nats.</param>
/// <param name="Top1Agreement">Fraction of positions where both models' most likely next token is the same.</param>
/// <param name="ReferenceNll">Mean negative log-likelihood of the actual next tokens under the reference, in nats.</param>
/// <param name="CandidateNll">The same under the candidate.</param>
public sealed record WeightsComparisonResult(int Positions, double MeanKl, double MaxKl, double Top1Agreement, double ReferenceNll, double CandidateNll)
{
    /// <summary>exp(<see cref="ReferenceNll"/>).</summary>
    public double ReferencePerplexity => Math.Exp(ReferenceNll);

    /// <summary>exp(<see cref="CandidateNll"/>).</summary>
    public double CandidatePerplexity => Math.Exp(CandidateNll);

    /// <summary>Candidate perplexity over reference perplexity, minus one (0.01: 1 % higher).</summary>
    public double PerplexityChange => CandidatePerplexity / ReferencePerplexity - 1;
}

/// <summary>
/// Compares two loads of one model (e.g. stored and int8 weights) position by position: both read the same windows
/// of a token sequence, and at every position their full next-token distributions are compared (KL divergence in
/// float64, top-1 agreement) and scored on the actual next token (perplexity). Windows as in the held-out
/// perplexity test: <c>window + 1</c> tokens each, the first one context only, so every token is predicted once.
/// </summary>
public static class WeightsComparison
{
    /// <summary>Windows decoded side by side in one ragged batch (each a sequence stepping one token at a time).</summary>
    private const int WindowsPerBatch = 16;

    /// <summary>Compares <paramref name="candidate"/> with <paramref name="reference"/> over <paramref name="tokens"/>.</summary>
    /// <param name="reference">The model as stored.</param>
    /// <param name="candidate">The same model with other weights (same vocabulary).</param>
    /// <param name="tokens">The text's tokens (BOS first where the model expects one).</param>
    /// <param name="window">Tokens predicted per window, at most the models' context − 1; null: 128, or that when the context is shorter.</param>
    /// <param name="cancellationToken">Checked between steps.</param>
    public static WeightsComparisonResult Run(LanguageModel reference, LanguageModel candidate, IReadOnlyList<int> tokens, int? window = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(candidate);
        ArgumentNullException.ThrowIfNull(tokens);
        if (reference.Spec.VocabSize != candidate.Spec.VocabSize)
            throw new ArgumentException($"the models' vocabularies differ ({reference.Spec.VocabSize} and {candidate.Spec.VocabSize} tokens)", nameof(candidate));
        if (tokens.Count < 2) throw new ArgumentException("the text needs at least two tokens (one to predict)", nameof(tokens));
        int context = Math.Min(reference.Spec.MaxPositions, candidate.Spec.MaxPositions);
        int span = window ?? Math.Min(128, context - 1);
        if (span < 1 || span + 1 > context) throw new ArgumentOutOfRangeException(nameof(window), window, $"a window predicts 1 to {context - 1} tokens (the models' context is {context})");

        var windows = new List<int[]>();
        for (int s = 0; s + 1 < tokens.Count; s += span) windows.Add(tokens.Skip(s).Take(span + 1).ToArray());
        // As many windows side by side as both KV pools hold (a window needs its tokens' blocks, one more when it
        // straddles a block boundary).
        int blocksPerWindow(PagedKvCache cache) => (span + 1 + cache.BlockSize - 1) / cache.BlockSize + 1;
        int perBatch = Math.Min(WindowsPerBatch, Math.Min(reference.Transformer.Cache.FreeBlocks / blocksPerWindow(reference.Transformer.Cache),
            candidate.Transformer.Cache.FreeBlocks / blocksPerWindow(candidate.Transformer.Cache)));
        if (perBatch < 1) throw new KvCacheExhaustedException($"the KV pools have too few free blocks for one window of {span + 1} tokens");
        double kl = 0, maxKl = 0, referenceNll = 0, candidateNll = 0;
        int positions = 0, agree = 0;
        for (int b = 0; b < windows.Count; b += perBatch)
        {
            var batch = windows.Skip(b).Take(perBatch).ToArray();
            var referenceSequences = batch.Select(w => reference.Transformer.CreateSequence([w[0]])).ToList();
            var candidateSequences = batch.Select(w => candidate.Transformer.CreateSequence([w[0]])).ToList();
            try
            {
                for (int step = 1; step < batch.Max(w => w.Length); step++)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var active = Enumerable.Range(0, batch.Length).Where(i => step < batch[i].Length).ToArray();
                    var p = reference.Transformer.Forward(active.Select(i => new ForwardRequest(referenceSequences[i], LastLogits: true)).ToList(), cancellationToken);
                    var q = candidate.Transformer.Forward(active.Select(i => new ForwardRequest(candidateSequences[i], LastLogits: true)).ToList(), cancellationToken);
                    for (int a = 0; a < active.Length; a++)
                    {
                        int i = active[a], next = batch[i][step];
                        var (divergence, sameTop, pNll, qNll) = Compare(p[a].LastLogits!, q[a].LastLogits!, next);
                        kl += divergence;
                        maxKl = Math.Max(maxKl, divergence);
                        agree += sameTop ? 1 : 0;
                        referenceNll += pNll;
                        candidateNll += qNll;
                        positions++;
                        referenceSequences[i].Append(next);
                        candidateSequences[i].Append(next);
                    }
                }
            }
            finally
            {
                referenceSequences.ForEach(s => s.Dispose());
                candidateSequences.ForEach(s => s.Dispose());
            }
        }
        return new WeightsComparisonResult(positions, kl / positions, maxKl, (double)agree / positions, referenceNll / positions, candidateNll / positions);
    }

    /// <summary>KL(softmax(p) ‖ softmax(q)), whether the argmaxes agree, and −log of each at <paramref name="next"/>; float64 throughout.</summary>
    private static (double Kl, bool SameTop, double PNll, double QNll) Compare(float[] p, float[] q, int next)
    {
        double pLse = LogSumExp(p, out int pTop), qLse = LogSumExp(q, out int qTop);
        double kl = 0;
        for (int v = 0; v < p.Length; v++)
        {
            double lp = p[v] - pLse;
            kl += Math.Exp(lp) * (lp - (q[v] - qLse));
        }
        return (Math.Max(0, kl), pTop == qTop, pLse - p[next], qLse - q[next]);
    }

    private static double LogSumExp(float[] logits, out int argmax)
    {
        argmax = 0;
        for (int v = 1; v < logits.Length; v++)
            if (logits[v] > logits[argmax]) argmax = v;
        double max = logits[argmax], sum = 0;
        foreach (float l in logits) sum += Math.Exp(l - max);
        return max + Math.Log(sum);
    }
}
