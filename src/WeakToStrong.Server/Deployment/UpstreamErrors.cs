using WeakToStrong.Search.LargeModels;
using WeakToStrong.Server.Protocol;

namespace WeakToStrong.Server.Deployment;

/// <summary>Errors that are neither the client's fault nor a bug: a failed upstream, the deadline, the drain.</summary>
internal static class UpstreamErrors
{
    /// <summary>A remote large model that failed for good: 504 when it timed out, else 502, naming the upstream.</summary>
    public static ApiException ToApi(LargeModelUnavailableException e) => e.Kind switch
    {
        LargeModelFailure.Timeout => new ApiException(504, $"The large model did not answer in time: {e.Message}", null, "upstream_timeout", "server_error"),
        LargeModelFailure.CircuitOpen => new ApiException(502, $"The large model is failing: {e.Message}", null, "upstream_unavailable", "server_error"),
        _ => new ApiException(502, $"The large model failed: {e.Message}", null, "upstream_error", "server_error"),
    };

    public static ApiException DeadlineExpired(TimeSpan deadline) =>
        new(504, $"The request did not finish within this server's limit of {deadline.TotalSeconds:0.###} s (--request-timeout); it was cancelled.", null, "request_timeout", "server_error");

    public static ApiException ShuttingDown(bool started) => new(503, started
        ? "The server is shutting down and cancelled this request when its drain time ran out."
        : "The server is shutting down and takes no new requests; retry on another replica.", null, "server_shutting_down", "server_error");
}
