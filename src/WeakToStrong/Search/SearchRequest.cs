using WeakToStrong.Chat;
using WeakToStrong.Engine;

namespace WeakToStrong.Search;

/// <summary>The search methods behind <see cref="ISearchMethod"/>.</summary>
public enum SearchMethodKind
{
    /// <summary>Chunk-level beam search (W, K, L) guided by the small pair's log-likelihood ratio.</summary>
    ChunkBeamSearch,

    /// <summary>N full samples; the best by the small pair's score is returned (CBS with W=1, K=N, L=∞).</summary>
    BestOfN,

    /// <summary>Emulated fine-tuning: sample from logits_large + β·(logits_tuned − logits_untuned), token by token.</summary>
    EmulatedFineTuning,

    /// <summary>Plain sampling from the large model (CBS with W=1, K=1, L=∞); the score is still reported.</summary>
    Sample,
}

/// <summary>Whether the small models keep their KV caches from chunk to chunk.</summary>
public enum ScoringCacheMode
{
    /// <summary>Per chunk, each candidate feeds only its new tokens; caches fork with the survivors.</summary>
    Incremental,

    /// <summary>
    /// Every chunk re-scores every candidate from scratch over prompt + response, as the reference implementation
    /// does. Kept for the benchmark that measures what the cache saves.
    /// </summary>
    None,
}

/// <summary>
/// One search: the raw prompt, the method and its parameters, sampling and stops. Defaults are the published
/// controlled-sentiment settings (CBS 4,4,5; top-k 50; top-p 1.0; temperature 0.7; 50 new tokens).
/// </summary>
public sealed record SearchRequest
{
    /// <summary>
    /// The most candidates one search may hold at once: W·K for chunk-level search, N for Best-of-N. All of a step's
    /// candidates go through one forward per model; the published settings use at most 16, and past a few thousand
    /// a step no longer fits any machine's memory. Larger shapes are refused up front.
    /// </summary>
    public const int MaxCandidates = 4096;

    /// <summary>The raw user prompt; each model wraps it in its own template when <see cref="Chat"/> is set.</summary>
    public required string Prompt { get; init; }

    public SearchMethodKind Method { get; init; } = SearchMethodKind.ChunkBeamSearch;

    /// <summary>CBS beam width W: states kept after each chunk.</summary>
    public int BeamWidth { get; init; } = 4;

    /// <summary>CBS successors K: candidates forked from each kept state.</summary>
    public int Successors { get; init; } = 4;

    /// <summary>CBS chunk length L in large-model tokens; null is ∞ (sample to the end, then select).</summary>
    public int? ChunkLength { get; init; } = 5;

    /// <summary>Best-of-N: samples drawn.</summary>
    public int N { get; init; } = 16;

    /// <summary>EFT: weight of the small pair's logit difference.</summary>
    public float Beta { get; init; } = 1f;

    public float Temperature { get; init; } = 0.7f;

    /// <summary>0 keeps every token.</summary>
    public int TopK { get; init; } = 50;

    public float TopP { get; init; } = 1f;

    public ulong Seed { get; init; }

    public int MaxNewTokens { get; init; } = 50;

    /// <summary>A response ends after the token that completes one of these (the string stays in the text, as the reference keeps it).</summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Large-model tokens that end a response; null uses the model's EOS ids (and its template's end-of-turn token in chat format).</summary>
    public IReadOnlyList<int>? EosTokenIds { get; init; }

    /// <summary>Wrap the prompt in each model's chat template.</summary>
    public bool Chat { get; init; }

    /// <summary>An optional system message for the chat templates.</summary>
    public string? SystemPrompt { get; init; }

    /// <summary>
    /// The turns of the conversation before <see cref="Prompt"/> (the latest user message), oldest first; each model
    /// renders them in its chat template (needs <see cref="Chat"/>). Empty: a single-turn prompt.
    /// </summary>
    public IReadOnlyList<ChatTurn> History { get; init; } = [];

    /// <summary>Drop identical candidates before each selection (off by default: the reference keeps them).</summary>
    public bool Dedupe { get; init; }

    /// <summary>Record each chunk's candidates, scores and selection in <see cref="SearchResult.Trace"/>.</summary>
    public bool Trace { get; init; }

    public ScoringCacheMode CacheMode { get; init; } = ScoringCacheMode.Incremental;

