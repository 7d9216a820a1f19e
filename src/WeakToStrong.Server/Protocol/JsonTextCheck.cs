using System.Text.Json;

namespace WeakToStrong.Server.Protocol;

/// <summary>
/// Refuses a body with a string or key that is not valid text: JSON allows escapes such as <c>"\ud800"</c> (a
/// lone surrogate) that System.Text.Json parses but cannot turn into a string (GetString throws
/// InvalidOperationException). Checked once over the whole document, before any field is read, so the refusal is a
/// 400 naming the field rather than a 500 from whichever read came first. The reader's depth limit bounds the
/// recursion.
/// </summary>
internal static class JsonTextCheck
{
    public static void ThrowIfInvalid(JsonElement element, string path = "")
    {
        switch (element.ValueKind)
        {
            case JsonValueKind.String:
                Read(() => element.GetString(), path);
                break;
            case JsonValueKind.Array:
                int i = 0;
                foreach (var item in element.EnumerateArray()) ThrowIfInvalid(item, $"{path}[{i++}]");
                break;
            case JsonValueKind.Object:
                foreach (var property in element.EnumerateObject())
                {
                    string name = Read(() => property.Name, path);
                    ThrowIfInvalid(property.Value, path.Length == 0 ? name : $"{path}.{name}");
                }
                break;
        }
    }

    private static string Read(Func<string?> read, string path)
    {
        try
        {
            return read() ?? "";
        }
        catch (InvalidOperationException)
        {
            throw ApiException.BadRequest(
                $"The request body holds text that is not valid Unicode (an unpaired surrogate escape such as \\ud800){(path.Length > 0 ? $" in '{path}'" : "")}.",
                path.Length > 0 ? path : null, "invalid_json");
        }
    }
}
