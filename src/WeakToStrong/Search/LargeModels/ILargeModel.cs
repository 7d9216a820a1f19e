using WeakToStrong.Chat;
using WeakToStrong.Engine;
using WeakToStrong.Tokenization;

namespace WeakToStrong.Search.LargeModels;

/// <summary>What a response may do while the large model extends it: sampling, and when it ends.</summary>
/// <param name="Sampling">Temperature, top-k, top-p and seed.</param>
/// <param name="MaxNewTokens">Largest response, in large-model tokens.</param>
/// <param name="StopStrings">A response ends after the token that completes one of these.</param>
/// <param name="EosTokenIds">Tokens that end a response; null uses the model's own.</param>
/// <param name="Chat">Wrap the prompt in the model's chat template.</param>
/// <param name="SystemPrompt">Optional system message for the template.</param>
/// <param name="History">Earlier turns of the conversation, oldest first (<see cref="SearchRequest.History"/>).</param>
public sealed record GenerationSettings(
    SamplingSettings Sampling,
    int MaxNewTokens,
    IReadOnlyList<string> StopStrings,
    IReadOnlyList<int>? EosTokenIds = null,
    bool Chat = false,
    string? SystemPrompt = null,
    IReadOnlyList<ChatTurn>? History = null)
{
    public static GenerationSettings From(SearchRequest request) => new(
        request.Sampling, request.MaxNewTokens, request.StopStrings, request.EosTokenIds, request.Chat, request.SystemPrompt, request.History);
}

/// <summary>
/// The model being steered. It is only sampled: a local engine model, or a black-box completions endpoint that
/// continues a text prefix. Candidates are forked from a root holding the prompt and extended chunk by chunk.
/// </summary>
public interface ILargeModel : IDisposable
{
    /// <summary>Names the model in traces and errors.</summary>
    string Name { get; }

    /// <summary>The model's tokenizer, or null when its token ids are not visible (a remote endpoint).</summary>
    TextTokenizer? Tokenizer { get; }

    /// <summary>
    /// Whether extending candidates one token per call costs no more than a chunk per call (a local model runs one
    /// forward per token either way; a remote endpoint pays a request per call). Streaming searches then step one
    /// token at a time, so text is streamed as soon as it is final.
    /// </summary>
    bool SingleStepsAreCheap => false;

    /// <summary>A candidate holding only the prompt; fork it for the candidates that sample.</summary>
    Task<LargeCandidate> StartAsync(string prompt, GenerationSettings settings, SearchCounters counters, CancellationToken cancellationToken = default);

    /// <summary>
    /// Samples up to <paramref name="maxTokens"/> more tokens for every unfinished candidate (all of them in one
    /// batch per step where the model allows it); a candidate that ends stays as it is.
    /// </summary>
    Task ExtendAsync(IReadOnlyList<LargeCandidate> candidates, int maxTokens, SearchCounters counters, CancellationToken cancellationToken = default);
}

/// <summary>One response being sampled by an <see cref="ILargeModel"/>.</summary>
public abstract class LargeCandidate : IDisposable
{
    protected LargeCandidate(ulong key) => Key = key;

    /// <summary>Identifies the candidate to the counter-based sampling RNG: same key, seed and position, same draw.</summary>
    public ulong Key { get; }

    public FinishReason Finish { get; protected set; }

    public bool IsFinished => Finish != FinishReason.None;

    /// <summary>The response text: special tokens left out; cut after a stop string that ended it.</summary>
    public abstract string Text { get; }

    /// <summary>The response in the large model's tokens, or null when they are not visible.</summary>
    public abstract IReadOnlyList<int>? Tokens { get; }

    /// <summary>Response tokens sampled so far.</summary>
    public abstract int TokenCount { get; }

    /// <summary>
    /// Whether <see cref="Text"/> is exactly the decoded <see cref="Tokens"/>: false when a stop string ended the
    /// response inside its last token, whose tail is cut from the text.
    /// </summary>
    public abstract bool TextMatchesTokens { get; }

    /// <summary>A copy that continues independently, with its own RNG key (sharing state where the model can).</summary>
    public abstract LargeCandidate Fork(ulong key);

    public abstract void Dispose();
}

/// <summary>Work counted while a search runs.</summary>
public sealed class SearchCounters
{
    public long LargeTokensSampled { get; internal set; }

    /// <summary>Tokens a local large model fed through its forward (the prompt, then one row per distinct candidate
    /// and step); 0 for a remote one.</summary>
    public long LargeTokensFed { get; internal set; }

    /// <summary>Forward calls of a local large model, or requests to a remote one.</summary>
    public long LargeForwardCalls { get; internal set; }

    public long TunedTokens { get; internal set; }

    public long UntunedTokens { get; internal set; }

    public long SmallForwardCalls { get; internal set; }
}
