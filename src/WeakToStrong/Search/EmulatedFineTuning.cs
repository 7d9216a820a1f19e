using System.Diagnostics;
using System.Runtime.CompilerServices;
using WeakToStrong.Backends;
using WeakToStrong.Backends.Cpu;
using WeakToStrong.Engine;
using WeakToStrong.Engine.Scheduling;
using WeakToStrong.Search.LargeModels;
using WeakToStrong.Search.Scoring;

namespace WeakToStrong.Search;

/// <summary>
/// Emulated fine-tuning (token level): each token is drawn from softmax(logits_large + β·(logits_tuned −
/// logits_untuned)) with the request's temperature, top-k and top-p. The three models need one vocabulary. The
/// small models read the same response tokens after their own prompt; their logits are the log-softmax rows,
/// which differ from raw logits by a per-row constant that the softmax ignores.
/// </summary>
/// <remarks>
/// Tokens are drawn on the host with the CPU backend's sampler (same RNG keys as the engine: seed, sequence key
/// 0, position), so with β = 0 the draw is the large model's own, token for token.
/// </remarks>
public sealed class EmulatedFineTuning : ISearchMethod
{
    public static EmulatedFineTuning Instance { get; } = new();

    public Task<SearchResult> RunAsync(SearchContext context, SearchRequest request, CancellationToken cancellationToken = default) =>
        SearchUpdates.LastResultAsync(Run(Check(context, request), context, request, streaming: false, cancellationToken), cancellationToken);

    /// <summary>Streams the text of each token as it is drawn (held back while it ends inside a character).</summary>
    public IAsyncEnumerable<SearchUpdate> StreamAsync(SearchContext context, SearchRequest request, CancellationToken cancellationToken = default) =>
        Run(Check(context, request), context, request, streaming: true, cancellationToken);

