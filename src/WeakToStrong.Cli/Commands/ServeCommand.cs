using System.CommandLine;
using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;
using WeakToStrong.Server;
using WeakToStrong.Server.Deployment;
using WeakToStrong.Server.Protocol;

namespace WeakToStrong.Cli.Commands;

/// <summary>
/// <c>w2s serve</c>: the OpenAI-compatible weak-to-strong server (completions, chat, SSE streaming, /metrics) with
/// continuous batching over all requests.
/// </summary>
internal static class ServeCommand
{
    public static Command Create()
    {
        var models = new ModelSelectionOptions();
        var host = new Option<string>("--host") { Description = "IP address to listen on, localhost, or * for all interfaces", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "port (0 picks a free one)", DefaultValueFactory = _ => 8000 };
        var name = new Option<string>("--served-model-name") { Description = "the model name clients send and /v1/models lists", DefaultValueFactory = _ => "weak-to-strong" };
        var method = new Option<string>("--default-method") { Description = $"search method of requests that name none: {string.Join(", ", SearchMethodNames.All)}", DefaultValueFactory = _ => SearchMethodNames.Name(SearchMethodKind.ChunkBeamSearch) };
        var maxQueue = new Option<int>("--max-queue") { Description = "requests that may wait for KV memory; more get 429", DefaultValueFactory = _ => 64 };
        var maxBody = new Option<long>("--max-body-bytes") { Description = "largest request body; larger gets 413", DefaultValueFactory = _ => 1L << 20 };
        var maxTokens = new Option<int>("--max-tokens-limit") { Description = "largest max_tokens a request may ask for", DefaultValueFactory = _ => 2048 };
        var maxChoices = new Option<int>("--max-choices") { Description = "largest n and best_of", DefaultValueFactory = _ => 16 };
        var maxCandidates = new Option<int>("--max-candidates") { Description = "largest number of candidates per search (CBS W·K, Best-of-N's N)", DefaultValueFactory = _ => 64 };
        var verbose = new Option<bool>("--verbose") { Description = "log each request" };
        var apiKey = new Option<string>("--api-key") { Description = $"bearer key(s), comma-separated, that every /v1 route needs (default: ${ApiKeyVariable}; none: open to anyone who can connect)" };
        var metricsNeedKey = new Option<bool>("--metrics-need-key") { Description = "put /metrics behind the API key too (/health stays open)" };
        var largeTimeout = new Option<double>("--large-timeout") { Description = "with --large-url: seconds allowed for one call to the endpoint, reading the reply included", DefaultValueFactory = _ => 120 };
        var largeRetries = new Option<int>("--large-retries") { Description = "with --large-url: retries of a call that failed transiently (timeout, connection error, 408, 429, 5xx)", DefaultValueFactory = _ => 5 };
        var requestTimeout = new Option<double?>("--request-timeout") { Description = "seconds a completions request may take in all, waiting included; past it: 504 (default: no limit)" };
        var shutdownTimeout = new Option<double>("--shutdown-timeout") { Description = "on SIGTERM/Ctrl-C: seconds in-flight requests may finish (new ones get 503) before they are cancelled", DefaultValueFactory = _ => 30 };
        var command = new Command("serve", "OpenAI-compatible HTTP server for weak-to-strong search (continuous batching, streaming)")
        {
            host, port, name, method, maxQueue, maxBody, maxTokens, maxChoices, maxCandidates, verbose, apiKey, metricsNeedKey,
            largeTimeout, largeRetries, requestTimeout, shutdownTimeout,
        };
        foreach (var option in models.All) command.Options.Add(option);
        command.SetAction((r, cancellationToken) => Task.FromResult(Cli.Run(() =>
        {
            var options = new ServerOptions
            {
                Host = W2sServer.ListenHost(r.GetValue(host)) is not null ? r.GetValue(host)!
                    : throw new UsageException($"--host: '{r.GetValue(host)}' is not an IP address, localhost or * (all interfaces)"),
                Port = Range(r.GetValue(port), 0, 65535, "--port"),
                MaxQueue = Range(r.GetValue(maxQueue), 0, int.MaxValue, "--max-queue"),
                MaxBodyBytes = r.GetValue(maxBody) is > 0 and var b ? b : throw new UsageException("--max-body-bytes must be positive"),
                Verbose = r.GetValue(verbose),
                ApiKeys = Keys(r.GetValue(apiKey)),
                MetricsNeedKey = r.GetValue(metricsNeedKey),
                RequestTimeout = r.GetValue(requestTimeout) is { } deadline ? Seconds(deadline, 0.01, "--request-timeout") : null,
                ShutdownTimeout = Seconds(r.GetValue(shutdownTimeout), 0, "--shutdown-timeout"),
                Limits = new RequestLimits
                {
                    ModelName = r.GetValue(name) is { Length: > 0 } n ? n : throw new UsageException("--served-model-name must not be empty"),
                    DefaultMethod = SearchOptions.ParseMethod(r.GetValue(method)!, "--default-method"),
                    MaxTokens = Range(r.GetValue(maxTokens), 1, int.MaxValue, "--max-tokens-limit"),
                    MaxChoices = Range(r.GetValue(maxChoices), 1, 1024, "--max-choices"),
                    MaxCandidates = Range(r.GetValue(maxCandidates), 1, 4096, "--max-candidates"),
                },
            };
            var callTimeout = Seconds(r.GetValue(largeTimeout), 0.01, "--large-timeout");
            int retries = Range(r.GetValue(largeRetries), 0, 100, "--large-retries");
            using var search = models.Load(r, continuousBatching: true, remoteOptions: o => o with { Timeout = callTimeout, MaxRetries = retries });
            return Serve(search, options, cancellationToken).GetAwaiter().GetResult();
        })));
        return command;
    }

