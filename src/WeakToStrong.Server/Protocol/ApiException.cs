namespace WeakToStrong.Server.Protocol;

/// <summary>
/// A request the server refuses, written as OpenAI's error JSON
/// (<c>{"error":{"message","type","param","code"}}</c>) with <see cref="Status"/>.
/// </summary>
public sealed class ApiException(int status, string message, string? param = null, string? code = null, string type = "invalid_request_error")
    : Exception(message)
{
    public int Status { get; } = status;

    public string? Param { get; } = param;

    public string? Code { get; } = code;

    public string Type { get; } = type;

    /// <summary>Seconds a client should wait before retrying (sent as Retry-After), when set.</summary>
    public int? RetryAfterSeconds { get; init; }

    public static ApiException BadRequest(string message, string? param = null, string? code = null) => new(400, message, param, code);

    public ErrorBody ToBody() => new(new ErrorDetail(Message, Type, Param, Code));
}

public sealed record ErrorDetail(string Message, string Type, string? Param, string? Code);

public sealed record ErrorBody(ErrorDetail Error);
