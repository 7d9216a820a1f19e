using WeakToStrong.Engine;
using WeakToStrong.Engine.KvCache;
using WeakToStrong.Search.LargeModels;

namespace WeakToStrong.Search.Scoring;

/// <summary>
/// One small model scoring the candidates of one search: log π(response | prompt) in its own tokens and template.
/// With a vocabulary identical to the large model's, the sampled tokens are used as they are; otherwise the
/// response text is re-tokenized (the prompt's trailing text and the response in one call, as the reference does)
/// and the cached longest common prefix is reused.
/// </summary>
internal sealed class SmallModelScorer : IDisposable
{
    private readonly ChatModel _model;
    private readonly PromptEncoding _prompt;
    private readonly bool _sameVocabulary;
    private readonly int? _endToken;
    private readonly HashSet<int> _endTokens;
    private readonly Action<SearchCounters, long> _count;
    private ScoredSequence? _root;

    /// <param name="model">The small model.</param>
    /// <param name="large">The large model (its tokenizer decides whether the round trip through text is needed).</param>
    /// <param name="request">The search (prompt, chat formatting).</param>
    /// <param name="count">Adds fed tokens to this model's counter.</param>
    public SmallModelScorer(ChatModel model, ILargeModel large, SearchRequest request, Action<SearchCounters, long> count)
    {
        _model = model;
        _prompt = model.EncodePrompt(request.Prompt, request.Chat, request.SystemPrompt, request.History);
        _sameVocabulary = large.Tokenizer is { } t && t.HasSameVocabulary(model.Tokenizer);
        _endToken = model.EndOfResponseToken(request.Chat);
        _endTokens = [.. model.StopTokenIds(request.Chat)];
        _count = count;
    }

    public ChatModel Model => _model;

    /// <summary>Whether the response tokens go to this model as they are (no round trip through text).</summary>
    public bool SameVocabulary => _sameVocabulary;

    public PromptEncoding Prompt => _prompt;

    /// <summary>
    /// Prompt + response (+ this model's end token when the response is finished, as the reference scores it) in
    /// this model's tokens, and where the response starts.
    /// </summary>
    public (List<int> Tokens, int ResponseStart) Target(LargeCandidate candidate)
    {
        if (_sameVocabulary && candidate.Tokens is { } ids && candidate.TextMatchesTokens)
            return (Target(ids, candidate.IsFinished), _prompt.Tokens.Count);
        return Target(candidate.Text, candidate.IsFinished);
    }

    /// <summary>Prompt + response tokens already in this model's vocabulary, with the end token when finished.</summary>
    public List<int> Target(IReadOnlyList<int> response, bool finished) =>
        WithEnd(_prompt.WithResponseTokens(response), _prompt.Tokens.Count, finished);

    /// <summary>Prompt + response text re-tokenized by this model, with the end token when finished.</summary>
    public (List<int> Tokens, int ResponseStart) Target(string response, bool finished)
    {
        var (tokens, start) = _prompt.WithResponse(response);
        // A prompt that merges whole into the response's first token leaves nothing to condition that token on;
        // the reference then scores from the second token, and so do we.
        start = Math.Max(start, 1);
        return (WithEnd(tokens, start, finished), start);
    }

    private List<int> WithEnd(List<int> tokens, int start, bool finished)
    {
        if (finished && _endToken is { } end && !(tokens.Count > start && _endTokens.Contains(tokens[^1]))) tokens.Add(end);
        int context = _model.Spec.MaxPositions;
        if (tokens.Count > context)
            throw new SearchException($"{_model.Name}: prompt + response is {tokens.Count} tokens, more than the model's context of {context}; lower the max new tokens");
        return tokens;
    }

    /// <summary>The token ids this model scores for a candidate as it stands, split into prompt and response.</summary>
    public ScoredTokens Describe(LargeCandidate candidate, double logProb)
    {
        var (tokens, start) = Target(candidate);
        return Describe(tokens, start, logProb);
    }

    public static ScoredTokens Describe(IReadOnlyList<int> tokens, int start, double logProb) =>
        new(tokens.Take(start).ToArray(), tokens.Skip(start).ToArray(), logProb);

