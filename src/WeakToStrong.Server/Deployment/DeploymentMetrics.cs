using System.Diagnostics.Metrics;
using WeakToStrong.Engine.Scheduling;
using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;

namespace WeakToStrong.Server.Deployment;

/// <summary>
/// The instruments a deployment watches beside <see cref="ServerMetrics"/>'s, on the same meter name (so on the same
/// /metrics page): KV blocks free per model, time spent in forwards per model, requests in flight, and the remote
/// large model's attempts and retries.
/// </summary>
internal sealed class DeploymentMetrics : IDisposable
{
    private readonly Meter _meter = new(ServerMetrics.MeterName);
    private readonly EngineLoop? _loop;
    private readonly Action<BatchedForward> _onForward;

    public DeploymentMetrics(WeakToStrongSearch search, ShutdownDrain drain)
    {
        ArgumentNullException.ThrowIfNull(search);
        ArgumentNullException.ThrowIfNull(drain);
        var roles = Enumerable.Range(0, search.Admission.Models).Select(search.Admission.Name).ToArray();
        var pools = search.LocalModels.Select((m, i) => (Role: roles[i], m.Transformer.Cache)).ToList();
        _meter.CreateObservableGauge("w2s_kv_blocks_free", () => pools.Select(p =>
            new Measurement<int>(p.Cache.FreeBlocks, new KeyValuePair<string, object?>("model", p.Role))),
            description: "KV blocks free per model");
        _meter.CreateObservableGauge("w2s_requests_in_flight", () => drain.InFlight, description: "HTTP requests being served");
        _meter.CreateObservableGauge("w2s_draining", () => drain.Draining ? 1 : 0, description: "1 while shutting down: new requests get 503");
        if (search.Context.Large is OpenAiCompletionsModel remote)
        {
            _meter.CreateObservableCounter("w2s_upstream_attempts", () => remote.Attempts, description: "HTTP calls to the remote large model, retries included");
            _meter.CreateObservableCounter("w2s_upstream_retries", () => remote.Retries, description: "calls to the remote large model that retried a failed one");
        }
        var forwardSeconds = _meter.CreateHistogram<double>("w2s_forward_duration_seconds", "s", "time of each batched forward, by model",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] });
        var names = search.LocalModels.Select((m, i) => (m.Transformer, Role: roles[i])).ToDictionary(x => x.Transformer, x => x.Role);
        _onForward = f => forwardSeconds.Record(f.Duration.TotalSeconds, new KeyValuePair<string, object?>("model", names.GetValueOrDefault(f.Model, "?")));
        _loop = search.Loop;
        if (_loop is not null) _loop.ForwardCompleted += _onForward;
    }

    public void Dispose()
    {
        if (_loop is not null) _loop.ForwardCompleted -= _onForward;
        _meter.Dispose();
    }
}