    /// <summary>The large model, once the request and the three vocabularies are known to suit EFT.</summary>
    private static ChatModel Check(SearchContext context, SearchRequest request)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        request.Validate();
        if (context.Large is not LocalLargeModel local)
            throw new SearchException($"EFT combines the large model's logits token by token, and {context.Large.Name} is a remote endpoint that does not expose them; use cbs or bon");
        var large = local.Model;
        RequireOneVocabulary(large, context.Tuned);
        RequireOneVocabulary(large, context.Untuned);
        SearchCapacity.Check(context, request);
        return large;
    }

    /// <summary>The search; with <c>streaming</c> off only the last update is yielded.</summary>
    private static async IAsyncEnumerable<SearchUpdate> Run(ChatModel large, SearchContext context, SearchRequest request, bool streaming, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        var counters = new SearchCounters();
        TimeSpan scoring = TimeSpan.Zero, largeTime = TimeSpan.Zero;
        var promptTokens = large.EncodePrompt(request.Prompt, request.Chat, request.SystemPrompt, request.History).Tokens;
        int window = large.Spec.MaxPositions;
        if (promptTokens.Count >= window)
            throw new RequestValidationException(SearchField.Prompt, $"{large.Name}: the prompt is {promptTokens.Count} tokens and leaves no room in the model's context of {window}");
        var stops = new StopChecker(large.Tokenizer, request.EosTokenIds ?? large.StopTokenIds(request.Chat), request.StopStrings,
            Math.Min(request.MaxNewTokens, window - promptTokens.Count));

        using var scorer = new PairScorer(context.Tuned, context.Untuned, context.Large, request);
        using var sequence = large.Transformer.CreateSequence(promptTokens, key: 0);
        await scorer.EnsurePromptsAsync(counters, cancellationToken).ConfigureAwait(false);
        using var tuned = scorer.Tuned.Fork();
        using var untuned = scorer.Untuned.Fork();
        var sampling = request.Sampling;
        var response = new List<int>();
        var mixed = new float[large.Spec.VocabSize];
        var stream = new FinalTextStream();
        var finish = stops.Check(response);
        while (finish == FinishReason.None)
        {
            cancellationToken.ThrowIfCancellationRequested();
            long forward = Stopwatch.GetTimestamp();
            counters.LargeTokensFed += sequence.Length - sequence.CachedLength;
            var logits = (await large.Transformer.ForwardAsync([new ForwardRequest(sequence, LastLogits: true)], cancellationToken).ConfigureAwait(false))[0].LastLogits!;
            counters.LargeForwardCalls++;
            largeTime += Stopwatch.GetElapsedTime(forward);
            long small = Stopwatch.GetTimestamp();
            // Both small models in the same engine step; both awaited even when one fails, before any sequence is disposed.
            await PairScorer.WhenAllAsync(
                () => scorer.Tuned.UpdateAsync([(tuned, scorer.Tuned.Target(response, finished: false), scorer.Tuned.Prompt.Tokens.Count)], wantNext: true, counters, cancellationToken),
                () => scorer.Untuned.UpdateAsync([(untuned, scorer.Untuned.Target(response, finished: false), scorer.Untuned.Prompt.Tokens.Count)], wantNext: true, counters, cancellationToken)).ConfigureAwait(false);
            scoring += Stopwatch.GetElapsedTime(small);
            var t = tuned.NextLogProbs;
            var u = untuned.NextLogProbs;
            for (int v = 0; v < mixed.Length; v++) mixed[v] = logits[v] + request.Beta * (t[v] - u[v]);
            var row = new SamplingRow(sampling.Temperature, sampling.TopK, sampling.TopP, sampling.Seed, sequence.Key, sequence.Length);
            int token = CpuSampler.Sample(mixed, row);
            sequence.Append(token);
            response.Add(token);
            counters.LargeTokensSampled++;
            finish = stops.Check(response);
            if (streaming && stream.Advance(stops.Text(response, finish)) is { } delta)
                yield return new SearchUpdate(delta);
        }

        string text = stops.Text(response, finish);
        bool exact = text == stops.Text(response, FinishReason.None);
        long final = Stopwatch.GetTimestamp();
        foreach (var (scorerOf, scored) in new[] { (scorer.Tuned, tuned), (scorer.Untuned, untuned) })
        {
            var (tokens, start) = exact ? (scorerOf.Target(response, finished: true), scorerOf.Prompt.Tokens.Count) : scorerOf.Target(text, finished: true);
            await scorerOf.UpdateAsync([(scored, tokens, start)], wantNext: false, counters, cancellationToken).ConfigureAwait(false);
        }
        scoring += Stopwatch.GetElapsedTime(final);
        var stats = new SearchStats(
            counters.LargeTokensSampled,
            counters.TunedTokens + counters.UntunedTokens,
            counters.TunedTokens,
            counters.UntunedTokens,
            counters.LargeForwardCalls + counters.SmallForwardCalls,
            0,
            clock.Elapsed.TotalMilliseconds,
            scoring.TotalMilliseconds) { CandidatesEvaluated = 1, SamplingMs = largeTime.TotalMilliseconds, LargeTokensFed = counters.LargeTokensFed };
        var result = new SearchResult(text, response, tuned.Score - untuned.Score, finish, stats,
            SmallModelScorer.Describe(tuned.Sequence.Tokens, tuned.ResponseStart, tuned.Score),
            SmallModelScorer.Describe(untuned.Sequence.Tokens, untuned.ResponseStart, untuned.Score),
            request.Trace ? [] : null);
        yield return new SearchUpdate(stream.Finish(text), result);
    }

    private static void RequireOneVocabulary(ChatModel large, ChatModel small)
    {
        if (large.Tokenizer.HasSameVocabulary(small.Tokenizer) && large.Spec.VocabSize == small.Spec.VocabSize) return;
        throw new SearchException(
            $"EFT adds the small models' logits to the large model's token by token, so all three need one vocabulary: " +
            $"{small.Name} ({small.Tokenizer.Kind}, {small.Spec.VocabSize} logits) differs from the large model {large.Name} " +
            $"({large.Tokenizer.Kind}, {large.Spec.VocabSize} logits). Use cbs or bon, which bridge tokenizers through text.");
    }
}
