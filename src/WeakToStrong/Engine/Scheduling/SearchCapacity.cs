using System.Globalization;
using WeakToStrong.Checkpoints;
using WeakToStrong.Engine.KvCache;
using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;

namespace WeakToStrong.Engine.Scheduling;

/// <summary>What a request asks of each local model's KV pool, in <see cref="WeakToStrongSearch.LocalModels"/> order.</summary>
/// <param name="PromptTokens">The prompt in each local model's tokens (template and BOS included).</param>
/// <param name="Blocks">The most KV blocks the request could hold in each local model's pool (what
/// <see cref="KvAdmission.AcquireAsync(IReadOnlyList{long}, int, CancellationToken)"/> reserves).</param>
public sealed record KvPlan(IReadOnlyList<int> PromptTokens, IReadOnlyList<long> Blocks);

/// <summary>
/// Whether a search fits the KV pools of its models, checked before any work: the peak blocks of the search tree
/// (<see cref="KvDemand"/>) in each local model against that model's pool; and the blocks a request reserves
/// with <see cref="KvAdmission"/> (<see cref="Plan"/>).
/// </summary>
public static class SearchCapacity
{
    /// <summary>
    /// Tokens a small model may hold past its prompt + the response's length: its end token, and one more for a
    /// re-tokenised boundary. With a different tokenizer the small model's response length is estimated as the
    /// large model's (one token per token); a response that tokenizes much longer can still exhaust the pool,
    /// which then fails with <see cref="KvCacheExhaustedException"/>.
    /// </summary>
    public const int SmallModelExtraTokens = 2;

    /// <summary>Peak KV blocks the request holds in one model whose prompt is <paramref name="promptTokens"/> tokens.</summary>
    /// <param name="request">The search.</param>
    /// <param name="promptTokens">The prompt in this model's tokens.</param>
    /// <param name="contextTokens">The model's context (responses are cut to fit it).</param>
    /// <param name="blockSize">Tokens per block of the model's pool.</param>
    /// <param name="scorer">Whether the model is a small scoring model (which holds one more root and, without the
    /// cache, scores candidates from scratch) rather than the large model.</param>
    public static long BlocksNeeded(SearchRequest request, int promptTokens, int contextTokens, int blockSize, bool scorer)
    {
        ArgumentNullException.ThrowIfNull(request);
        request.Validate();
        int newTokens = Math.Max(0, Math.Min(request.MaxNewTokens, contextTokens - promptTokens));
        var (w, k, l) = request.Method == SearchMethodKind.EmulatedFineTuning ? (1, 1, (int?)null) : request.Shape;
        int extra = scorer ? SmallModelExtraTokens : 0;
        if (scorer && request.CacheMode == ScoringCacheMode.None && request.Method != SearchMethodKind.EmulatedFineTuning)
            return KvDemand.IndependentBlocks(promptTokens, newTokens, w * k, blockSize, extra);
        return KvDemand.TreeSearchBlocks(promptTokens, newTokens, w, k, l, blockSize, extra);
    }

    /// <summary>
    /// The prompt's length and the peak KV blocks of <paramref name="searches"/> runs of <paramref name="request"/> in
    /// each local model of <paramref name="search"/>: what admission control reserves before they start. Nothing
    /// is checked against the pools here (<see cref="KvAdmission"/> refuses what could never fit).
    /// </summary>
    /// <param name="search">The search whose local models run the request.</param>
    /// <param name="request">The search request.</param>
    /// <param name="searches">Runs of the request that hold KV at once (e.g. n choices); the blocks saturate at
    /// <see cref="long.MaxValue"/>.</param>
    public static KvPlan Plan(WeakToStrongSearch search, SearchRequest request, int searches = 1)
    {
        ArgumentNullException.ThrowIfNull(search);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(searches);
        request.Validate();
        var locals = search.LocalModels;
        bool localLarge = search.Context.Large is LocalLargeModel;
        var prompts = new int[locals.Count];
        var blocks = new long[locals.Count];
        for (int m = 0; m < locals.Count; m++)
        {
            var model = locals[m];
            prompts[m] = model.EncodePrompt(request.Prompt, request.Chat, request.SystemPrompt, request.History).Tokens.Count;
            long one = BlocksNeeded(request, prompts[m], model.Spec.MaxPositions, model.Transformer.Cache.BlockSize, scorer: !(localLarge && m == 0));
            blocks[m] = one > long.MaxValue / searches ? long.MaxValue : one * searches;
        }
        return new KvPlan(prompts, blocks);
    }

    /// <summary>
    /// Throws <see cref="RequestValidationException"/> blaming the max new tokens when they exceed a local model's
    /// context, or the binding parameter (the max new tokens when one candidate would not fit, else W·K or N), the
    /// blocks needed and the pool's size when the search cannot fit a local model's KV pool.
    /// </summary>
    public static void Check(SearchContext context, SearchRequest request)
    {
        ArgumentNullException.ThrowIfNull(context);
        ArgumentNullException.ThrowIfNull(request);
        request.Validate();
        if (context.Large is LocalLargeModel local) Check(local.Model, request, scorer: false);
        Check(context.Tuned, request, scorer: true);
        Check(context.Untuned, request, scorer: true);
    }