    private static async Task<int> Serve(WeakToStrongSearch search, ServerOptions options, CancellationToken cancellationToken)
    {
        await using var server = await W2sServer.StartAsync(search, options, cancellationToken).ConfigureAwait(false);
        // The first line says where to connect (tests and scripts read it); the rest go to stderr.
        Console.Out.WriteLine($"listening on {server.BaseAddress}");
        Console.Out.Flush();
        string pools = string.Join(", ", Enumerable.Range(0, server.Admission.Models).Select(m =>
            $"{server.Admission.Name(m)} {server.Admission.Pool(m).TotalBlocks} KV blocks"));
        if (options.ApiKeys.Count == 0 && ApiKeys.IsReachableFromOutside(options.Host))
            Console.Error.WriteLine($"warning: listening on {options.Host} without an API key: anyone who can reach this port can use the server (set --api-key or {ApiKeyVariable})");
        Console.Error.WriteLine($"model '{options.Limits.ModelName}' ({pools}); POST /v1/completions, /v1/chat/completions; GET /v1/models, /health, /metrics");
        await server.WaitForShutdownAsync(cancellationToken).ConfigureAwait(false);
        return 0;
    }

    private const string ApiKeyVariable = "W2S_API_KEY";

    /// <summary>--api-key, else W2S_API_KEY; a flag given with no key in it is a mistake, not an open server.</summary>
    private static IReadOnlyList<string> Keys(string? option)
    {
        var keys = ApiKeys.Parse(option ?? Environment.GetEnvironmentVariable(ApiKeyVariable));
        if (keys.Count == 0 && option is not null) throw new UsageException("--api-key: no key given (comma-separated keys)");
        return keys;
    }

    /// <summary>A number of seconds from <paramref name="min"/> up to a day.</summary>
    private static TimeSpan Seconds(double value, double min, string option) =>
        value >= min && value <= 86400 ? TimeSpan.FromSeconds(value) : throw new UsageException($"{option} must be between {min} and 86400 seconds (got {value})");

    private static int Range(int value, int min, int max, string option) =>
        value >= min && value <= max ? value : throw new UsageException($"{option} must be between {min} and {max} (got {value})");
}
