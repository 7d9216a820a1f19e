using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;
using WeakToStrong.Engine.Scheduling;
using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;

namespace WeakToStrong.ChatClient;

/// <summary>What a <see cref="WeakToStrongChatClient"/> starts every request from.</summary>
public sealed class WeakToStrongChatClientOptions
{
    /// <summary>
    /// The search settings a request starts from before <see cref="ChatOptions"/> override them (its prompt is
    /// replaced by the user message, and its seed by <see cref="ChatOptions.Seed"/> or, without one, a random seed
    /// that the response reports as <see cref="WeakToStrongChatKeys.Seed"/>). Chat templates are on: each model wraps
    /// the messages in its own template.
    /// </summary>
    public SearchRequest Defaults { get; set; } = new() { Prompt = "", Chat = true };

    /// <summary>Dispose the search (and its models) with the client.</summary>
    public bool DisposeSearch { get; set; }

    /// <summary>
    /// Reserve each request's KV with the search's <see cref="WeakToStrongSearch.Admission"/> before it runs (on by
    /// default): a request that could never fit the KV pools is refused with <see cref="KvNeverFitsException"/>
    /// before any work, and one that fits but not now waits, first come first served, behind the requests of every
    /// front end of the search (other chat clients, a server), so concurrent requests on an engine loop never run
    /// out of KV half-way. Off, a request runs at once and the search checks it alone against the pools
    /// (<see cref="ArgumentOutOfRangeException"/> naming the binding parameter).
    /// </summary>
    public bool AdmissionControl { get; set; } = true;

    /// <summary>
    /// With <see cref="AdmissionControl"/>, the waiting requests beyond which a request is refused with
    /// <see cref="KvQueueFullException"/> (which says when to retry) instead of waiting; unbounded by default, so a
    /// request waits as long as it must (a <see cref="CancellationToken"/> ends the wait).
    /// </summary>
    public int MaxQueue { get; set; } = int.MaxValue;
}

/// <summary>
/// An <see cref="IChatClient"/> over a <see cref="WeakToStrongSearch"/>: one user message (with optional system
/// messages) in, the search's chosen response out. <see cref="ChatOptions"/> sampling settings and the
/// <see cref="WeakToStrongChatKeys"/> search settings map onto the request; the response carries the score and
/// the search's work in <see cref="ChatResponse.AdditionalProperties"/> and the <see cref="SearchResult"/> as its
/// <see cref="ChatResponse.RawRepresentation"/>. Streaming yields text as the search makes it final (for CBS, the
/// common prefix of every live candidate), so plain and streaming calls with one seed give the same text.
/// Each request first reserves its KV (<see cref="WeakToStrongChatClientOptions.AdmissionControl"/>): it may wait,
/// and is refused with a <see cref="KvAdmissionException"/> (an <see cref="InvalidOperationException"/>) when it could
/// never fit or the bounded queue is full; a streaming call is refused when its enumeration starts.
/// </summary>
public sealed class WeakToStrongChatClient : IChatClient
{
    private readonly WeakToStrongSearch _search;
    private readonly WeakToStrongChatClientOptions _options;
    private readonly ChatClientMetadata _metadata;

    public WeakToStrongChatClient(WeakToStrongSearch search, WeakToStrongChatClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(search);
        _search = search;
        _options = options ?? new WeakToStrongChatClientOptions();
        ArgumentNullException.ThrowIfNull(_options.Defaults, nameof(options));
        ArgumentOutOfRangeException.ThrowIfNegative(_options.MaxQueue, nameof(options));
        _metadata = new ChatClientMetadata("w2s", providerUri: null, defaultModelId: search.Context.Large.Name);
    }

