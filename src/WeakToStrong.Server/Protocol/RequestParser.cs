using System.Text.Json;
using WeakToStrong.Chat;
using WeakToStrong.Search;

namespace WeakToStrong.Server.Protocol;

/// <summary>One completions or chat request, checked and turned into the search each choice runs.</summary>
/// <param name="Chat">From /v1/chat/completions.</param>
/// <param name="Search">The search of choice 0 (choice i uses seed + i); stop strings stay in its text as the library keeps them.</param>
/// <param name="N">Choices to return.</param>
/// <param name="BestOf">Completions' best_of: Best-of-N scored by the small pair, the n best returned.</param>
/// <param name="Stream">Server-sent events.</param>
/// <param name="IncludeUsage">stream_options.include_usage.</param>
internal sealed record ParsedRequest(bool Chat, SearchRequest Search, int N, int? BestOf, bool Stream, bool IncludeUsage)
{
    /// <summary>Searches run for the request (n of them; one Best-of-best_of when best_of is set).</summary>
    public int Searches => BestOf is null ? N : 1;

    /// <summary>The search for choice <paramref name="index"/>: its own seed, so that choices differ.</summary>
    public SearchRequest ForChoice(int index) => index == 0 ? Search : Search with { Seed = unchecked(Search.Seed + (ulong)index) };
}

/// <summary>Limits a request is checked against before it runs.</summary>
public sealed record RequestLimits
{
    /// <summary>The model name clients send (and /v1/models lists).</summary>
    public string ModelName { get; init; } = "weak-to-strong";

    /// <summary>Method when the request names none.</summary>
    public SearchMethodKind DefaultMethod { get; init; } = SearchMethodKind.ChunkBeamSearch;

    /// <summary>Largest max_tokens.</summary>
    public int MaxTokens { get; init; } = 2048;

    /// <summary>Largest n (choices) and best_of.</summary>
    public int MaxChoices { get; init; } = 16;

    /// <summary>Largest number of large-model candidates of one search (CBS W·K, Best-of-N's N).</summary>
    public int MaxCandidates { get; init; } = 64;
}

/// <summary>
/// Reads OpenAI request bodies field by field (no reflection, so trimming and AOT keep working) and names the
/// first field that is wrong: malformed JSON, a wrong type, a value out of range, a field we do not support set
/// to something other than its default, or a field nobody defines.
/// </summary>
internal static class RequestParser
{
    /// <summary>OpenAI fields we do not implement; each is accepted only at its default (null, false, 0, empty).</summary>
    private static readonly HashSet<string> Unsupported =
    [
        "logprobs", "top_logprobs", "echo", "suffix", "presence_penalty", "frequency_penalty", "logit_bias", "tools",
        "tool_choice", "functions", "function_call", "response_format", "audio", "modalities",
        "prediction", "reasoning_effort", "web_search_options", "store",
    ];

    /// <summary>Fields that only label a request (they change nothing we compute).</summary>
    private static readonly HashSet<string> Ignored = ["user", "metadata", "service_tier", "parallel_tool_calls"];

    private static readonly HashSet<string> SearchKeys = ["method", "beam_width", "successors", "chunk_length", "n", "beta", "dedupe"];