    /// <summary>The large model's sampling settings.</summary>
    public SamplingSettings Sampling => new(Temperature, TopK, TopP, Seed);

    /// <summary>(W, K, L) the chunk-level search runs with: CBS as given, Best-of-N as (1, N, ∞), sampling as (1, 1, ∞).</summary>
    public (int W, int K, int? L) Shape => Method switch
    {
        SearchMethodKind.BestOfN => (1, N, null),
        SearchMethodKind.Sample => (1, 1, null),
        _ => (BeamWidth, Successors, ChunkLength),
    };

    /// <summary>
    /// Throws <see cref="RequestValidationException"/> blaming the first field that is out of range (and
    /// <see cref="ArgumentNullException"/> for a null prompt, history or stop list).
    /// </summary>
    public SearchRequest Validate()
    {
        ArgumentNullException.ThrowIfNull(Prompt, nameof(Prompt));
        ArgumentNullException.ThrowIfNull(StopStrings, nameof(StopStrings));
        ArgumentNullException.ThrowIfNull(History, nameof(History));
        if (History.Count > 0 && !Chat) throw new RequestValidationException(SearchField.History, "earlier turns of a conversation need the chat templates (Chat)");
        for (int i = 0; i < History.Count; i++)
            if (History[i]?.Text is null || !Enum.IsDefined(History[i].Role))
                throw new RequestValidationException(SearchField.History, $"turn {i} of the conversation is null, has no text or an unknown role");
        if (!Enum.IsDefined(Method)) throw new RequestValidationException(SearchField.Method, "unknown search method");
        if (BeamWidth < 1) throw new RequestValidationException(SearchField.BeamWidth, "the beam width must be ≥ 1");
        if (Successors < 1) throw new RequestValidationException(SearchField.Successors, "the successors per state must be ≥ 1");
        if (ChunkLength is < 1) throw new RequestValidationException(SearchField.ChunkLength, "the chunk length must be ≥ 1 (or ∞)");
        if ((long)BeamWidth * Successors > MaxCandidates)
            throw new RequestValidationException(SearchField.BeamWidth, $"W·K = {BeamWidth} × {Successors} = {(long)BeamWidth * Successors} candidates exceeds the limit of {MaxCandidates} per search");
        if (N < 1) throw new RequestValidationException(SearchField.N, "Best-of-N needs N ≥ 1");
        if (N > MaxCandidates) throw new RequestValidationException(SearchField.N, $"N = {N} samples exceeds the limit of {MaxCandidates} per search");
        if (!float.IsFinite(Beta)) throw new RequestValidationException(SearchField.Beta, "beta must be a finite number");
        if (MaxNewTokens < 0) throw new RequestValidationException(SearchField.MaxNewTokens, "max new tokens must be ≥ 0");
        if (StopStrings.Any(string.IsNullOrEmpty)) throw new RequestValidationException(SearchField.StopStrings, "stop strings must not be empty");
        Sampling.Validate();
        return this;
    }
}

/// <summary>The short names of the search methods, as the CLI, the chat client and the server take them.</summary>
public static class SearchMethodNames
{
    /// <summary>cbs, bon, eft, sample.</summary>
    public static IReadOnlyList<string> All { get; } = ["cbs", "bon", "eft", "sample"];

    /// <summary>The method a name (any case; also "best-of-n" and "sampling") stands for.</summary>
    public static bool TryParse(string? name, out SearchMethodKind method)
    {
        switch (name?.Trim().ToLowerInvariant())
        {
            case "cbs": method = SearchMethodKind.ChunkBeamSearch; return true;
            case "bon" or "best-of-n": method = SearchMethodKind.BestOfN; return true;
            case "eft": method = SearchMethodKind.EmulatedFineTuning; return true;
            case "sample" or "sampling": method = SearchMethodKind.Sample; return true;
            default: method = default; return false;
        }
    }

    /// <summary>The short name of <paramref name="method"/>.</summary>
    public static string Name(SearchMethodKind method) => method switch
    {
        SearchMethodKind.ChunkBeamSearch => "cbs",
        SearchMethodKind.BestOfN => "bon",
        SearchMethodKind.EmulatedFineTuning => "eft",
        SearchMethodKind.Sample => "sample",
        _ => throw new ArgumentOutOfRangeException(nameof(method), method, "unknown search method"),
    };
}
