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
            return Parse(root, chat, limits);
        }
    }

    private static ParsedRequest Parse(JsonElement root, bool chat, RequestLimits limits)
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

        string model = String(root, "model") ?? throw ApiException.BadRequest("you must provide a model parameter", "model", "missing_required_parameter");
        if (model != limits.ModelName) throw new ApiException(404, $"The model '{model}' does not exist; this server serves '{limits.ModelName}'.", "model", "model_not_found");

        var conversation = chat ? Messages(root) : new ChatConversation(Prompt(root), null, []);

        int? maxTokens = chat ? Int(root, "max_completion_tokens") ?? Int(root, "max_tokens") : Int(root, "max_tokens");
        string maxName = chat && root.TryGetProperty("max_completion_tokens", out _) ? "max_completion_tokens" : "max_tokens";
        if (maxTokens is < 1) throw ApiException.BadRequest($"'{maxName}' must be at least 1 (got {maxTokens}).", maxName, "invalid_value");
        if (maxTokens > limits.MaxTokens)
            throw ApiException.BadRequest($"'{maxName}' is {maxTokens}; this server allows at most {limits.MaxTokens}.", maxName, "invalid_value");

        var defaults = new SearchRequest { Prompt = "" };
        float temperature = Float(root, "temperature") ?? defaults.Temperature;
        if (temperature is < 0 or > 2) throw ApiException.BadRequest($"'temperature' must be between 0 and 2 (got {temperature}).", "temperature", "invalid_value");
        float topP = Float(root, "top_p") ?? defaults.TopP;
        if (topP is <= 0 or > 1) throw ApiException.BadRequest($"'top_p' must be in (0, 1] (got {topP}).", "top_p", "invalid_value");
        int topK = Int(root, "top_k") ?? defaults.TopK;
        if (topK < 0) throw ApiException.BadRequest($"'top_k' must be ≥ 0 (got {topK}).", "top_k", "invalid_value");
        int n = Int(root, "n") ?? 1;
        if (n < 1 || n > limits.MaxChoices) throw ApiException.BadRequest($"'n' must be between 1 and {limits.MaxChoices} (got {n}).", "n", "invalid_value");
        long? seed = Long(root, "seed");
        var stop = Stop(root);
        bool stream = Bool(root, "stream") ?? false;
        bool includeUsage = false;
        if (root.TryGetProperty("stream_options", out var options) && options.ValueKind != JsonValueKind.Null)
        {
            if (options.ValueKind != JsonValueKind.Object) throw TypeError("stream_options", "an object", options);
            if (!stream) throw ApiException.BadRequest("'stream_options' is only allowed when 'stream' is true.", "stream_options", "invalid_value");
            foreach (var p in options.EnumerateObject())
                if (p.Name != "include_usage") throw ApiException.BadRequest($"Unrecognized request argument supplied: stream_options.{p.Name}", "stream_options." + p.Name, "unknown_parameter");
            includeUsage = Bool(options, "include_usage", "stream_options.include_usage") ?? false;
        }

        var search = Search(root, limits, defaults) with
        {
            Prompt = conversation.Prompt,
            Chat = chat,
            SystemPrompt = conversation.System,
            History = conversation.History,
            Temperature = temperature,
            TopP = topP,
            TopK = topK,
            Seed = seed is { } s ? unchecked((ulong)s) : (ulong)Random.Shared.NextInt64(),
            MaxNewTokens = maxTokens ?? defaults.MaxNewTokens,
            StopStrings = stop,
        };

        int? bestOf = chat ? null : Int(root, "best_of");
        if (bestOf is { } b)
        {
            if (b < 1 || b > limits.MaxChoices) throw ApiException.BadRequest($"'best_of' must be between 1 and {limits.MaxChoices} (got {b}).", "best_of", "invalid_value");
            if (b < n) throw ApiException.BadRequest($"'best_of' ({b}) must be at least 'n' ({n}).", "best_of", "invalid_value");
            if (stream && b > 1) throw ApiException.BadRequest("'best_of' cannot be streamed: the best is known only at the end.", "best_of", "invalid_value");
            if (HasMethod(root) && search.Method != SearchMethodKind.BestOfN)
                throw ApiException.BadRequest("'best_of' is Best-of-N; it cannot be combined with another search method.", "best_of", "invalid_value");
            search = search with { Method = SearchMethodKind.BestOfN, N = b };
        }
        long candidates = Candidates(search);
        if (candidates > limits.MaxCandidates)
        {
            string what = search.Method == SearchMethodKind.ChunkBeamSearch ? "beam_width × successors" : bestOf is not null ? "best_of" : "search.n";
            throw ApiException.BadRequest($"{what} is {candidates} candidates; this server allows at most {limits.MaxCandidates} per search.",
                search.Method == SearchMethodKind.ChunkBeamSearch ? SearchField(root, "beam_width") : bestOf is not null ? "best_of" : "search.n", "invalid_value");
        }
        try
        {
            search.Validate();
        }
        catch (ArgumentException e)
        {
            // The library names its C# properties; the client sent the API's fields.
            string? field = e.ParamName switch
            {
                nameof(SearchRequest.Prompt) => chat ? "messages" : "prompt",
                nameof(SearchRequest.MaxNewTokens) => maxName,
                nameof(SearchRequest.N) => bestOf is not null ? "best_of" : "search.n",
                _ => ApiField(e.ParamName) is { } f && SearchKeys.Contains(f) ? SearchField(root, f) : ApiField(e.ParamName),
            };
            throw ApiException.BadRequest(e.Message.Split(" (Parameter")[0].Split('\n')[0], field, "invalid_value");
        }
        return new ParsedRequest(chat, search, n, bestOf, stream, includeUsage);
    }

    /// <summary>Large-model candidates one search keeps at once (CBS W·K, Best-of-N's N; EFT 1), in 64 bits: W·K of two ints can pass 2³¹.</summary>
    internal static long Candidates(SearchRequest search) =>
        search.Method == SearchMethodKind.EmulatedFineTuning ? 1 : (long)search.Shape.W * search.Shape.K;

    /// <summary>
    /// The request field each <see cref="SearchRequest"/> property (and <see cref="Engine.SamplingSettings"/>, whose
    /// names are the same) is read from, for errors the library raises naming the property.
    /// </summary>
    internal static readonly IReadOnlyDictionary<string, string> Fields = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [nameof(SearchRequest.Prompt)] = "prompt",
        [nameof(SearchRequest.SystemPrompt)] = "messages",
        [nameof(SearchRequest.History)] = "messages",
        [nameof(SearchRequest.Method)] = "method",
        [nameof(SearchRequest.BeamWidth)] = "beam_width",
        [nameof(SearchRequest.Successors)] = "successors",
        [nameof(SearchRequest.ChunkLength)] = "chunk_length",
        [nameof(SearchRequest.N)] = "n",
        [nameof(SearchRequest.Beta)] = "beta",
        [nameof(SearchRequest.Dedupe)] = "dedupe",
        [nameof(SearchRequest.Temperature)] = "temperature",
        [nameof(SearchRequest.TopK)] = "top_k",
        [nameof(SearchRequest.TopP)] = "top_p",
        [nameof(SearchRequest.Seed)] = "seed",
        [nameof(SearchRequest.MaxNewTokens)] = "max_tokens",
        [nameof(SearchRequest.StopStrings)] = "stop",
    };

    /// <summary>The API field of a library parameter name; null for a name no request field sets (never the C# name).</summary>
    internal static string? ApiField(string? parameter) => parameter is not null && Fields.TryGetValue(parameter, out var field) ? field : null;

    /// <summary>Where a search key was given: <c>search.key</c> when the search object has it, else the top-level key, else <c>search.key</c>.</summary>
    private static string SearchField(JsonElement root, string key) =>
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
            if (obj.ValueKind != JsonValueKind.Object) throw TypeError("search", "an object", obj);
            foreach (var p in obj.EnumerateObject())
                if (!SearchKeys.Contains(p.Name)) throw ApiException.BadRequest($"Unrecognized search argument supplied: search.{p.Name}", "search." + p.Name, "unknown_parameter");
            search = ApplySearch(obj, search, "search.", topLevel: false);
        }
        return search;
    }

    private static SearchRequest ApplySearch(JsonElement e, SearchRequest search, string prefix, bool topLevel)
    {
        if (String(e, "method", prefix + "method") is { } method)
            search = search with
            {
                Method = method.ToLowerInvariant() switch
                {
                    "cbs" => SearchMethodKind.ChunkBeamSearch,
                    "bon" => SearchMethodKind.BestOfN,
                    "eft" => SearchMethodKind.EmulatedFineTuning,
                    "sample" => SearchMethodKind.Sample,
                    _ => throw ApiException.BadRequest($"'{prefix}method' must be one of cbs, bon, eft, sample (got '{method}').", prefix + "method", "invalid_value"),
                },
            };
        if (Int(e, "beam_width", prefix + "beam_width") is { } w) search = search with { BeamWidth = Positive(w, prefix + "beam_width") };
        if (Int(e, "successors", prefix + "successors") is { } k) search = search with { Successors = Positive(k, prefix + "successors") };
        if (e.TryGetProperty("chunk_length", out var l))
        {
            if (l.ValueKind == JsonValueKind.Null || (l.ValueKind == JsonValueKind.String && l.GetString() is "inf")) search = search with { ChunkLength = null };
            else search = search with { ChunkLength = Positive(Int(e, "chunk_length", prefix + "chunk_length")!.Value, prefix + "chunk_length") };
        }
        if (!topLevel && Int(e, "n", prefix + "n") is { } n) search = search with { N = Positive(n, prefix + "n") };
        if (Float(e, "beta", prefix + "beta") is { } beta) search = search with { Beta = beta };
        if (Bool(e, "dedupe", prefix + "dedupe") is { } dedupe) search = search with { Dedupe = dedupe };
        return search;
    }

    private static int Positive(int value, string name) =>
        value >= 1 ? value : throw ApiException.BadRequest($"'{name}' must be at least 1 (got {value}).", name, "invalid_value");

    private static string Prompt(JsonElement root)
    {
        if (!root.TryGetProperty("prompt", out var p) || p.ValueKind == JsonValueKind.Null)
            throw ApiException.BadRequest("you must provide a prompt parameter", "prompt", "missing_required_parameter");
        if (p.ValueKind == JsonValueKind.String) return p.GetString()!;
        if (p.ValueKind == JsonValueKind.Array)
        {
            if (p.GetArrayLength() == 1 && p[0].ValueKind == JsonValueKind.String) return p[0].GetString()!;
            throw ApiException.BadRequest("'prompt' must be one string: batches of prompts and token-id prompts are not supported (send one request per prompt).", "prompt", "unsupported_parameter");
        }
        throw TypeError("prompt", "a string", p);
    }

    /// <summary>
    /// Optional system (or developer) messages first, then the conversation: user and assistant messages ending with
    /// the user message the search answers. Each model renders the whole conversation in its chat template.
    /// </summary>
    private static ChatConversation Messages(JsonElement root)
    {
        if (!root.TryGetProperty("messages", out var messages) || messages.ValueKind == JsonValueKind.Null)
            throw ApiException.BadRequest("you must provide a messages parameter", "messages", "missing_required_parameter");
        if (messages.ValueKind != JsonValueKind.Array) throw TypeError("messages", "an array", messages);
        var system = new List<string>();
        var turns = new List<ChatTurn>();
        int i = 0;
        foreach (var m in messages.EnumerateArray())
        {
            string at = $"messages[{i++}]";
            if (m.ValueKind != JsonValueKind.Object) throw TypeError(at, "an object", m);
            string role = String(m, "role", at + ".role") ?? throw ApiException.BadRequest($"'{at}.role' is required.", at + ".role", "missing_required_parameter");
            if (role is "assistant" && m.TryGetProperty("tool_calls", out var calls) && calls.ValueKind != JsonValueKind.Null
                && (calls.ValueKind != JsonValueKind.Array || calls.GetArrayLength() > 0))
                throw ApiException.BadRequest($"'{at}.tool_calls': this server does not call tools.", at + ".tool_calls", "unsupported_parameter");
            switch (role)
            {
                case "system" or "developer" when turns.Count == 0:
                    system.Add(Content(m, at));
                    break;
                case "system" or "developer":
                    throw ApiException.BadRequest($"'{at}': system and developer messages must come before the conversation's user and assistant messages.", at + ".role", "invalid_value");
                case "user":
                    turns.Add(ChatTurn.User(Content(m, at)));
                    break;
                case "assistant":
                    turns.Add(ChatTurn.Assistant(Content(m, at)));
                    break;
                case "tool" or "function":
                    throw ApiException.BadRequest($"'{at}': {role} messages are not supported (this server does not call tools).", at + ".role", "unsupported_parameter");
                default:
                    throw ApiException.BadRequest($"'{at}.role' must be system, developer, user or assistant (got '{role}').", at + ".role", "invalid_value");
            }
        }
        return ChatConversation.TryCreate(system, turns) ?? throw (turns.Count == 0
            ? ApiException.BadRequest("'messages' must contain a user message.", "messages", "invalid_value")
            : ApiException.BadRequest($"the last message must be a user message (messages[{i - 1}] is an assistant message): the search writes the next assistant reply.", $"messages[{i - 1}]", "invalid_value"));
    }

    private static string Content(JsonElement message, string at)
    {
        if (!message.TryGetProperty("content", out var c) || c.ValueKind == JsonValueKind.Null)
            throw ApiException.BadRequest($"'{at}.content' is required.", at + ".content", "missing_required_parameter");
        if (c.ValueKind == JsonValueKind.String) return c.GetString()!;
        if (c.ValueKind != JsonValueKind.Array) throw TypeError(at + ".content", "a string or an array of text parts", c);
        var text = new System.Text.StringBuilder();
        int j = 0;
        foreach (var part in c.EnumerateArray())
        {
            string pat = $"{at}.content[{j++}]";
            if (part.ValueKind != JsonValueKind.Object || String(part, "type", pat + ".type") != "text")
                throw ApiException.BadRequest($"'{pat}': only text parts are supported.", pat, "unsupported_parameter");
            text.Append(String(part, "text", pat + ".text") ?? "");
        }
        return text.ToString();
    }

    private static IReadOnlyList<string> Stop(JsonElement root)
    {
        if (!root.TryGetProperty("stop", out var s) || s.ValueKind == JsonValueKind.Null) return [];
        if (s.ValueKind == JsonValueKind.String) return NonEmpty([s.GetString()!]);
        if (s.ValueKind != JsonValueKind.Array) throw TypeError("stop", "a string or an array of strings", s);
        if (s.GetArrayLength() > 4) throw ApiException.BadRequest($"'stop' takes at most 4 sequences (got {s.GetArrayLength()}).", "stop", "invalid_value");
        var list = new List<string>();
        foreach (var item in s.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.String) throw TypeError("stop", "a string or an array of strings", item);
            list.Add(item.GetString()!);
        }
        return NonEmpty(list);

        static IReadOnlyList<string> NonEmpty(List<string> stops) =>
            stops.Any(string.IsNullOrEmpty) ? throw ApiException.BadRequest("'stop' sequences must not be empty.", "stop", "invalid_value") : stops;
    }

    private static ApiException TypeError(string name, string expected, JsonElement got) =>
        ApiException.BadRequest($"'{name}' must be {expected} (got {Kind(got)}).", name, "invalid_type");

    private static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => "null",
    };

    private static bool Present(JsonElement e, string key, out JsonElement value) =>
        e.TryGetProperty(key, out value) && value.ValueKind != JsonValueKind.Null;

    private static string? String(JsonElement e, string key, string? name = null)
    {
        if (!Present(e, key, out var v)) return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw TypeError(name ?? key, "a string", v);
    }

    private static int? Int(JsonElement e, string key, string? name = null)
    {
        if (!Present(e, key, out var v)) return null;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i)) return i;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && d == Math.Floor(d))
            throw ApiException.BadRequest($"'{name ?? key}' is out of range (got {v.GetRawText()}).", name ?? key, "invalid_value");
        throw TypeError(name ?? key, "an integer", v);
    }

    private static long? Long(JsonElement e, string key)
    {
        if (!Present(e, key, out var v)) return null;
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long l) ? l : throw TypeError(key, "an integer", v);
    }

    private static float? Float(JsonElement e, string key, string? name = null)
    {
        if (!Present(e, key, out var v)) return null;
        return v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && double.IsFinite(d) ? (float)d : throw TypeError(name ?? key, "a number", v);
    }

    private static bool? Bool(JsonElement e, string key, string? name = null)
    {
        if (!Present(e, key, out var v)) return null;
        return v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw TypeError(name ?? key, "a boolean", v);
    }
}
