namespace WeakToStrong.Chat;

/// <summary>Why a field of a JSON request was refused; OpenAI's error codes tell these apart.</summary>
internal enum JsonFieldError
{
    /// <summary>A required field is absent or null.</summary>
    Missing,

    /// <summary>The field has the wrong JSON type.</summary>
    WrongType,

    /// <summary>The field has the right type but a value we refuse.</summary>
    InvalidValue,

    /// <summary>The field asks for something we do not implement (tools, images).</summary>
    Unsupported,
}

/// <summary>A field of a JSON request refused, named by its path in the document (e.g. <c>messages[1].role</c>).</summary>
/// <param name="path">Where the field is: <c>name</c>, <c>obj.name</c>, <c>list[i]</c>.</param>
/// <param name="error">Why it was refused.</param>
/// <param name="message">A sentence that quotes the path.</param>
internal sealed class JsonFieldException(string path, JsonFieldError error, string message) : Exception(message)
{
    public string Path { get; } = path;

    public JsonFieldError Error { get; } = error;
}
