namespace WeakToStrong.Server;

// What a deployment on a network needs beyond the protocol: keys, deadlines and how to stop.
public sealed partial record ServerOptions
{
    /// <summary>
    /// Bearer keys accepted on every <c>/v1/*</c> route (any one of them); empty leaves the server open to anyone
    /// who can reach it, as fits loopback.
    /// </summary>
    public IReadOnlyList<string> ApiKeys { get; init; } = [];

    /// <summary>Put <c>/metrics</c> behind <see cref="ApiKeys"/> too; by default it is open, like <c>/health</c>.</summary>
    public bool MetricsNeedKey { get; init; }

    /// <summary>
    /// The most a completions request may take from arrival to its last byte, waiting for KV included (local and
    /// remote large models alike); past it the request is cancelled, its KV freed, and it gets a 504 (an error event
    /// once a stream has started). Null: no deadline.
    /// </summary>
    public TimeSpan? RequestTimeout { get; init; }

    /// <summary>
    /// On shutdown (SIGTERM, Ctrl-C, <see cref="W2sServer.StopAsync"/>) new requests get 503 while the requests in
    /// flight may finish for this long; then they are cancelled (their KV freed) and the server stops.
    /// </summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