    /// <summary>
    /// A lower bound on the blocks the request needs in a model whatever its prompt length (1 … context − 1 tokens),
    /// known before the prompt is tokenized. A prompt B tokens longer needs exactly one block more as long as the
    /// context does not cut the response, so the first B lengths give the minimum over all uncut lengths; a prompt
    /// that leaves the response cut still holds a root block and at least one block per live candidate.
    /// </summary>
    public static long MinimumBlocksNeeded(SearchRequest request, int contextTokens, int blockSize, bool scorer)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentOutOfRangeException.ThrowIfLessThan(contextTokens, 2);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        int cut = contextTokens - request.MaxNewTokens; // prompts of at least this length leave the response cut
        long least = long.MaxValue;
        for (int p = 1; p <= blockSize && p < Math.Min(cut, contextTokens); p++)
            least = Math.Min(least, BlocksNeeded(request, p, contextTokens, blockSize, scorer));
        if (cut < contextTokens)
        {
            var (w, k, _) = request.Method == SearchMethodKind.EmulatedFineTuning ? (1, 1, (int?)null) : request.Shape;
            least = Math.Min(least, 1 + (request.MaxNewTokens > 0 ? (long)w * k : 0));
        }
        return least;
    }

    /// <summary>
    /// Before any model is loaded: throws as <see cref="Check(SearchContext, SearchRequest)"/> does when the request
    /// could not fit pools of <paramref name="blocksPerModel"/> blocks whatever the prompt
    /// (<see cref="MinimumBlocksNeeded"/>; the prompt's tokens are not known until the tokenizers are), so a shape
    /// far too large fails before the weights are read.
    /// </summary>
    /// <param name="request">The search.</param>
    /// <param name="models">Each local model: its name (folder), spec, and whether it scores (the small pair).</param>
    /// <param name="blocksPerModel">Blocks each model's pool will hold.</param>
    /// <param name="blockSize">Tokens per block.</param>
    public static void CheckBeforeLoading(SearchRequest request, IEnumerable<(string Name, ModelSpec Spec, bool Scorer)> models, int blocksPerModel, int blockSize = 16)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(models);
        request.Validate();
        var all = models.ToList();
        foreach (var (name, spec, _) in all) CheckContext(request, name, spec.MaxPositions);
        foreach (var (name, spec, scorer) in all)
        {
            long need = MinimumBlocksNeeded(request, spec.MaxPositions, blockSize, scorer);
            if (need > blocksPerModel)
                throw Refusal(request, r => MinimumBlocksNeeded(r, spec.MaxPositions, blockSize, scorer), name, "any prompt", need, blockSize, blocksPerModel, KvBudget.BlockBytes(spec, blockSize) * blocksPerModel);
        }
    }

    /// <summary>
    /// Refuses max new tokens past a model's whole context (prompt included): no prompt leaves room for them, and
    /// a response is cut to the context anyway. A response that only a long prompt cuts is still allowed.
    /// </summary>
    private static void CheckContext(SearchRequest request, string model, int contextTokens)
    {
        if (request.MaxNewTokens > contextTokens)
            throw new RequestValidationException(SearchField.MaxNewTokens, string.Create(CultureInfo.InvariantCulture,
                $"max new tokens = {request.MaxNewTokens} exceeds the context of {model} ({contextTokens} tokens, prompt included)"));
    }

    private static void Check(ChatModel model, SearchRequest request, bool scorer)
    {
        var cache = model.Transformer.Cache;
        int context = model.Spec.MaxPositions;
        CheckContext(request, model.Name, context);
        int prompt = model.EncodePrompt(request.Prompt, request.Chat, request.SystemPrompt, request.History).Tokens.Count;
        long need = BlocksNeeded(request, prompt, context, cache.BlockSize, scorer);
        if (need > cache.TotalBlocks)
            throw Refusal(request, r => BlocksNeeded(r, prompt, context, cache.BlockSize, scorer), model.Name, $"a {prompt}-token prompt", need, cache.BlockSize, cache.TotalBlocks, cache.PoolBytes);
    }

    /// <summary>
    /// The refusal, naming the binding parameter: the max new tokens when even one candidate (W·K = 1, N = 1) would
    /// not fit (<paramref name="needFor"/> of that request), else the shape.
    /// </summary>
    private static RequestValidationException Refusal(SearchRequest request, Func<SearchRequest, long> needFor, string model, string prompt, long need, int blockSize, long blocks, long poolBytes)
    {
        var (w, k, _) = request.Shape;
        bool lengthBound = request.Method is SearchMethodKind.Sample or SearchMethodKind.EmulatedFineTuning
            || needFor(request with { BeamWidth = 1, Successors = 1, N = 1 }) > blocks;
        var (parameter, shape, fix) = lengthBound
            ? (SearchField.MaxNewTokens, $"max new tokens = {request.MaxNewTokens}{(request.Method is SearchMethodKind.ChunkBeamSearch or SearchMethodKind.BestOfN ? " (even with one candidate)" : "")}", "lower the max new tokens")
            : request.Method == SearchMethodKind.BestOfN
                ? (SearchField.N, $"N = {request.N} samples", "lower N or the max new tokens")
                : (SearchField.BeamWidth, $"W·K = {w} × {k} = {(long)w * k} candidates", "lower the shape or the max new tokens");
        return new RequestValidationException(parameter, string.Create(CultureInfo.InvariantCulture,
            $"{shape} with {prompt} and up to {request.MaxNewTokens} new tokens needs {(prompt == "any prompt" ? "at least" : "up to")} {need} KV blocks of {blockSize} tokens in {model}, but its pool holds {blocks} ({new ByteSize(poolBytes)}); {fix}, or raise the KV budget (--kv-memory)"));
    }
}