    /// <summary>Feeds the prompt once (on first use), so that <see cref="Fork"/> can share its KV.</summary>
    public async Task EnsurePromptAsync(SearchCounters counters, CancellationToken cancellationToken)
    {
        if (_root is not null) return;
        var root = ScoredSequence.Create(_model.Transformer, _prompt.Tokens, _prompt.Tokens.Count);
        try
        {
            var request = root.PreparePrefill();
            var result = await ForwardAsync([request], counters, cancellationToken).ConfigureAwait(false);
            root.Complete(result[0]);
        }
        catch
        {
            root.Dispose();
            throw;
        }
        _root = root;
    }

    /// <summary>A sequence for a new candidate: a fork of the prompt (fed by <see cref="EnsurePromptAsync"/>).</summary>
    public ScoredSequence Fork() =>
        (_root ?? throw new InvalidOperationException("the prompt is not fed yet: await EnsurePromptAsync first")).Fork();

    /// <summary>
    /// Brings every sequence to its target in one ragged forward call (none when nothing is new). With
    /// <paramref name="shareRows"/>, sequences in the same state with the same request (candidates that drew the same
    /// tokens) feed one set of rows between them and share its KV.
    /// </summary>
    public async Task UpdateAsync(IReadOnlyList<(ScoredSequence Sequence, List<int> Tokens, int ResponseStart)> items, bool wantNext, SearchCounters counters, CancellationToken cancellationToken,
        bool shareRows = false)
    {
        var requests = new List<ForwardRequest>(items.Count);
        var owners = new List<ScoredSequence>(items.Count);
        var followers = new List<(ScoredSequence Sequence, int Leader)>();
        var leaders = new Dictionary<Sequence, int>(SameStateComparer.Instance);
        foreach (var (sequence, tokens, start) in items)
        {
            if (sequence.Prepare(tokens, start, wantNext) is not { } request) continue;
            if (shareRows && leaders.TryGetValue(request.Sequence, out int leader) && SameFeed(requests[leader], request))
            {
                followers.Add((sequence, leader));
                continue;
            }
            if (shareRows) leaders.TryAdd(request.Sequence, requests.Count);
            requests.Add(request);
            owners.Add(sequence);
        }
        if (requests.Count == 0) return;
        var results = await ForwardAsync(requests, counters, cancellationToken).ConfigureAwait(false);
        for (int i = 0; i < owners.Count; i++) owners[i].Complete(results[i]);
        foreach (var (sequence, leader) in followers)
        {
            sequence.Sequence.ShareCacheOf(owners[leader].Sequence);
            sequence.Complete(results[leader]);
        }

        static bool SameFeed(ForwardRequest a, ForwardRequest b) =>
            a.FeedUntil == b.FeedUntil && a.TargetLogProbs == b.TargetLogProbs && a.LastLogits == b.LastLogits;
    }

    /// <summary>
    /// Scores each candidate from scratch (prompt + whole response), as the reference implementation does at
    /// every chunk; nothing is kept.
    /// </summary>
    public async Task<double[]> ScoreUncachedAsync(IReadOnlyList<LargeCandidate> candidates, SearchCounters counters, CancellationToken cancellationToken)
    {
        var sequences = new List<ScoredSequence>(candidates.Count);
        try
        {
            var items = new List<(ScoredSequence, List<int>, int)>(candidates.Count);
            foreach (var c in candidates)
            {
                var (tokens, start) = Target(c);
                var sequence = ScoredSequence.Create(_model.Transformer, [], start);
                sequences.Add(sequence);
                items.Add((sequence, tokens, start));
            }
            await UpdateAsync(items, wantNext: false, counters, cancellationToken).ConfigureAwait(false);
            return sequences.Select(s => s.Score).ToArray();
        }
        finally
        {
            foreach (var s in sequences) s.Dispose();
        }
    }

    private async Task<IReadOnlyList<ForwardResult>> ForwardAsync(List<ForwardRequest> requests, SearchCounters counters, CancellationToken cancellationToken)
    {
        long tokens = 0;
        foreach (var r in requests) tokens += r.FeedUntil - r.Sequence.CachedLength;
        var results = await _model.Transformer.ForwardAsync(requests, cancellationToken).ConfigureAwait(false);
        _count(counters, tokens);
        counters.SmallForwardCalls++;
        return results;
    }

    public void Dispose() => _root?.Dispose();
}
