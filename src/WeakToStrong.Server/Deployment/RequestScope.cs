using Microsoft.AspNetCore.Http;
using WeakToStrong.Server.Protocol;

namespace WeakToStrong.Server.Deployment;

/// <summary>
/// What can end a completions request early, as one token: the client going away, the whole-request deadline
/// (<see cref="ServerOptions.RequestTimeout"/>), and the end of the shutdown drain (<see cref="ShutdownDrain"/>).
/// <see cref="Stopped"/> says which of the server's own reasons fired, so that the answer names it.
/// </summary>
internal sealed class RequestScope : IDisposable
{
    private readonly HttpContext _http;
    private readonly TimeSpan? _deadline;
    private readonly CancellationToken _shutdown;
    private readonly CancellationTokenSource _linked;

    public RequestScope(HttpContext http, TimeSpan? deadline)
    {
        ArgumentNullException.ThrowIfNull(http);
        _http = http;
        _deadline = deadline;
        _shutdown = http.Features.Get<ShutdownDrain>()?.Abort ?? CancellationToken.None;
        _linked = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted, _shutdown);
        if (deadline is { } d) _linked.CancelAfter(d);
    }

    public CancellationToken Token => _linked.Token;

    /// <summary>
    /// The error to answer with when the server stopped the request (the drain ran out, or the deadline passed);
    /// null while it runs or when the client left (nobody to answer).
    /// </summary>
    public ApiException? Stopped
    {
        get
        {
            if (!_linked.IsCancellationRequested || _http.RequestAborted.IsCancellationRequested) return null;
            return _shutdown.IsCancellationRequested ? UpstreamErrors.ShuttingDown(started: true) : UpstreamErrors.DeadlineExpired(_deadline!.Value);
        }
    }

    public void Dispose() => _linked.Dispose();
}
