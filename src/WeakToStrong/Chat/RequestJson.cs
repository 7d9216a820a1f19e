using System.Text.Json;

namespace WeakToStrong.Chat;

/// <summary>
/// Typed reads of a JSON request's fields (no reflection, so trimming and AOT keep working). An absent or null field
/// reads as null; a value of the wrong type throws <see cref="JsonFieldException"/> naming the field by its path.
/// The server's request bodies, the OpenAI messages and the CLI's JSONL files are read here.
/// </summary>
internal static class RequestJson
{
    /// <summary>The field's value, when it is present and not null.</summary>
    public static bool Present(JsonElement obj, string key, out JsonElement value) =>
        obj.TryGetProperty(key, out value) && value.ValueKind != JsonValueKind.Null;

    public static string? String(JsonElement obj, string key, string? path = null)
    {
        if (!Present(obj, key, out var v)) return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw TypeError(path ?? key, "a string", v);
    }

    /// <summary>A 32-bit integer; a whole number past its range is an invalid value, not a wrong type.</summary>
    public static int? Int(JsonElement obj, string key, string? path = null)
    {
        if (!Present(obj, key, out var v)) return null;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i)) return i;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && d == Math.Floor(d))
            throw new JsonFieldException(path ?? key, JsonFieldError.InvalidValue, $"'{path ?? key}' is out of range (got {v.GetRawText()}).");
        throw TypeError(path ?? key, "an integer", v);
    }

    public static long? Long(JsonElement obj, string key, string? path = null)
    {
        if (!Present(obj, key, out var v)) return null;
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out long l) ? l : throw TypeError(path ?? key, "an integer", v);
    }

    public static ulong? ULong(JsonElement obj, string key, string? path = null)
    {
        if (!Present(obj, key, out var v)) return null;
        return v.ValueKind == JsonValueKind.Number && v.TryGetUInt64(out ulong u) ? u : throw TypeError(path ?? key, "a non-negative integer", v);
    }

    /// <summary>A finite number; JSON allows 1e999, which is out of range, not of the wrong type.</summary>
    public static double? Double(JsonElement obj, string key, string? path = null)
    {
        if (!Present(obj, key, out var v)) return null;
        if (v.ValueKind != JsonValueKind.Number) throw TypeError(path ?? key, "a number", v);
        return v.TryGetDouble(out double d) && double.IsFinite(d)
            ? d
            : throw new JsonFieldException(path ?? key, JsonFieldError.InvalidValue, $"'{path ?? key}' is out of range (got {v.GetRawText()}).");
    }

    public static bool? Bool(JsonElement obj, string key, string? path = null)
    {
        if (!Present(obj, key, out var v)) return null;
        return v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw TypeError(path ?? key, "a boolean", v);
    }

    /// <summary>The field at <paramref name="path"/> is <paramref name="got"/> where <paramref name="expected"/> belongs.</summary>
    public static JsonFieldException TypeError(string path, string expected, JsonElement got) =>
        new(path, JsonFieldError.WrongType, $"'{path}' must be {expected} (got {Kind(got)}).");

    /// <summary>A JSON value's type in words: "a string", "an array", …</summary>
    public static string Kind(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        _ => "null",
    };
}
