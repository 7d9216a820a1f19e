using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using WeakToStrong.Engine.Scheduling;
using WeakToStrong.Search;
using WeakToStrong.Server.Deployment;
using WeakToStrong.Server.Protocol;

namespace WeakToStrong.Server;

/// <summary>How the server listens and what it accepts.</summary>
public sealed partial record ServerOptions
{
    /// <summary>An IP address, <c>localhost</c>, or <c>*</c> for every interface (see <see cref="W2sServer.ListenHost"/>).</summary>
    public string Host { get; init; } = "127.0.0.1";

    /// <summary>0 picks a free port (see <see cref="W2sServer.BaseAddress"/>).</summary>
    public int Port { get; init; } = 8000;

    public RequestLimits Limits { get; init; } = new();

    /// <summary>Requests allowed to wait for KV memory (the search's queue, shared with its chat clients); one more is a 429.</summary>
    public int MaxQueue { get; init; } = 64;

    /// <summary>Largest request body; a larger one is a 413.</summary>
    public long MaxBodyBytes { get; init; } = 1 << 20;

    /// <summary>Log each request (ASP.NET Core's console logger at Information).</summary>
    public bool Verbose { get; init; }
}

/// <summary>
/// <c>w2s serve</c>: an OpenAI-compatible HTTP server (Kestrel, minimal APIs, source-generated JSON) in front of one
/// <see cref="WeakToStrongSearch"/> whose models run on one engine loop. It holds no state between requests, so
/// replicas can sit behind any load balancer.
/// </summary>
public sealed class W2sServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ServerMetrics _metrics;
    private DeploymentMetrics? _deployment;

    private W2sServer(WebApplication app, WeakToStrongSearch search, ServerMetrics metrics, Uri address)
    {
        _app = app;
        Search = search;
        _metrics = metrics;
        BaseAddress = address;
    }

    /// <summary>Where the server listens, e.g. http://127.0.0.1:8000/ (the OpenAI base URL is this + v1/).</summary>
    public Uri BaseAddress { get; }

    public WeakToStrongSearch Search { get; }

    /// <summary>The search's admission control (<see cref="WeakToStrongSearch.Admission"/>), which requests reserve KV from.</summary>
    public KvAdmission Admission => Search.Admission;

    /// <summary>Starts listening. The search must have an engine loop (<see cref="SearchModelOptions.ContinuousBatching"/>) to serve requests concurrently.</summary>
    public static async Task<W2sServer> StartAsync(WeakToStrongSearch search, ServerOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(search);
        ArgumentNullException.ThrowIfNull(options);
        string host = ListenHost(options.Host)
            ?? throw new ArgumentException($"'{options.Host}' is not an IP address, localhost or * (all interfaces)", nameof(options));
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (options.Verbose) builder.Logging.AddSimpleConsole().SetMinimumLevel(LogLevel.Information);
        builder.WebHost.ConfigureKestrel(k =>
        {
            // A backstop a little above our own limit, which answers with OpenAI's error JSON; the completions
            // endpoints lift it for chunked bodies, where Kestrel counts the framing too (CompletionHandler.ReadBodyAsync).
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes + 1;
            k.AddServerHeader = false;
        });
        builder.WebHost.UseUrls($"http://{host}:{options.Port}");
        builder.Services.AddOpenTelemetry().WithMetrics(m => m.AddMeter(ServerMetrics.MeterName).AddPrometheusExporter(p => p.ScrapeResponseCacheDurationMilliseconds = 0));

        var admission = search.Admission;
        var metrics = new ServerMetrics(search, admission);
        var drain = new ShutdownDrain(options.ShutdownTimeout, metrics);
        var deployment = new DeploymentMetrics(search, drain);
        builder.Services.AddSingleton<IHostedService>(drain);
        // The host's own limit covers the drain and the cancelled requests' unwinding after it.
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.ShutdownTimeout + TimeSpan.FromSeconds(30));
        var app = builder.Build();
        drain.Use(app);
        ApiKeys.Use(app, options, metrics);
        var completions = new CompletionHandler(search, admission, metrics, options);
        var started = DateTimeOffset.UtcNow.ToUnixTimeSeconds();

        // Plain RequestDelegates: nothing for the request delegate generator to bind, so trimming and AOT keep every route.
        app.MapPost("/v1/completions", new RequestDelegate(http => completions.HandleAsync(http, chat: false)));
        app.MapPost("/v1/chat/completions", new RequestDelegate(http => completions.HandleAsync(http, chat: true)));
        app.MapGet("/v1/models", new RequestDelegate(http =>
        {
            metrics.Request("models", 200);
            return WriteJsonAsync(http, new ModelList("list", [new ModelCard(options.Limits.ModelName, "model", started, "weak-to-strong")]), ServerJsonContext.Output.ModelList);
        }));
        // OpenAI's "retrieve model"; a served name may hold slashes (org/name), hence the catch-all.
        app.MapGet("/v1/models/{**model}", new RequestDelegate(http =>
        {
            string? id = http.Request.RouteValues["model"] as string;
            if (id != options.Limits.ModelName)
            {
                metrics.Request("models", 404);
                return CompletionHandler.WriteErrorAsync(http,
                    new ApiException(404, $"The model '{id}' does not exist; this server serves '{options.Limits.ModelName}'.", "model", "model_not_found"));
            }
            metrics.Request("models", 200);
            return WriteJsonAsync(http, new ModelCard(options.Limits.ModelName, "model", started, "weak-to-strong"), ServerJsonContext.Output.ModelCard);
        }));
        app.MapGet("/health", new RequestDelegate(http =>
        {
            var kv = Enumerable.Range(0, admission.Models).Select(m =>
                new KvPoolHealth(admission.Name(m), admission.Pool(m).UsedBlocks, (int)admission.Reserved(m), admission.Pool(m).TotalBlocks)).ToList();
            return WriteJsonAsync(http, new Health("ok", admission.Running, admission.Queued, kv), ServerJsonContext.Output.Health);
        }));
        app.MapPrometheusScrapingEndpoint("/metrics");
        // Anything else: OpenAI's error JSON rather than an empty 404/405.
        app.MapFallback(new RequestDelegate(http => CompletionHandler.WriteErrorAsync(http,
            new ApiException(404, $"Unknown endpoint: {http.Request.Method} {http.Request.Path}", null, "unknown_url"))));

        try
        {
            await app.StartAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            metrics.Dispose();
            deployment.Dispose();
            await app.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new W2sServer(app, search, metrics, new Uri(address.TrimEnd('/') + "/")) { _deployment = deployment };
    }

    /// <summary>
    /// The host part of the listen URL for <paramref name="host"/>, or null when it is none of an IP address (IPv6
    /// bracketed or not), <c>localhost</c>, or <c>*</c> (every interface). Kestrel binds every interface for any
    /// other name, so a typo such as 999.1.1.1 would otherwise expose the server silently.
    /// </summary>
    public static string? ListenHost(string? host)
    {
        if (string.IsNullOrWhiteSpace(host)) return null;
        if (host is "*" || host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) return host.ToLowerInvariant();
        string bare = host.StartsWith('[') && host.EndsWith(']') ? host[1..^1] : host;
        if (!System.Net.IPAddress.TryParse(bare, out var ip)) return null;
        if (ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6) return $"[{ip}]";
        // TryParse also takes inet_aton's shorthands ("1", "1.2.3", octal and hex parts), which nobody means as an address to listen on.
        return bare == ip.ToString() ? bare : null;
    }

    private static Task WriteJsonAsync<T>(HttpContext http, T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type)
    {
        http.Response.ContentType = "application/json";
        return JsonSerializer.SerializeAsync(http.Response.Body, value, type, http.RequestAborted);
    }

    /// <summary>Runs until <paramref name="cancellationToken"/> fires (Ctrl+C in <c>w2s serve</c>).</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken) => _app.WaitForShutdownAsync(cancellationToken);

    /// <summary>Stops gracefully: new requests get 503, those in flight get <see cref="ServerOptions.ShutdownTimeout"/> to finish, then the rest are cancelled.</summary>
    public Task StopAsync(CancellationToken cancellationToken = default) => _app.StopAsync(cancellationToken);

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _metrics.Dispose();
        _deployment?.Dispose();
    }
}