    public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        var request = ChatRequestMapping.Map(messages, options, _options.Defaults);
        SearchResult result;
        using (await AdmitAsync(request, cancellationToken).ConfigureAwait(false))
            result = await _search.RunAsync(request, cancellationToken).ConfigureAwait(false);
        return new ChatResponse(new ChatMessage(ChatRole.Assistant, result.Text) { MessageId = NewId() })
        {
            ResponseId = NewId(),
            ModelId = _metadata.DefaultModelId,
            CreatedAt = DateTimeOffset.UtcNow,
            FinishReason = Finish(result.Finish),
            Usage = Usage(request, result),
            RawRepresentation = result,
            AdditionalProperties = Properties(request, result),
        };
    }

    public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
        Stream(ChatRequestMapping.Map(messages, options, _options.Defaults), cancellationToken);

    private async IAsyncEnumerable<ChatResponseUpdate> Stream(SearchRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string responseId = NewId(), messageId = NewId();
        var created = DateTimeOffset.UtcNow;
        using var lease = await AdmitAsync(request, cancellationToken).ConfigureAwait(false);
        await foreach (var update in _search.StreamAsync(request, cancellationToken).ConfigureAwait(false))
        {
            var contents = new List<AIContent>(2);
            if (update.TextDelta.Length > 0) contents.Add(new TextContent(update.TextDelta));
            var chunk = new ChatResponseUpdate(ChatRole.Assistant, contents)
            {
                ResponseId = responseId,
                MessageId = messageId,
                ModelId = _metadata.DefaultModelId,
                CreatedAt = created,
            };
            if (update.Result is { } result)
            {
                contents.Add(new UsageContent(Usage(request, result)));
                chunk.FinishReason = Finish(result.Finish);
                chunk.AdditionalProperties = Properties(request, result);
                chunk.RawRepresentation = result;
            }
            yield return chunk;
        }
    }

    /// <summary>Reserves the request's KV (see <see cref="WeakToStrongChatClientOptions.AdmissionControl"/>); null when admission control is off.</summary>
    private async Task<IDisposable?> AdmitAsync(SearchRequest request, CancellationToken cancellationToken)
    {
        if (!_options.AdmissionControl) return null;
        var plan = SearchCapacity.Plan(_search, request);
        return await _search.Admission.AcquireAsync(plan.Blocks, _options.MaxQueue, cancellationToken).ConfigureAwait(false);
    }

    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return _metadata;
        if (serviceType.IsInstanceOfType(this)) return this;
        if (serviceType.IsInstanceOfType(_search)) return _search;
        return null;
    }

    public void Dispose()
    {
        if (_options.DisposeSearch) _search.Dispose();
    }

    private static string NewId() => Guid.NewGuid().ToString("N");

    private static ChatFinishReason? Finish(FinishReason finish) => finish switch
    {
        FinishReason.Eos or FinishReason.StopString => ChatFinishReason.Stop,
        FinishReason.Length => ChatFinishReason.Length,
        _ => null,
    };

    /// <summary>Prompt and response in the large model's tokens; unknown for a remote large model, which shows none.</summary>
    private UsageDetails Usage(SearchRequest request, SearchResult result)
    {
        if (_search.Context.Large is not LocalLargeModel local) return new UsageDetails();
        long input = local.Model.EncodePrompt(request.Prompt, request.Chat, request.SystemPrompt, request.History).Tokens.Count;
        long output = result.Tokens.Count;
        return new UsageDetails { InputTokenCount = input, OutputTokenCount = output, TotalTokenCount = input + output };
    }

    private static AdditionalPropertiesDictionary Properties(SearchRequest request, SearchResult result) => new()
    {
        [WeakToStrongChatKeys.Score] = result.Score,
        [WeakToStrongChatKeys.TunedLogProb] = result.Tuned.LogProb,
        [WeakToStrongChatKeys.UntunedLogProb] = result.Untuned.LogProb,
        [WeakToStrongChatKeys.Method] = SearchMethodNames.Name(request.Method),
        [WeakToStrongChatKeys.Seed] = unchecked((long)request.Seed),
        [WeakToStrongChatKeys.Finish] = result.Finish switch
        {
            FinishReason.Eos => "eos",
            FinishReason.StopString => "stop_string",
            _ => "length",
        },
        [WeakToStrongChatKeys.LargeTokensSampled] = result.Stats.LargeTokensSampled,
        [WeakToStrongChatKeys.LargeTokensFed] = result.Stats.LargeTokensFed,
        [WeakToStrongChatKeys.SmallTokensScored] = result.Stats.SmallTokensScored,
        [WeakToStrongChatKeys.ForwardCalls] = result.Stats.ForwardCalls,
        [WeakToStrongChatKeys.Chunks] = result.Stats.Chunks,
        [WeakToStrongChatKeys.WallMs] = result.Stats.WallMs,
        [WeakToStrongChatKeys.ScoringMs] = result.Stats.ScoringMs,
        [WeakToStrongChatKeys.SamplingMs] = result.Stats.SamplingMs,
    };
}

/// <summary>Makes a chat client of a search.</summary>
public static class WeakToStrongChatClientExtensions
{
    /// <summary>An <see cref="IChatClient"/> over <paramref name="search"/> (see <see cref="WeakToStrongChatClient"/>).</summary>
    public static IChatClient AsChatClient(this WeakToStrongSearch search, WeakToStrongChatClientOptions? options = null) =>
        new WeakToStrongChatClient(search, options);
}
