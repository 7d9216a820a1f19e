using System.Diagnostics;
using System.Runtime.CompilerServices;
using WeakToStrong.Engine.Scheduling;
using WeakToStrong.Search.LargeModels;
using WeakToStrong.Search.Scoring;

namespace WeakToStrong.Search;

/// <summary>
/// Chunk-level beam search (docs/architecture.md §Search): W·K candidates each sample up to L large-model tokens;
/// every candidate is scored on its whole response so far; the W best survive and each forks into K. Best-of-N is
/// (1, N, ∞) and plain sampling (1, 1, ∞).
/// </summary>
/// <remarks>
/// Faithful to the reference where it changes results: finished candidates stay in the pool (and are forked K
/// times like any survivor), a finished response is scored with the small model's EOS appended, top-k sampling
/// with the request's settings. Unlike the reference, the returned score is the returned text's, the small
/// models score incrementally (see <see cref="ScoringCacheMode"/>), and <see cref="SearchRequest.Dedupe"/> can
/// drop duplicates.
/// RNG keys: the first child of every survivor keeps the survivor's key, so W=K=1 draws exactly what plain
/// sampling with the same seed draws; other children get keys derived from (parent key, chunk, child).
/// </remarks>
public sealed class ChunkBeamSearch : ISearchMethod
{
    public static ChunkBeamSearch Instance { get; } = new();

    public Task<SearchResult> RunAsync(SearchContext context, SearchRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        SearchCapacity.Check(context, request);
        return SearchUpdates.LastResultAsync(Run(context, request, streaming: false, cancellationToken), cancellationToken);
    }

    /// <remarks>
    /// Every candidate alive at any moment is an ancestor of every later one, so the longest common prefix of the
    /// live candidates' texts is final. With a local large model a chunk is sampled one step at a time (the same
    /// draws: the RNG is keyed by position) and that prefix is checked after each step; a remote model's chunk is
    /// one request, checked after it returns (see <see cref="ILargeModel.SingleStepsAreCheap"/>).
    /// </remarks>
    public IAsyncEnumerable<SearchUpdate> StreamAsync(SearchContext context, SearchRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        SearchCapacity.Check(context, request);
        return Run(context, request, streaming: true, cancellationToken);
    }

