using System.Text;
using System.Text.Json;
using WeakToStrong.Chat;

namespace WeakToStrong.Cli.Commands;

/// <summary>
/// Reads a chat conversation in OpenAI's messages format, as <c>w2s search --messages</c> and <c>w2s eval</c> prompt
/// files take it: system (or developer) messages first, then user and assistant messages, the last one the user
/// message the search answers.
/// </summary>
internal static class MessagesJson
{
    /// <summary>Reads a messages array; errors name <paramref name="where"/> (the option or file:line) and the message.</summary>
    /// <exception cref="UsageException">The array is malformed or is not a conversation the search can answer.</exception>
    public static ChatConversation Parse(JsonElement messages, string where)
    {
        if (messages.ValueKind != JsonValueKind.Array) throw new UsageException($"{where}: \"messages\" must be an array of {{\"role\", \"content\"}} objects");
        var system = new List<string>();
        var turns = new List<ChatTurn>();
        int i = 0;
        foreach (var message in messages.EnumerateArray())
        {
            string at = $"{where}: messages[{i++}]";
            if (message.ValueKind != JsonValueKind.Object) throw new UsageException($"{at} is not an object");
            string role = message.TryGetProperty("role", out var r) && r.ValueKind == JsonValueKind.String
                ? r.GetString()!
                : throw new UsageException($"{at} has no \"role\" string");
            string content = Content(message, at);
            switch (role)
            {
                case "system" or "developer" when turns.Count == 0:
                    system.Add(content);
                    break;
                case "system" or "developer":
                    throw new UsageException($"{at}: system messages must come before the user and assistant messages");
                case "user":
                    turns.Add(ChatTurn.User(content));
                    break;
                case "assistant":
                    turns.Add(ChatTurn.Assistant(content));
                    break;
                default:
                    throw new UsageException($"{at}: role '{role}' is not supported (system, developer, user, assistant)");
            }
        }
        return ChatConversation.TryCreate(system, turns) ?? throw new UsageException(turns.Count == 0
            ? $"{where}: the messages hold no user message"
            : $"{where}: messages[{i - 1}] is an assistant message; the last message must be the user message the search answers");
    }

    /// <summary>A string, or an array of {"type": "text", "text": …} parts.</summary>
    private static string Content(JsonElement message, string at)
    {
        if (!message.TryGetProperty("content", out var content)) throw new UsageException($"{at} has no \"content\"");
        if (content.ValueKind == JsonValueKind.String) return content.GetString()!;
        if (content.ValueKind != JsonValueKind.Array) throw new UsageException($"{at}: \"content\" must be a string or an array of text parts");
        var text = new StringBuilder();
        foreach (var part in content.EnumerateArray())
        {
            if (part.ValueKind != JsonValueKind.Object || !part.TryGetProperty("type", out var type) || type.ValueKind != JsonValueKind.String || type.GetString() != "text"
                || !part.TryGetProperty("text", out var partText) || partText.ValueKind != JsonValueKind.String)
                throw new UsageException($"{at}: only text parts ({{\"type\": \"text\", \"text\": …}}) are supported");
            text.Append(partText.GetString());
        }
        return text.ToString();
    }
}