    public static ParsedRequest Parse(ReadOnlyMemory<byte> body, bool chat, RequestLimits limits)
    {
        // The JSON reader checks the structure but leaves the bytes inside strings to GetString, which would throw
        // InvalidOperationException (a 500) on a malformed UTF-8 sequence.
        if (!System.Text.Unicode.Utf8.IsValid(body.Span)) throw ApiException.BadRequest("The request body is not valid UTF-8.", null, "invalid_json");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body);
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest($"We could not parse the JSON body of your request: {e.Message}", null, "invalid_json");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw ApiException.BadRequest("The request body must be a JSON object.", null, "invalid_json");
            JsonTextCheck.ThrowIfInvalid(root);
            try
            {
                return Parse(root, chat, limits);
            }
            catch (JsonFieldException e)
            {
                throw ApiException.BadRequest(e.Message, e.Path, e.Error switch
                {
                    JsonFieldError.Missing => "missing_required_parameter",
                    JsonFieldError.WrongType => "invalid_type",
                    JsonFieldError.Unsupported => "unsupported_parameter",
                    _ => "invalid_value",
                });
            }
        }
    }

    private static ParsedRequest Parse(JsonElement root, bool chat, RequestLimits limits)
    {
        CheckFieldNames(root, chat);
        CheckModel(root, limits);
        var conversation = chat ? Messages(root) : new ChatConversation(Prompt(root), null, []);
        var (maxTokens, maxName) = MaxTokens(root, chat, limits);
        var defaults = new SearchRequest { Prompt = "" };
        var sampling = Sampling(root, defaults);
        int n = RequestJson.Int(root, "n") ?? 1;
        if (n < 1 || n > limits.MaxChoices) throw ApiException.BadRequest($"'n' must be between 1 and {limits.MaxChoices} (got {n}).", "n", "invalid_value");
        long? seed = RequestJson.Long(root, "seed");
        var stop = Stop(root);
        var (stream, includeUsage) = Streaming(root);

        var search = Search(root, limits, defaults) with
        {
            Prompt = conversation.Prompt,
            Chat = chat,
            SystemPrompt = conversation.System,
            History = conversation.History,
            Temperature = sampling.Temperature,
            TopP = sampling.TopP,
            TopK = sampling.TopK,
            Seed = seed is { } s ? unchecked((ulong)s) : (ulong)Random.Shared.NextInt64(),
            MaxNewTokens = maxTokens ?? defaults.MaxNewTokens,
            StopStrings = stop,
        };
        int? bestOf = chat ? null : RequestJson.Int(root, "best_of");
        if (bestOf is { } b) search = BestOf(root, search, b, n, stream, limits);
        CheckCandidates(root, search, bestOf is not null, limits);
        try
        {
            search.Validate();
        }
        catch (RequestValidationException e)
        {
            throw ApiException.BadRequest(e.Reason, FieldSent(e.Field, root, chat, maxName, bestOf is not null), "invalid_value");
        }
        return new ParsedRequest(chat, search, n, bestOf, stream, includeUsage);
    }

    /// <summary>Every top-level field once, known to this endpoint, and an unsupported one only at its default.</summary>
    private static void CheckFieldNames(JsonElement root, bool chat)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var property in root.EnumerateObject())
        {
            string name = property.Name;
            if (!seen.Add(name)) throw ApiException.BadRequest($"'{name}' appears twice.", name, "invalid_json");
            if (Unsupported.Contains(name))
            {
                if (!IsDefault(property.Value)) throw ApiException.BadRequest($"'{name}' is not supported by this server (only its default is accepted).", name, "unsupported_parameter");
                continue;
            }
            if (!Known(name, chat)) throw ApiException.BadRequest($"Unrecognized request argument supplied: {name}", name, "unknown_parameter");
        }
    }

    private static void CheckModel(JsonElement root, RequestLimits limits)
    {
        string model = RequestJson.String(root, "model") ?? throw ApiException.BadRequest("you must provide a model parameter", "model", "missing_required_parameter");
        if (model != limits.ModelName) throw new ApiException(404, $"The model '{model}' does not exist; this server serves '{limits.ModelName}'.", "model", "model_not_found");
    }

    /// <summary>max_tokens (chat: max_completion_tokens, else max_tokens), checked against the server's limit, and the name it came by.</summary>
    private static (int? MaxTokens, string Name) MaxTokens(JsonElement root, bool chat, RequestLimits limits)
    {
        int? maxTokens = chat ? RequestJson.Int(root, "max_completion_tokens") ?? RequestJson.Int(root, "max_tokens") : RequestJson.Int(root, "max_tokens");
        string name = chat && root.TryGetProperty("max_completion_tokens", out _) ? "max_completion_tokens" : "max_tokens";
        if (maxTokens is < 1) throw ApiException.BadRequest($"'{name}' must be at least 1 (got {maxTokens}).", name, "invalid_value");
        if (maxTokens > limits.MaxTokens)
            throw ApiException.BadRequest($"'{name}' is {maxTokens}; this server allows at most {limits.MaxTokens}.", name, "invalid_value");
        return (maxTokens, name);
    }

    /// <summary>temperature, top_p and top_k, in OpenAI's ranges, or the library's defaults.</summary>
    private static (float Temperature, float TopP, int TopK) Sampling(JsonElement root, SearchRequest defaults)
    {
        float temperature = Float(root, "temperature") ?? defaults.Temperature;
        if (temperature is < 0 or > 2) throw ApiException.BadRequest($"'temperature' must be between 0 and 2 (got {temperature}).", "temperature", "invalid_value");
        float topP = Float(root, "top_p") ?? defaults.TopP;
        if (topP is <= 0 or > 1) throw ApiException.BadRequest($"'top_p' must be in (0, 1] (got {topP}).", "top_p", "invalid_value");
        int topK = RequestJson.Int(root, "top_k") ?? defaults.TopK;
        if (topK < 0) throw ApiException.BadRequest($"'top_k' must be ≥ 0 (got {topK}).", "top_k", "invalid_value");
        return (temperature, topP, topK);
    }

    /// <summary>stream, and stream_options.include_usage (allowed only when streaming).</summary>
    private static (bool Stream, bool IncludeUsage) Streaming(JsonElement root)
    {
        bool stream = RequestJson.Bool(root, "stream") ?? false;
        if (!root.TryGetProperty("stream_options", out var options) || options.ValueKind == JsonValueKind.Null) return (stream, false);
        if (options.ValueKind != JsonValueKind.Object) throw RequestJson.TypeError("stream_options", "an object", options);
        if (!stream) throw ApiException.BadRequest("'stream_options' is only allowed when 'stream' is true.", "stream_options", "invalid_value");
        foreach (var p in options.EnumerateObject())
            if (p.Name != "include_usage") throw ApiException.BadRequest($"Unrecognized request argument supplied: stream_options.{p.Name}", "stream_options." + p.Name, "unknown_parameter");
        return (stream, RequestJson.Bool(options, "include_usage", "stream_options.include_usage") ?? false);
    }

    /// <summary>Completions' best_of: the search becomes Best-of-best_of (whose n best are returned).</summary>
    private static SearchRequest BestOf(JsonElement root, SearchRequest search, int bestOf, int n, bool stream, RequestLimits limits)
    {
        if (bestOf < 1 || bestOf > limits.MaxChoices) throw ApiException.BadRequest($"'best_of' must be between 1 and {limits.MaxChoices} (got {bestOf}).", "best_of", "invalid_value");
        if (bestOf < n) throw ApiException.BadRequest($"'best_of' ({bestOf}) must be at least 'n' ({n}).", "best_of", "invalid_value");
        if (stream && bestOf > 1) throw ApiException.BadRequest("'best_of' cannot be streamed: the best is known only at the end.", "best_of", "invalid_value");
        if (HasMethod(root) && search.Method != SearchMethodKind.BestOfN)
            throw ApiException.BadRequest("'best_of' is Best-of-N; it cannot be combined with another search method.", "best_of", "invalid_value");
        return search with { Method = SearchMethodKind.BestOfN, N = bestOf };
    }

    /// <summary>The search's candidates against this server's limit (which is below the library's).</summary>
    private static void CheckCandidates(JsonElement root, SearchRequest search, bool bestOf, RequestLimits limits)
    {
        long candidates = Candidates(search);
        if (candidates <= limits.MaxCandidates) return;
        bool beam = search.Method == SearchMethodKind.ChunkBeamSearch;
        string what = beam ? "beam_width × successors" : bestOf ? "best_of" : "search.n";
        throw ApiException.BadRequest($"{what} is {candidates} candidates; this server allows at most {limits.MaxCandidates} per search.",
            beam ? SearchKeyPath(root, "beam_width") : bestOf ? "best_of" : "search.n", "invalid_value");
    }

    /// <summary>Large-model candidates one search keeps at once (CBS W·K, Best-of-N's N; EFT 1), in 64 bits: W·K of two ints can pass 2³¹.</summary>
    internal static long Candidates(SearchRequest search) =>
        search.Method == SearchMethodKind.EmulatedFineTuning ? 1 : (long)search.Shape.W * search.Shape.K;

    /// <summary>
    /// The request field each <see cref="SearchField"/> the library can blame is read from. A search key (method …
    /// dedupe) can come at the top level or in the search object; <see cref="FieldSent"/> names the one the client used.
    /// </summary>
    internal static readonly IReadOnlyDictionary<SearchField, string> Fields = new Dictionary<SearchField, string>
    {
        [SearchField.Prompt] = "prompt",
        [SearchField.History] = "messages",
        [SearchField.Method] = "method",
        [SearchField.BeamWidth] = "beam_width",
        [SearchField.Successors] = "successors",
        [SearchField.ChunkLength] = "chunk_length",
        [SearchField.N] = "n",
        [SearchField.Beta] = "beta",
        [SearchField.Temperature] = "temperature",
        [SearchField.TopK] = "top_k",
        [SearchField.TopP] = "top_p",
        [SearchField.MaxNewTokens] = "max_tokens",
        [SearchField.StopStrings] = "stop",
    };

    /// <summary>The API field of a library error's field when the request body is no longer at hand: only the endpoint is known.</summary>
    internal static string ApiField(SearchField field, bool chat) => field == SearchField.Prompt && chat ? "messages" : Fields[field];

    /// <summary>
    /// The field this request sent that a library error blames: chat's messages, the max-tokens name it used,
    /// best_of for a Best-of-N it asked for that way, and a search key where the client put it.
    /// </summary>
    private static string FieldSent(SearchField field, JsonElement root, bool chat, string maxName, bool bestOf) => field switch
    {
        SearchField.Prompt => ApiField(field, chat),
        SearchField.MaxNewTokens => maxName,
        SearchField.N => bestOf ? "best_of" : "search.n",
        _ when SearchKeys.Contains(Fields[field]) => SearchKeyPath(root, Fields[field]),
        _ => Fields[field],
    };

    /// <summary>Where a search key was given: <c>search.key</c> when the search object has it, else the top-level key, else <c>search.key</c>.</summary>
    private static string SearchKeyPath(JsonElement root, string key) =>
        root.TryGetProperty("search", out var s) && s.ValueKind == JsonValueKind.Object && s.TryGetProperty(key, out _) ? "search." + key
        : key != "n" && root.TryGetProperty(key, out _) ? key
        : "search." + key;

    private static bool Known(string name, bool chat) =>
        name is "model" or "max_tokens" or "temperature" or "top_p" or "top_k" or "n" or "stop" or "seed" or "stream" or "stream_options" or "search"
        || (chat ? name is "messages" or "max_completion_tokens" : name is "prompt" or "best_of")
        || (SearchKeys.Contains(name) && name != "n")
        || Ignored.Contains(name);

    private static bool IsDefault(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.False or JsonValueKind.Undefined => true,
        JsonValueKind.Number => value.TryGetDouble(out double d) && d == 0,
        JsonValueKind.Array => value.GetArrayLength() == 0,
        JsonValueKind.Object => !value.EnumerateObject().Any() || (value.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String && t.GetString() == "text" && value.EnumerateObject().Count() == 1),
        JsonValueKind.String => value.GetString() is "" or "none" or "auto" or "text",
        _ => false,
    };

    private static bool HasMethod(JsonElement root) =>
        root.TryGetProperty("method", out _) || (root.TryGetProperty("search", out var s) && s.ValueKind == JsonValueKind.Object && s.TryGetProperty("method", out _));

    /// <summary>The search extension: top-level keys first (clients' extra_body), then the <c>search</c> object.</summary>
    private static SearchRequest Search(JsonElement root, RequestLimits limits, SearchRequest defaults)
    {
        var search = defaults with { Method = limits.DefaultMethod };
        search = ApplySearch(root, search, "", topLevel: true);
        if (root.TryGetProperty("search", out var obj) && obj.ValueKind != JsonValueKind.Null)
        {
            if (obj.ValueKind != JsonValueKind.Object) throw RequestJson.TypeError("search", "an object", obj);
            foreach (var p in obj.EnumerateObject())
                if (!SearchKeys.Contains(p.Name)) throw ApiException.BadRequest($"Unrecognized search argument supplied: search.{p.Name}", "search." + p.Name, "unknown_parameter");
            search = ApplySearch(obj, search, "search.", topLevel: false);
        }
        return search;
    }

    private static SearchRequest ApplySearch(JsonElement e, SearchRequest search, string prefix, bool topLevel)
    {
        if (RequestJson.String(e, "method", prefix + "method") is { } method)
            search = search with
            {
                Method = SearchMethodNames.TryParse(method, out var kind)
                    ? kind
                    : throw ApiException.BadRequest($"'{prefix}method' must be one of {string.Join(", ", SearchMethodNames.All)} (got '{method}').", prefix + "method", "invalid_value"),
            };
        if (RequestJson.Int(e, "beam_width", prefix + "beam_width") is { } w) search = search with { BeamWidth = Positive(w, prefix + "beam_width") };
        if (RequestJson.Int(e, "successors", prefix + "successors") is { } k) search = search with { Successors = Positive(k, prefix + "successors") };
        if (e.TryGetProperty("chunk_length", out var l))
        {
            if (l.ValueKind == JsonValueKind.Null || (l.ValueKind == JsonValueKind.String && l.GetString() is "inf")) search = search with { ChunkLength = null };
            else search = search with { ChunkLength = Positive(RequestJson.Int(e, "chunk_length", prefix + "chunk_length")!.Value, prefix + "chunk_length") };
        }
        if (!topLevel && RequestJson.Int(e, "n", prefix + "n") is { } n) search = search with { N = Positive(n, prefix + "n") };
        if (Float(e, "beta", prefix + "beta") is { } beta) search = search with { Beta = beta };
        if (RequestJson.Bool(e, "dedupe", prefix + "dedupe") is { } dedupe) search = search with { Dedupe = dedupe };
        return search;
    }

    private static int Positive(int value, string name) =>
        value >= 1 ? value : throw ApiException.BadRequest($"'{name}' must be at least 1 (got {value}).", name, "invalid_value");

    private static string Prompt(JsonElement root)
    {
        if (!RequestJson.Present(root, "prompt", out var p))
            throw ApiException.BadRequest("you must provide a prompt parameter", "prompt", "missing_required_parameter");
        if (p.ValueKind == JsonValueKind.String) return p.GetString()!;
        if (p.ValueKind == JsonValueKind.Array)
        {
            if (p.GetArrayLength() == 1 && p[0].ValueKind == JsonValueKind.String) return p[0].GetString()!;
            throw ApiException.BadRequest("'prompt' must be one string: batches of prompts and token-id prompts are not supported (send one request per prompt).", "prompt", "unsupported_parameter");
        }
        throw RequestJson.TypeError("prompt", "a string", p);
    }

    /// <summary>
    /// Optional system (or developer) messages first, then the conversation: user and assistant messages ending with
    /// the user message the search answers. Each model renders the whole conversation in its chat template.
    /// </summary>
    private static ChatConversation Messages(JsonElement root) =>
        RequestJson.Present(root, "messages", out var messages)
            ? OpenAiMessages.Parse(messages)
            : throw ApiException.BadRequest("you must provide a messages parameter", "messages", "missing_required_parameter");

    private static IReadOnlyList<string> Stop(JsonElement root)
    {
        if (!RequestJson.Present(root, "stop", out var s)) return [];
        if (s.ValueKind == JsonValueKind.String) return NonEmpty([s.GetString()!]);
        if (s.ValueKind != JsonValueKind.Array) throw RequestJson.TypeError("stop", "a string or an array of strings", s);
        if (s.GetArrayLength() > 4) throw ApiException.BadRequest($"'stop' takes at most 4 sequences (got {s.GetArrayLength()}).", "stop", "invalid_value");
        var list = new List<string>();
        foreach (var item in s.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String) throw RequestJson.TypeError("stop", "a string or an array of strings", item);
            list.Add(item.GetString()!);
        }
        return NonEmpty(list);

        static IReadOnlyList<string> NonEmpty(List<string> stops) =>
            stops.Any(string.IsNullOrEmpty) ? throw ApiException.BadRequest("'stop' sequences must not be empty.", "stop", "invalid_value") : stops;
    }

    /// <summary>A number as the library's float (a finite double past float's range becomes ∞, which validation names).</summary>
    private static float? Float(JsonElement e, string key, string? path = null) => (float?)RequestJson.Double(e, key, path);
}
