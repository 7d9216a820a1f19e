using System.Diagnostics.Metrics;
using WeakToStrong.Engine.Scheduling;
using WeakToStrong.Search;

namespace WeakToStrong.Server;

/// <summary>
/// The server's instruments (System.Diagnostics.Metrics, exported as Prometheus text on /metrics by the
/// OpenTelemetry exporter): requests by status, tokens sampled and scored, queue depth, batch rows per forward,
/// time to first token, request latency, KV blocks in use per model.
/// </summary>
public sealed class ServerMetrics : IDisposable
{
    public const string MeterName = "WeakToStrong.Server";

    private readonly Meter _meter;
    private readonly Counter<long> _requests;
    private readonly Counter<long> _largeTokens;
    private readonly Counter<long> _smallTokens;
    private readonly Histogram<int> _batchRows;
    private readonly Histogram<double> _firstToken;
    private readonly Histogram<double> _latency;
    private readonly EngineLoop? _loop;

    public ServerMetrics(WeakToStrongSearch search, KvAdmission admission)
    {
        _meter = new Meter(MeterName);
        _requests = _meter.CreateCounter<long>("w2s_requests", description: "HTTP requests by endpoint and status code");
        _largeTokens = _meter.CreateCounter<long>("w2s_large_tokens_sampled", description: "large-model tokens sampled, all candidates");
        _smallTokens = _meter.CreateCounter<long>("w2s_small_tokens_scored", description: "tokens fed through the small pair");
        _batchRows = _meter.CreateHistogram<int>("w2s_batch_rows", description: "sequences per batched forward, by model",
            advice: new InstrumentAdvice<int> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512] });
        _firstToken = _meter.CreateHistogram<double>("w2s_time_to_first_token_seconds", "s", "time from request to the first streamed text",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] });
        _latency = _meter.CreateHistogram<double>("w2s_request_duration_seconds", "s", "request latency, by endpoint",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120] });
        _meter.CreateObservableGauge("w2s_queue_depth", () => admission.Queued, description: "requests waiting for KV memory");
        _meter.CreateObservableGauge("w2s_running_requests", () => admission.Running, description: "requests holding a KV reservation");
        _meter.CreateObservableGauge("w2s_kv_blocks_in_use", () => Enumerable.Range(0, admission.Models).Select(m =>
            new Measurement<int>(admission.Pool(m).UsedBlocks, new KeyValuePair<string, object?>("model", admission.Name(m)))),
            description: "KV blocks in use per model");
        _meter.CreateObservableGauge("w2s_kv_blocks_total", () => Enumerable.Range(0, admission.Models).Select(m =>
            new Measurement<int>(admission.Pool(m).TotalBlocks, new KeyValuePair<string, object?>("model", admission.Name(m)))),
            description: "KV blocks in each model's pool");
        var names = search.LocalModels.Select((m, i) => (m.Transformer, Role: admission.Name(i))).ToDictionary(x => x.Transformer, x => x.Role);
        _loop = search.Loop;
        if (_loop is not null)
            _loop.ForwardCompleted += OnForward;

        void OnForward(BatchedForward f) =>
            _batchRows.Record(f.Rows, new KeyValuePair<string, object?>("model", names.GetValueOrDefault(f.Model, "?")));
        _onForward = OnForward;
    }

    private readonly Action<BatchedForward> _onForward;

    /// <summary>The <c>endpoint</c> label of a request path (requests answered before reaching a route are counted under it too).</summary>
    public static string Endpoint(Microsoft.AspNetCore.Http.PathString path) =>
        path.StartsWithSegments("/v1/chat/completions") ? "chat_completions"
        : path.StartsWithSegments("/v1/completions") ? "completions"
        : path.StartsWithSegments("/v1/models") ? "models"
        : path.StartsWithSegments("/metrics") ? "metrics"
        : path.StartsWithSegments("/health") ? "health"
        : "other";

    public void Request(string endpoint, int status) =>
        _requests.Add(1, new("endpoint", endpoint), new("status", status));

    public void Tokens(SearchStats stats)
    {
        _largeTokens.Add(stats.LargeTokensSampled);
        _smallTokens.Add(stats.SmallTokensScored);
    }

    public void FirstToken(TimeSpan elapsed) => _firstToken.Record(elapsed.TotalSeconds);

    public void Latency(string endpoint, TimeSpan elapsed) => _latency.Record(elapsed.TotalSeconds, new KeyValuePair<string, object?>("endpoint", endpoint));

    public void Dispose()
    {
        if (_loop is not null) _loop.ForwardCompleted -= _onForward;
        _meter.Dispose();
    }
}
