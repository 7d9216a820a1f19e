using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.AI;
using WeakToStrong.Chat;
using WeakToStrong.Search;

namespace WeakToStrong.ChatClient;

/// <summary>Chat messages and <see cref="ChatOptions"/> → one <see cref="SearchRequest"/>.</summary>
internal static class ChatRequestMapping
{
    /// <summary>
    /// The request for <paramref name="messages"/>: system messages (and <see cref="ChatOptions.Instructions"/>)
    /// become the system prompt, the one user message the prompt; the options override <paramref name="defaults"/>.
    /// </summary>
    /// <exception cref="ArgumentException">A setting is out of range, of the wrong type, or an unknown w2s.* key
    /// (the exception names it).</exception>
    /// <exception cref="NotSupportedException">The messages or options ask for what the search cannot do.</exception>
    public static SearchRequest Map(IEnumerable<ChatMessage> messages, ChatOptions? options, SearchRequest defaults)
    {
        ArgumentNullException.ThrowIfNull(messages);
        var conversation = Conversation(messages, options?.Instructions);
        // Without a seed every request draws its own, as OpenAI's API and w2s serve do; the response reports it.
        var request = defaults with { Prompt = conversation.Prompt, SystemPrompt = conversation.System ?? defaults.SystemPrompt, History = conversation.History, Seed = (ulong)Random.Shared.NextInt64() };
        if (options is not null) request = Apply(request, options);
        try
        {
            return request.Validate();
        }
        catch (RequestValidationException e)
        {
            string name = Options[e.Field];
            throw new ArgumentException($"{name}: {e.Reason}", name, e);
        }
    }

    /// <summary>
    /// System messages (and the options' instructions) become the system prompt; user and assistant messages are
    /// the conversation, whose last message must be the user message the search answers.
    /// </summary>
    private static ChatConversation Conversation(IEnumerable<ChatMessage> messages, string? instructions)
    {
        var system = new List<string>();
        if (!string.IsNullOrEmpty(instructions)) system.Add(instructions);
        var turns = new List<ChatTurn>();
        foreach (var message in messages)
        {
            ArgumentNullException.ThrowIfNull(message, nameof(messages));
            foreach (var content in message.Contents)
                if (content is not TextContent)
                    throw new NotSupportedException($"messages: {content.GetType().Name} is not supported; the search takes text only");
            if (message.Role == ChatRole.System) system.Add(message.Text);
            else if (message.Role == ChatRole.User) turns.Add(ChatTurn.User(message.Text));
            else if (message.Role == ChatRole.Assistant) turns.Add(ChatTurn.Assistant(message.Text));
            else throw new NotSupportedException($"messages: a {message.Role} message; the search takes system, user and assistant messages (no tools)");
        }
        return ChatConversation.TryCreate(system, turns) ?? throw new ArgumentException(turns.Count == 0
            ? "messages: there is no user message"
            : "messages: the last message must be a user message; the search writes the next assistant reply", nameof(messages));
    }

    private static SearchRequest Apply(SearchRequest request, ChatOptions options)
    {
        if (options.Tools is { Count: > 0 }) throw new NotSupportedException("ChatOptions.Tools: the search does not call tools");
        if (options.ResponseFormat is ChatResponseFormatJson) throw new NotSupportedException("ChatOptions.ResponseFormat: the search cannot constrain its output to JSON");
        if (options.FrequencyPenalty is not null) throw new NotSupportedException("ChatOptions.FrequencyPenalty: not supported by the search's sampler");
        if (options.PresencePenalty is not null) throw new NotSupportedException("ChatOptions.PresencePenalty: not supported by the search's sampler");

        if (options.Temperature is { } temperature) request = request with { Temperature = temperature };
        if (options.TopP is { } topP) request = request with { TopP = topP };
        if (options.TopK is { } topK) request = request with { TopK = topK };
        if (options.Seed is { } seed) request = request with { Seed = unchecked((ulong)seed) };
        if (options.MaxOutputTokens is { } maxTokens) request = request with { MaxNewTokens = maxTokens };
        if (options.StopSequences is { } stops) request = request with { StopStrings = [.. stops] };
        if (options.AdditionalProperties is null) return request;

        foreach (var (key, value) in options.AdditionalProperties)
        {
            if (!key.StartsWith(WeakToStrongChatKeys.Prefix, StringComparison.Ordinal)) continue; // another layer's
            request = key switch
            {
                WeakToStrongChatKeys.Method => request with { Method = Method(key, value) },
                WeakToStrongChatKeys.BeamWidth => request with { BeamWidth = Integer(key, value) },
                WeakToStrongChatKeys.Successors => request with { Successors = Integer(key, value) },
                WeakToStrongChatKeys.ChunkLength => request with { ChunkLength = ChunkLength(key, value) },
                WeakToStrongChatKeys.N => request with { N = Integer(key, value) },
                WeakToStrongChatKeys.Beta => request with { Beta = Number(key, value) },
                WeakToStrongChatKeys.Dedupe => request with { Dedupe = Boolean(key, value) },
                _ => throw new ArgumentException(
                    $"{key}: unknown option; the w2s options are {WeakToStrongChatKeys.Method}, {WeakToStrongChatKeys.BeamWidth}, {WeakToStrongChatKeys.Successors}, " +
                    $"{WeakToStrongChatKeys.ChunkLength}, {WeakToStrongChatKeys.N}, {WeakToStrongChatKeys.Beta}, {WeakToStrongChatKeys.Dedupe}", key),
            };
        }
        return request;
    }

