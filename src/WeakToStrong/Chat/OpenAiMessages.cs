using System.Text;
using System.Text.Json;

namespace WeakToStrong.Chat;

/// <summary>
/// Reads a conversation in OpenAI's chat "messages" format, as the server's /v1/chat/completions and the CLI's
/// <c>--messages</c> files and eval prompt lines carry it: optional system (or developer) messages first, then user
/// and assistant messages ending with the user message the search answers. Content is a string or an array of
/// text parts. Each refusal names the offending field by its path (<c>messages[1].role</c>).
/// </summary>
internal static class OpenAiMessages
{
    /// <summary>The conversation in <paramref name="messages"/>, the array found at <paramref name="path"/>.</summary>
    /// <exception cref="JsonFieldException">The array is malformed, asks for tools or non-text content, or does not
    /// end with a user message.</exception>
    public static ChatConversation Parse(JsonElement messages, string path = "messages")
    {
        if (messages.ValueKind != JsonValueKind.Array) throw RequestJson.TypeError(path, "an array", messages);
        var system = new List<string>();
        var turns = new List<ChatTurn>();
        int i = 0;
        foreach (var message in messages.EnumerateArray())
        {
            string at = $"{path}[{i++}]";
            if (message.ValueKind != JsonValueKind.Object) throw RequestJson.TypeError(at, "an object", message);
            string role = RequestJson.String(message, "role", at + ".role")
                ?? throw new JsonFieldException(at + ".role", JsonFieldError.Missing, $"'{at}.role' is required.");
            if (role is "assistant" && RequestJson.Present(message, "tool_calls", out var calls) && (calls.ValueKind != JsonValueKind.Array || calls.GetArrayLength() > 0))
                throw new JsonFieldException(at + ".tool_calls", JsonFieldError.Unsupported, $"'{at}.tool_calls': tool calls are not supported (the search does not call tools).");
            switch (role)
            {
                case "system" or "developer" when turns.Count == 0:
                    system.Add(Content(message, at));
                    break;
                case "system" or "developer":
                    throw new JsonFieldException(at + ".role", JsonFieldError.InvalidValue,
                        $"'{at}': system and developer messages must come before the conversation's user and assistant messages.");
                case "user":
                    turns.Add(ChatTurn.User(Content(message, at)));
                    break;
                case "assistant":
                    turns.Add(ChatTurn.Assistant(Content(message, at)));
                    break;
                case "tool" or "function":
                    throw new JsonFieldException(at + ".role", JsonFieldError.Unsupported, $"'{at}': {role} messages are not supported (the search does not call tools).");
                default:
                    throw new JsonFieldException(at + ".role", JsonFieldError.InvalidValue, $"'{at}.role' must be system, developer, user or assistant (got '{role}').");
            }
        }
        return ChatConversation.TryCreate(system, turns) ?? throw (turns.Count == 0
            ? new JsonFieldException(path, JsonFieldError.InvalidValue, $"'{path}' must contain a user message.")
            : new JsonFieldException($"{path}[{i - 1}]", JsonFieldError.InvalidValue,
                $"the last message must be a user message ({path}[{i - 1}] is an assistant message): the search writes the next assistant reply."));
    }

    /// <summary>A message's content: a string, or the text of an array of <c>{"type": "text", "text": …}</c> parts.</summary>
    private static string Content(JsonElement message, string at)
    {
        if (!RequestJson.Present(message, "content", out var content))
            throw new JsonFieldException(at + ".content", JsonFieldError.Missing, $"'{at}.content' is required.");
        if (content.ValueKind == JsonValueKind.String) return content.GetString()!;
        if (content.ValueKind != JsonValueKind.Array) throw RequestJson.TypeError(at + ".content", "a string or an array of text parts", content);
        var text = new StringBuilder();
        int j = 0;
        foreach (var part in content.EnumerateArray())
        {
            string partAt = $"{at}.content[{j++}]";
            if (part.ValueKind != JsonValueKind.Object || RequestJson.String(part, "type", partAt + ".type") != "text")
                throw new JsonFieldException(partAt, JsonFieldError.Unsupported, $"'{partAt}': only text parts are supported.");
            text.Append(RequestJson.String(part, "text", partAt + ".text") ?? "");
        }
        return text.ToString();
    }
}
