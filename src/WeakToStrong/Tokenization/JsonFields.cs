using System.Text.Json;

namespace WeakToStrong.Tokenization;

/// <summary>
/// Typed reads from tokenizer JSON files. A field of the wrong shape becomes an <see cref="InvalidDataException"/>
/// naming the field, which the loader turns into a <see cref="TokenizerException"/> naming the file.
/// </summary>
internal static class JsonFields
{
    /// <summary>Parses a JSON file, allowing the UTF-8 byte order mark that Windows editors write.</summary>
    public static JsonDocument ParseFile(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var start = bytes.AsSpan().StartsWith("\uFEFF"u8) ? 3 : 0;
        return JsonDocument.Parse(bytes.AsMemory(start));
    }

    /// <summary>The field, or null when it is absent or JSON null.</summary>
    public static JsonElement? Optional(JsonElement obj, string name) =>
        obj.ValueKind == JsonValueKind.Object && obj.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null
            ? value
            : null;

    public static JsonElement Required(JsonElement obj, string name, JsonValueKind kind) =>
        Optional(obj, name) is { } value
            ? Expect(value, name, kind)
            : throw new InvalidDataException($"field \"{name}\" is missing");

    public static JsonElement Expect(JsonElement value, string name, JsonValueKind kind) =>
        value.ValueKind == kind
            ? value
            : throw new InvalidDataException($"field \"{name}\" should be {Describe(kind)}, not {Describe(value.ValueKind)}");

    public static string? OptionalString(JsonElement obj, string name) =>
        Optional(obj, name) is { } value ? Expect(value, name, JsonValueKind.String).GetString() : null;

    public static bool? OptionalBool(JsonElement obj, string name) =>
        Optional(obj, name) switch
        {
            null => null,
            { ValueKind: JsonValueKind.True } => true,
            { ValueKind: JsonValueKind.False } => false,
            { } other => throw new InvalidDataException($"field \"{name}\" should be true or false, not {Describe(other.ValueKind)}"),
        };

    public static int ReadId(JsonElement value, string name) =>
        value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var id) && id >= 0
            ? id
            : throw new InvalidDataException($"field \"{name}\" should be a non-negative 32-bit integer, not {value.GetRawText()}");

    /// <summary>
    /// A token named in tokenizer_config.json, written either as a plain string or as an AddedToken object with a
    /// "content" field.
    /// </summary>
    public static string? OptionalTokenContent(JsonElement obj, string name) =>
        Optional(obj, name) switch
        {
            null => null,
            { ValueKind: JsonValueKind.String } text => text.GetString(),
            { ValueKind: JsonValueKind.Object } token => Required(token, "content", JsonValueKind.String).GetString(),
            { } other => throw new InvalidDataException(
                $"field \"{name}\" should be a string or an object with \"content\", not {Describe(other.ValueKind)}"),
        };

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        _ => "null",
    };
}