    private static SearchMethodKind Method(string key, object? value) =>
        Text(value) is { } name && SearchMethodNames.TryParse(name, out var method)
            ? method
            : throw Wrong(key, value, $"one of {string.Join(", ", SearchMethodNames.All)}");

    /// <summary>An integer ≥ 1, or ∞ written "inf" (or null).</summary>
    private static int? ChunkLength(string key, object? value)
    {
        if (value is null || (value is JsonElement { ValueKind: JsonValueKind.Null })) return null;
        if (Text(value)?.Trim() is "inf" or "∞") return null;
        return Integer(key, value, "an integer or \"inf\"");
    }

    private static int Integer(string key, object? value, string expected = "an integer")
    {
        if (Real(value) is { } d)
            return double.IsInteger(d) && d is >= int.MinValue and <= int.MaxValue ? (int)d : throw Wrong(key, value, expected);
        if (Text(value) is { } s && int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int i)) return i;
        throw Wrong(key, value, expected);
    }

    private static float Number(string key, object? value)
    {
        if (Real(value) is { } d) return (float)d;
        if (Text(value) is { } s && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double parsed)) return (float)parsed;
        throw Wrong(key, value, "a number");
    }

    private static bool Boolean(string key, object? value) => value switch
    {
        bool b => b,
        JsonElement { ValueKind: JsonValueKind.True } => true,
        JsonElement { ValueKind: JsonValueKind.False } => false,
        _ when Text(value) is { } s && bool.TryParse(s.Trim(), out bool b) => b,
        _ => throw Wrong(key, value, "true or false"),
    };

    /// <summary>A number given as any .NET numeric type or a JSON number; null for anything else.</summary>
    private static double? Real(object? value) => value switch
    {
        sbyte or byte or short or ushort or int or uint or long or ulong or float or double or decimal => Convert.ToDouble(value, CultureInfo.InvariantCulture),
        JsonElement { ValueKind: JsonValueKind.Number } e => e.GetDouble(),
        _ => null,
    };

    /// <summary>A string given as such or as a JSON string; null for anything else.</summary>
    private static string? Text(object? value) => value switch
    {
        string s => s,
        JsonElement { ValueKind: JsonValueKind.String } e => e.GetString(),
        _ => null,
    };

    private static ArgumentException Wrong(string key, object? value, string expected)
    {
        string got = value switch
        {
            null => "null",
            JsonElement e => $"JSON {e.ValueKind.ToString().ToLowerInvariant()} {e.GetRawText()}",
            string s => $"\"{s}\"",
            _ => $"{Convert.ToString(value, CultureInfo.InvariantCulture)} ({value.GetType().Name})",
        };
        return new ArgumentException($"{key}: expected {expected}, got {got}", key);
    }

    /// <summary>The chat option, w2s key or argument each <see cref="SearchField"/> the library can blame comes from.</summary>
    internal static readonly IReadOnlyDictionary<SearchField, string> Options = new Dictionary<SearchField, string>
    {
        [SearchField.Prompt] = "messages",
        [SearchField.History] = "messages",
        [SearchField.Method] = WeakToStrongChatKeys.Method,
        [SearchField.BeamWidth] = WeakToStrongChatKeys.BeamWidth,
        [SearchField.Successors] = WeakToStrongChatKeys.Successors,
        [SearchField.ChunkLength] = WeakToStrongChatKeys.ChunkLength,
        [SearchField.N] = WeakToStrongChatKeys.N,
        [SearchField.Beta] = WeakToStrongChatKeys.Beta,
        [SearchField.MaxNewTokens] = "ChatOptions.MaxOutputTokens",
        [SearchField.StopStrings] = "ChatOptions.StopSequences",
        [SearchField.Temperature] = "ChatOptions.Temperature",
        [SearchField.TopK] = "ChatOptions.TopK",
        [SearchField.TopP] = "ChatOptions.TopP",
    };
}
