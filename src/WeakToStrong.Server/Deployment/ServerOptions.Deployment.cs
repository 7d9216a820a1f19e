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
}
