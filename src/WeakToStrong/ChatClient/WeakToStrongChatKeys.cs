namespace WeakToStrong.ChatClient;

/// <summary>
/// The <c>w2s.*</c> keys of <c>ChatOptions.AdditionalProperties</c> (search settings in) and of
/// <c>ChatResponse.AdditionalProperties</c> (score and work out), the convention OllamaSharp and ONNX Runtime GenAI
/// use for provider-specific settings.
/// </summary>
public static class WeakToStrongChatKeys
{
    /// <summary>Every key starts with this; an option key with it that is not listed here is an error.</summary>
    public const string Prefix = "w2s.";

    /// <summary>In: the method, <c>cbs</c>, <c>bon</c>, <c>eft</c> or <c>sample</c>. Out: the method that ran.</summary>
    public const string Method = "w2s.method";

    /// <summary>In: CBS beam width W (integer ≥ 1).</summary>
    public const string BeamWidth = "w2s.beam_width";

    /// <summary>In: CBS successors per state K (integer ≥ 1).</summary>
    public const string Successors = "w2s.successors";

    /// <summary>In: CBS chunk length L in large-model tokens (integer ≥ 1, or <c>"inf"</c>).</summary>
    public const string ChunkLength = "w2s.chunk_length";

    /// <summary>In: Best-of-N's N (integer ≥ 1).</summary>
    public const string N = "w2s.n";

    /// <summary>In: EFT's β (number).</summary>
    public const string Beta = "w2s.beta";

    /// <summary>In: drop identical candidates before each selection (boolean).</summary>
    public const string Dedupe = "w2s.dedupe";

    /// <summary>Out: the seed the search ran with (long; pass it as <c>ChatOptions.Seed</c> to repeat the response).</summary>
    public const string Seed = "w2s.seed";

    /// <summary>Out: log π_tuned − log π_untuned of the returned text (double).</summary>
    public const string Score = "w2s.score";

    /// <summary>Out: log π_tuned of the returned text (double).</summary>
    public const string TunedLogProb = "w2s.tuned_logprob";

    /// <summary>Out: log π_untuned of the returned text (double).</summary>
    public const string UntunedLogProb = "w2s.untuned_logprob";

    /// <summary>Out: why the response ended: <c>eos</c>, <c>stop_string</c> or <c>length</c>.</summary>
    public const string Finish = "w2s.finish";

    /// <summary>Out: large-model tokens sampled over all candidates (long).</summary>
    public const string LargeTokensSampled = "w2s.large_tokens_sampled";

    /// <summary>Out: tokens a local large model fed through its forward, prompt included; candidates with the same
    /// tokens so far share a row (long; 0 with a remote large model).</summary>
    public const string LargeTokensFed = "w2s.large_tokens_fed";

    /// <summary>Out: tokens fed through the two small models together (long).</summary>
    public const string SmallTokensScored = "w2s.small_tokens_scored";

    /// <summary>Out: forward calls over all three models (long).</summary>
    public const string ForwardCalls = "w2s.forward_calls";

    /// <summary>Out: selection rounds (int).</summary>
    public const string Chunks = "w2s.chunks";

    /// <summary>Out: wall time of the search in milliseconds (double).</summary>
    public const string WallMs = "w2s.wall_ms";

    /// <summary>Out: the part of <see cref="WallMs"/> spent scoring (double).</summary>
    public const string ScoringMs = "w2s.scoring_ms";

    /// <summary>Out: the part of <see cref="WallMs"/> spent in the large model, prompt and sampling steps (double).</summary>
    public const string SamplingMs = "w2s.sampling_ms";
}
