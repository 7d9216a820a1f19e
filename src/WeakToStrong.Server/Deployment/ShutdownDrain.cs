using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Hosting;

namespace WeakToStrong.Server.Deployment;

/// <summary>
/// Graceful shutdown. When the host stops (SIGTERM, Ctrl-C, <see cref="W2sServer.StopAsync"/>) and before Kestrel
/// closes its listeners, new requests are answered 503 (<c>server_shutting_down</c>, Connection: close: a load
/// balancer moves on to another replica) while the requests in flight may finish for up to
/// <see cref="ServerOptions.ShutdownTimeout"/>; then the rest are cancelled through <see cref="Abort"/> (their
/// searches stop at the next step and free their KV) and answered 503, and only then does Kestrel stop.
/// <c>/metrics</c> stays readable throughout.
/// </summary>
internal sealed class ShutdownDrain(TimeSpan timeout, ServerMetrics metrics) : IHostedLifecycleService
{
    private readonly CancellationTokenSource _abort = new();
    private readonly TaskCompletionSource _idle = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _inFlight;
    private volatile bool _draining;

    /// <summary>Fires when the drain time has run out: every request still running is cancelled.</summary>
    public CancellationToken Abort => _abort.Token;

    public bool Draining => _draining;

    /// <summary>Requests being served (those refused during the drain are not counted).</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    public void Use(WebApplication app)
    {
        app.Use(next => async http =>
        {
            // Counted before the check, so that a request the drain did not see yet cannot slip past its wait.
            Interlocked.Increment(ref _inFlight);
            try
            {
                if (_draining && !http.Request.Path.StartsWithSegments("/metrics"))
                {
                    metrics.Request(ServerMetrics.Endpoint(http.Request.Path), 503);
                    http.Response.Headers.Connection = "close";
                    await CompletionHandler.WriteErrorAsync(http, UpstreamErrors.ShuttingDown(started: false)).ConfigureAwait(false);
                    return;
                }
                http.Features.Set(this);
                await next(http).ConfigureAwait(false);
            }
            finally
            {
                if (Interlocked.Decrement(ref _inFlight) == 0 && _draining) _idle.TrySetResult();
            }
        });
    }

    /// <summary>Runs before Kestrel stops: waits for the requests in flight, then cancels what is left and waits for it to unwind.</summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        _draining = true;
        if (InFlight == 0) return;
        var finished = await Task.WhenAny(_idle.Task, Task.Delay(timeout, cancellationToken)).ConfigureAwait(false);
        if (finished == _idle.Task) return;
        await _abort.CancelAsync().ConfigureAwait(false);
        // Cancelled searches end at their next step; the host's own shutdown timeout bounds this wait.
        await _idle.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
