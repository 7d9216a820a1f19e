using WeakToStrong.Search.LargeModels;

namespace WeakToStrong.Search.Scoring;

/// <summary>
/// The guidance of one search: score(x, y) = log π_tuned(y | x) − log π_untuned(y | x), each small model in its own
/// tokens and template, each with one ragged forward per scoring round.
/// </summary>
internal sealed class PairScorer : IDisposable
{
    public PairScorer(ChatModel tuned, ChatModel untuned, ILargeModel large, SearchRequest request)
    {
        Tuned = new SmallModelScorer(tuned, large, request, static (c, n) => c.TunedTokens += n);
        try
        {
            Untuned = new SmallModelScorer(untuned, large, request, static (c, n) => c.UntunedTokens += n);
        }
        catch
        {
            Tuned.Dispose();
            throw;
        }
    }

    public SmallModelScorer Tuned { get; }

    public SmallModelScorer Untuned { get; }

    /// <summary>Feeds each small model's prompt once, both in the same engine step.</summary>
    public Task EnsurePromptsAsync(SearchCounters counters, CancellationToken cancellationToken) =>
        Task.WhenAll(Tuned.EnsurePromptAsync(counters, cancellationToken), Untuned.EnsurePromptAsync(counters, cancellationToken));

    /// <summary>
    /// Scores candidates incrementally: each one's cached sequences take only what changed. The two small models
    /// are submitted together, so an engine loop runs both in the same step.
    /// </summary>
    public async Task ScoreAsync(IReadOnlyList<ScoredCandidate> candidates, SearchCounters counters, CancellationToken cancellationToken)
    {
        if (candidates.Count == 0) return;
        await EnsurePromptsAsync(counters, cancellationToken).ConfigureAwait(false);
        foreach (var c in candidates)
        {
            c.Tuned ??= Tuned.Fork();
            c.Untuned ??= Untuned.Fork();
        }
        Task Update(SmallModelScorer scorer, Func<ScoredCandidate, ScoredSequence> sequence)
        {
            var items = new List<(ScoredSequence, List<int>, int)>(candidates.Count);
            foreach (var c in candidates)
            {
                var (tokens, start) = scorer.Target(c.Large);
                items.Add((sequence(c), tokens, start));
            }
            return scorer.UpdateAsync(items, wantNext: false, counters, cancellationToken, shareRows: true);
        }
        await WhenAllAsync(() => Update(Tuned, c => c.Tuned!), () => Update(Untuned, c => c.Untuned!)).ConfigureAwait(false);
        foreach (var c in candidates) c.SetScores(c.Tuned!.Score, c.Untuned!.Score);
    }

    /// <summary>Scores candidates from scratch, keeping nothing (the reference's cost model).</summary>
    public async Task ScoreUncachedAsync(IReadOnlyList<ScoredCandidate> candidates, SearchCounters counters, CancellationToken cancellationToken)
    {
        if (candidates.Count == 0) return;
        var large = candidates.Select(c => c.Large).ToList();
        var tuned = Tuned.ScoreUncachedAsync(large, counters, cancellationToken);
        var untuned = Untuned.ScoreUncachedAsync(large, counters, cancellationToken);
        await Task.WhenAll(tuned, untuned).ConfigureAwait(false);
        for (int i = 0; i < candidates.Count; i++) candidates[i].SetScores(tuned.Result[i], untuned.Result[i]);
    }

    /// <summary>
    /// Starts both and waits for both even when one fails early, so that no forward is still using a sequence
    /// when the caller disposes it.
    /// </summary>
    internal static Task WhenAllAsync(Func<Task> first, Func<Task> second)
    {
        static Task Start(Func<Task> f)
        {
            try
            {
                return f();
            }
            catch (Exception e)
            {
                return Task.FromException(e);
            }
        }
        return Task.WhenAll(Start(first), Start(second));
    }

    /// <summary>The token ids each small model scored for a candidate, and its log-probs.</summary>
    public (ScoredTokens Tuned, ScoredTokens Untuned) Describe(ScoredCandidate candidate) =>
        (Tuned.Describe(candidate.Large, candidate.TunedLogProb), Untuned.Describe(candidate.Large, candidate.UntunedLogProb));

    public void Dispose()
    {
        Tuned.Dispose();
        Untuned.Dispose();
    }
}

/// <summary>A candidate of a chunk-level search: its large-model state and its two small-model sequences.</summary>
internal sealed class ScoredCandidate(LargeCandidate large) : IDisposable
{
    public LargeCandidate Large { get; } = large;

    public ScoredSequence? Tuned { get; set; }

    public ScoredSequence? Untuned { get; set; }

    /// <summary>Score of the response as it stands when last scored (NaN before).</summary>
    public double Score { get; private set; } = double.NaN;

    public double TunedLogProb { get; private set; } = double.NaN;

    public double UntunedLogProb { get; private set; } = double.NaN;

    public void SetScores(double tuned, double untuned)
    {
        TunedLogProb = tuned;
        UntunedLogProb = untuned;
        Score = tuned - untuned;
    }

    /// <summary>Index among the current chunk's candidates.</summary>
    public int Index { get; set; }

    /// <summary>Index of the survivor it was forked from in the previous chunk (−1 in the first).</summary>
    public int Parent { get; set; } = -1;

    /// <summary>Large-model tokens it had when the chunk began.</summary>
    public int TokensAtChunkStart { get; set; }

    public ScoredCandidate Fork(ulong key) => new(Large.Fork(key))
    {
        Tuned = Tuned?.Fork(),
        Untuned = Untuned?.Fork(),
        Score = Score,
        TunedLogProb = TunedLogProb,
        UntunedLogProb = UntunedLogProb,
    };

    public void Dispose()
    {
        Large.Dispose();
        Tuned?.Dispose();
        Untuned?.Dispose();
    }
}