    /// <summary>The search; with <c>streaming</c> off only the last update is yielded (no per-step text work).</summary>
    private static async IAsyncEnumerable<SearchUpdate> Run(SearchContext context, SearchRequest request, bool streaming, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var (w, k, l) = request.Shape;
        var clock = Stopwatch.StartNew();
        var counters = new SearchCounters();
        TimeSpan scoring = TimeSpan.Zero, sampling = TimeSpan.Zero;
        var trace = request.Trace ? new List<ChunkTrace>() : null;
        long evaluated = 0;
        var stream = new FinalTextStream();
        int step = streaming && context.Large.SingleStepsAreCheap ? 1 : int.MaxValue;
        using var scorer = new PairScorer(context.Tuned, context.Untuned, context.Large, request);
        var pool = new List<ScoredCandidate>(w * k);
        try
        {
            long promptStart = Stopwatch.GetTimestamp();
            using (var root = await context.Large.StartAsync(request.Prompt, GenerationSettings.From(request), counters, cancellationToken).ConfigureAwait(false))
            {
                sampling += Stopwatch.GetElapsedTime(promptStart);
                for (int j = 0; j < w * k; j++) pool.Add(new ScoredCandidate(root.Fork(ChildKey(root.Key, 0, j))) { Index = j });
            }

            for (int chunk = 0; ; chunk++)
            {
                var open = new List<LargeCandidate>(pool.Count);
                foreach (var c in pool)
                {
                    c.TokensAtChunkStart = c.Large.TokenCount;
                    if (!c.Large.IsFinished) open.Add(c.Large);
                }
                for (long sampled = 0, length = l ?? long.MaxValue; sampled < length && open.Count > 0; sampled += step)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    long stepStart = Stopwatch.GetTimestamp();
                    await context.Large.ExtendAsync(open, (int)Math.Min(step, length - sampled), counters, cancellationToken).ConfigureAwait(false);
                    sampling += Stopwatch.GetElapsedTime(stepStart);
                    open.RemoveAll(c => c.IsFinished);
                    if (streaming && stream.Advance(FinalTextStream.CommonStablePrefix(pool.Select(c => c.Large.Text))) is { } delta)
                        yield return new SearchUpdate(delta);
                }
                cancellationToken.ThrowIfCancellationRequested();

                long scoringStart = Stopwatch.GetTimestamp();
                if (request.CacheMode == ScoringCacheMode.None)
                {
                    await scorer.ScoreUncachedAsync(pool, counters, cancellationToken).ConfigureAwait(false);
                }
                else
                {
                    // A candidate finished before this chunk keeps the score it (or the survivor it copies) had.
                    var changed = pool.Where(c => double.IsNaN(c.Score) || c.Large.TokenCount != c.TokensAtChunkStart).ToList();
                    await scorer.ScoreAsync(changed, counters, cancellationToken).ConfigureAwait(false);
                }
                scoring += Stopwatch.GetElapsedTime(scoringStart);
                evaluated += pool.Count;

                var survivors = Select(pool, w, request.Dedupe, out var dropped);
                trace?.Add(Trace(chunk, pool, survivors, dropped));
                var kept = new HashSet<ScoredCandidate>(survivors, ReferenceEqualityComparer.Instance);
                foreach (var c in pool)
                    if (!kept.Contains(c)) c.Dispose();
                pool.Clear();
                pool.AddRange(survivors);

                if (survivors.All(s => s.Large.IsFinished))
                {
                    var best = survivors[0];
                    var stats = new SearchStats(
                        counters.LargeTokensSampled,
                        counters.TunedTokens + counters.UntunedTokens,
                        counters.TunedTokens,
                        counters.UntunedTokens,
                        counters.LargeForwardCalls + counters.SmallForwardCalls,
                        chunk + 1,
                        clock.Elapsed.TotalMilliseconds,
                        scoring.TotalMilliseconds) { CandidatesEvaluated = evaluated, SamplingMs = sampling.TotalMilliseconds, LargeTokensFed = counters.LargeTokensFed };
                    var (tuned, untuned) = scorer.Describe(best);
                    var result = new SearchResult(best.Large.Text, best.Large.Tokens ?? [], best.Score, best.Large.Finish, stats, tuned, untuned, trace);
                    yield return new SearchUpdate(stream.Finish(result.Text), result);
                    yield break;
                }

                // The selection dropped candidates, so the survivors' common prefix may have grown.
                if (streaming && stream.Advance(FinalTextStream.CommonStablePrefix(survivors.Select(c => c.Large.Text))) is { } selected)
                    yield return new SearchUpdate(selected);

                // Survivors in rank order, repeated K times: [s0 … s(W−1), s0 … s(W−1), …] as the reference orders them.
                pool.Clear();
                var parents = survivors.Select(s => s.Index).ToArray();
                for (int j = 0; j < k; j++)
                    for (int r = 0; r < survivors.Count; r++)
                    {
                        var s = survivors[r];
                        var child = j == 0 ? s : s.Fork(ChildKey(s.Large.Key, chunk + 1, j));
                        child.Index = pool.Count;
                        child.Parent = parents[r];
                        pool.Add(child);
                    }
            }
        }
        finally
        {
            foreach (var c in pool) c.Dispose();
        }
    }

    /// <summary>
    /// The W best by score (ties to the earlier candidate); with dedupe, only the first of identical responses
    /// (same text, same finished state) competes.
    /// </summary>
    private static List<ScoredCandidate> Select(List<ScoredCandidate> pool, int w, bool dedupe, out HashSet<int> dropped)
    {
        dropped = [];
        var competing = pool;
        if (dedupe)
        {
            var seen = new HashSet<(bool, string)>();
            competing = [];
            foreach (var c in pool)
            {
                if (seen.Add((c.Large.IsFinished, c.Large.Text))) competing.Add(c);
                else dropped.Add(c.Index);
            }
        }
        var ranked = competing.ToList();
        ranked.Sort(static (a, b) =>
        {
            int byScore = Rankable(b.Score).CompareTo(Rankable(a.Score));
            return byScore != 0 ? byScore : a.Index.CompareTo(b.Index);
        });
        return ranked.GetRange(0, Math.Min(w, ranked.Count));

        static double Rankable(double score) => double.IsNaN(score) ? double.NegativeInfinity : score;
    }

    private static ChunkTrace Trace(int chunk, List<ScoredCandidate> pool, List<ScoredCandidate> survivors, HashSet<int> dropped)
    {
        var selected = survivors.Select(s => s.Index).ToList();
        var chosen = selected.ToHashSet();
        var candidates = pool.Select(c => new CandidateTrace(
            c.Index,
            c.Parent,
            c.Large.Text,
            c.Large.Tokens is { } t ? [.. t] : [],
            c.Large.TokenCount - c.TokensAtChunkStart,
            c.Score,
            c.Large.Finish,
            chosen.Contains(c.Index),
            dropped.Contains(c.Index))).ToList();
        return new ChunkTrace(chunk, candidates, selected);
    }

    /// <summary>Child <paramref name="child"/> of a survivor: the first keeps the parent's key, the others get fresh ones.</summary>
    internal static ulong ChildKey(ulong parent, int chunk, int child) =>
        child == 0 ? parent : Mix(parent ^ Mix(((ulong)(uint)chunk << 32) | (uint)child));

    /// <summary>SplitMix64's finaliser: a bijection that scatters nearby inputs.</summary>
    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
