using WeakToStrong.Engine;
using WeakToStrong.Engine.KvCache;

namespace WeakToStrong.Search.Scoring;

/// <summary>
/// One small model's view of one candidate: prompt + response tokens in the model's paged KV cache, and the
/// log-probability of every token given what precedes it, so that a chunk feeds only the tokens that are new.
/// </summary>
/// <remarks>
/// Invariant: <c>_logProbs[i]</c> = log p(tokens[i+1] | tokens[≤i]) for i &lt; <c>_logProbs.Count</c>, and either
/// <c>_logProbs.Count == CachedLength</c> (the last token is not fed yet: scoring needs no output after it), or the
/// sequence is fully fed and <c>_nextRow</c> holds the log-softmax after its last token (the shared prompt, and
/// EFT, which needs the next-token distribution) with <c>_logProbs.Count == CachedLength − 1</c>.
/// Entries below <c>_scoredFrom</c> are placeholders: the prompt is fed without asking for its log-probs.
/// </remarks>
internal sealed class ScoredSequence : IDisposable
{
    private readonly List<float> _logProbs;
    private float[]? _nextRow;
    private int _scoredFrom;
    private bool _pendingWantsNext;
    private bool _pendingPrefill;

    private ScoredSequence(Sequence sequence, List<float> logProbs, float[]? nextRow, int scoredFrom, int responseStart)
    {
        Sequence = sequence;
        _logProbs = logProbs;
        _nextRow = nextRow;
        _scoredFrom = scoredFrom;
        ResponseStart = responseStart;
    }

    /// <summary>A sequence of <paramref name="tokens"/>, nothing fed yet.</summary>
    public static ScoredSequence Create(Transformer transformer, IReadOnlyList<int> tokens, int responseStart) =>
        new(transformer.CreateSequence(tokens), [], null, 0, responseStart);

    public Sequence Sequence { get; }

    /// <summary>Index of the first response token; the score sums the log-probs of tokens from here on.</summary>
    public int ResponseStart { get; private set; }

    /// <summary>The log-softmax after the last token, when the sequence is fully fed (null otherwise).</summary>
    public ReadOnlySpan<float> NextLogProbs => _nextRow;

    /// <summary>A copy sharing this one's KV blocks and log-probs so far.</summary>
    public ScoredSequence Fork() => new(Sequence.Fork(), [.. _logProbs], _nextRow, _scoredFrom, ResponseStart);

    /// <summary>
    /// A request that feeds the whole prompt once and keeps the next-token distribution after it, without the
    /// prompt's own log-probs (computing them would cost a [tokens, vocab] projection for nothing).
    /// </summary>
    public ForwardRequest PreparePrefill()
    {
        if (Sequence.CachedLength != 0 || _logProbs.Count != 0) throw new InvalidOperationException("only a fresh sequence can be prefilled");
        _pendingWantsNext = true;
        _pendingPrefill = true;
        return new ForwardRequest(Sequence, Sequence.Length, TargetLogProbs: false, LastLogits: true);
    }

    /// <summary>
    /// Makes the sequence hold <paramref name="target"/>: keeps the longest common prefix with what it holds
    /// (dropping KV past it), appends the rest, and returns the request that feeds the tokens whose log-probs are
    /// still unknown — or null when there are none.
    /// </summary>
    /// <param name="target">Prompt + response (+ EOS) in this model's tokens.</param>
    /// <param name="responseStart">Index of the first response token in <paramref name="target"/>.</param>
    /// <param name="wantNext">Also compute the distribution after the last token (EFT).</param>
    public ForwardRequest? Prepare(IReadOnlyList<int> target, int responseStart, bool wantNext)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (responseStart < 1) throw new ArgumentOutOfRangeException(nameof(responseStart), responseStart, "the response must follow at least one prompt token");
        var tokens = Sequence.Tokens;
        int common = PromptEncoding.CommonPrefixLength(tokens, target);
        if (common < Sequence.Length)
        {
            // Tokens from `common` on changed. Position common−1 is fed again: its successor is new, and that
            // successor's log-prob can only be read off its output.
            Sequence.Truncate(Math.Max(0, common - 1));
            _logProbs.RemoveRange(Sequence.CachedLength, _logProbs.Count - Sequence.CachedLength);
            _scoredFrom = Math.Min(_scoredFrom, Sequence.CachedLength);
            _nextRow = null;
        }
        if (target.Count > Sequence.Length) Sequence.Append(Slice(target, Sequence.Length));
        if (_nextRow is not null && Sequence.Length > Sequence.CachedLength)
        {
            _logProbs.Add(_nextRow[Sequence.Tokens[Sequence.CachedLength]]);
            _nextRow = null;
        }
        ResponseStart = responseStart;
        if (responseStart - 1 < _scoredFrom)
            throw new InvalidOperationException($"the response starts at {responseStart}, before the scored part of the sequence ({_scoredFrom + 1})");
        _pendingWantsNext = wantNext;
        _pendingPrefill = false;
        int feedUntil = wantNext ? Sequence.Length : Sequence.Length - 1;
        if (feedUntil <= Sequence.CachedLength) return null;
        return new ForwardRequest(Sequence, feedUntil, TargetLogProbs: true, LastLogits: wantNext);
    }

    /// <summary>Takes the results of the request <see cref="Prepare"/> or <see cref="PreparePrefill"/> returned.</summary>
    public void Complete(ForwardResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        if (_pendingWantsNext && result.LastLogits is null) throw new InvalidOperationException("a request for the next-token distribution returned no logits");
        if (_pendingPrefill)
        {
            // The prompt's positions carry placeholders; scoring starts at its last position.
            _scoredFrom = Sequence.CachedLength - 1;
            while (_logProbs.Count < _scoredFrom) _logProbs.Add(0f);
        }
        else
        {
            _logProbs.AddRange(result.TargetLogProbs);
        }
        if (_pendingWantsNext) _nextRow = LogSoftmax(result.LastLogits!);
        _pendingWantsNext = false;
        _pendingPrefill = false;
    }

    /// <summary>Σ log p(token) over the response tokens.</summary>
    public double Score
    {
        get
        {
            int end = Sequence.Length - 1;
            if (_logProbs.Count < end) throw new InvalidOperationException($"the sequence is not fully scored ({_logProbs.Count} of {end} positions)");
            double sum = 0;
            for (int i = ResponseStart - 1; i < end; i++) sum += _logProbs[i];
            return sum;
        }
    }

    private static IEnumerable<int> Slice(IReadOnlyList<int> list, int start)
    {
        for (int i = start; i < list.Count; i++) yield return list[i];
    }

    private static float[] LogSoftmax(float[] logits)
    {
        float max = System.Numerics.Tensors.TensorPrimitives.Max(logits);
        double sum = 0;
        foreach (float x in logits) sum += Math.Exp(x - max);
        float logZ = (float)(max + Math.Log(sum));
        var row = new float[logits.Length];
        System.Numerics.Tensors.TensorPrimitives.Subtract(logits, logZ, row);
        return row;
    }

    public void Dispose() => Sequence.Dispose();
}
