namespace WeakToStrong.Search;

/// <summary>Why a response ended (or <see cref="None"/> while it is still open).</summary>
public enum FinishReason
{
    None,

    /// <summary>The large model sampled an EOS (or end-of-turn) token.</summary>
    Eos,

    /// <summary>The response contains a stop string.</summary>
    StopString,

    /// <summary>Max new tokens, or the large model's context, is reached.</summary>
    Length,
}

/// <summary>Work done by one search.</summary>
/// <param name="LargeTokensSampled">Tokens the large model sampled, over all candidates.</param>
/// <param name="SmallTokensScored">Tokens fed through the two small models together.</param>
/// <param name="TunedTokensScored">Tokens fed through the tuned model.</param>
/// <param name="UntunedTokensScored">Tokens fed through the untuned model.</param>
/// <param name="ForwardCalls">Forward calls over all three models (a remote large model's requests count here).</param>
/// <param name="Chunks">Selection rounds (one per chunk; Best-of-N and sampling have one).</param>
/// <param name="WallMs">Wall time of the search in milliseconds.</param>
/// <param name="ScoringMs">Part of <paramref name="WallMs"/> spent scoring (small models, re-tokenisation included).</param>
public sealed record SearchStats(
    long LargeTokensSampled,
    long SmallTokensScored,
    long TunedTokensScored,
    long UntunedTokensScored,
    long ForwardCalls,
    int Chunks,
    double WallMs,
    double ScoringMs)
{
    /// <summary>Candidates that took part in a selection, summed over the chunks (EFT: its one response).</summary>
    public long CandidatesEvaluated { get; init; }

    /// <summary>
    /// Part of <see cref="WallMs"/> spent in the large model: the prompt, then every sampling step (a remote
    /// model's requests; EFT: its forwards, the draw from the mixed distribution being neither). Disjoint from
    /// <see cref="ScoringMs"/>; the rest of the wall time is forking, selection and bookkeeping.
    /// </summary>
    public double SamplingMs { get; init; }

    /// <summary>
    /// Tokens a local large model fed through its forward: the prompt, then one row per step for each group of
    /// candidates with the same tokens so far (fewer than <see cref="LargeTokensSampled"/>: a survivor's K children
    /// share their first row). 0 with a remote large model.
    /// </summary>
    public long LargeTokensFed { get; init; }
}

/// <summary>One candidate as it stood at a selection.</summary>
/// <param name="Index">Its index among the chunk's candidates.</param>
/// <param name="Parent">Index of the survivor of the previous chunk it was forked from (−1 in the first chunk).</param>
/// <param name="Text">Its response text so far.</param>
/// <param name="Tokens">Its response in large-model tokens (empty for a remote large model).</param>
/// <param name="NewTokens">Large-model tokens it sampled in this chunk.</param>
/// <param name="Score">log π_tuned − log π_untuned of the response so far.</param>
/// <param name="Finish">Why it ended, or None.</param>
/// <param name="Selected">Whether it survived the selection.</param>
/// <param name="Dropped">Whether --dedupe removed it as a duplicate before the selection.</param>
public sealed record CandidateTrace(int Index, int Parent, string Text, IReadOnlyList<int> Tokens, int NewTokens, double Score, FinishReason Finish, bool Selected, bool Dropped);

/// <summary>One chunk: every candidate with its score, and which survived.</summary>
public sealed record ChunkTrace(int Chunk, IReadOnlyList<CandidateTrace> Candidates, IReadOnlyList<int> Selected);

/// <summary>What one small model scored: the exact token ids, so that <c>w2s score --prompt-tokens … --continuation-tokens …</c> reproduces it.</summary>
/// <param name="PromptTokens">The prompt in this model's tokens and template.</param>
/// <param name="ResponseTokens">The response (with this model's EOS when finished) in this model's tokens.</param>
/// <param name="LogProb">log π(response | prompt).</param>
public sealed record ScoredTokens(IReadOnlyList<int> PromptTokens, IReadOnlyList<int> ResponseTokens, double LogProb);

/// <summary>The outcome of a search. <see cref="Score"/> is the score of <see cref="Text"/>, computed after the last selection.</summary>
/// <param name="Text">The response (special tokens left out; a stop string that ended it stays in).</param>
/// <param name="Tokens">The response in large-model tokens (empty for a remote large model).</param>
/// <param name="Score">log π_tuned(text | prompt) − log π_untuned(text | prompt), EOS included when finished.</param>
/// <param name="Finish">Why the response ended.</param>
/// <param name="Stats">Work done.</param>
/// <param name="Tuned">What the tuned model scored.</param>
/// <param name="Untuned">What the untuned model scored.</param>
/// <param name="Trace">Per chunk candidates and selections, when requested.</param>
public sealed record SearchResult(
    string Text,
    IReadOnlyList<int> Tokens,
    double Score,
    FinishReason Finish,
    SearchStats Stats,
    ScoredTokens Tuned,
    ScoredTokens Untuned,
    IReadOnlyList<ChunkTrace>? Trace);
