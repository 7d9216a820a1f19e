// Load test for `w2s serve`: streamed completions from N concurrent clients, reporting tokens/s, latency and time
// to first streamed token per (method, concurrency). By default it serves a GPT-2-124M-shaped large model and a
// 4-layer × 256 small pair with random weights in-process (real Kestrel on loopback); --url points it at any
// running server instead. Usage: see benchmarks/serve-load.sh. `soak …` runs the soak test instead (Soak.cs, benchmarks/soak.sh).
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using WeakToStrong.Backends;
using WeakToStrong.Backends.Cpu;
using WeakToStrong.Chat;
using WeakToStrong.Checkpoints;
using WeakToStrong.Engine;
using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;
using WeakToStrong.Server;
using WeakToStrong.Server.Protocol;
using WeakToStrong.Tokenization;

if (args is ["soak", .. var soakArgs]) return await Soak.RunAsync(soakArgs);

var options = LoadOptions.Parse(args);
long largeRows = 0, largeForwards = 0, forwardTicks = 0, largeTicks = 0;
WeakToStrongSearch? search = null;
W2sServer? server = null;
var owned = new List<IDisposable>();
Uri baseAddress;
string model = options.Model;
if (options.Url is { } url)
{
    baseAddress = new Uri(url.TrimEnd('/') + "/");
}
else
{
    var backend = new CpuBackend();
    owned.Add(backend);
    var gpt2 = TextTokenizer.Load(options.Tokenizer);
    ChatModel Build(ModelSpec spec, int seed, int kvBlocks, string name)
    {
        var transformer = SyntheticModel.Create(spec, DType.F32, backend, kvBlocks, seed: seed);
        var chat = new ChatModel(transformer, gpt2, ChatTemplate.None, name, transformer);
        owned.Insert(0, chat);
        return chat;
    }
    var large = Build(SyntheticModel.Gpt2Small(), 1, options.LargeKvBlocks, "gpt2-124M (random)");
    var small = SyntheticModel.Gpt2Small() with { Dim = 256, Layers = 4, Heads = 4, KvHeads = 4, HeadDim = 64, FeedForwardDim = 1024 };
    var tuned = Build(small, 2, 4 * options.LargeKvBlocks, "gpt2-16M tuned (random)");
    var untuned = Build(small, 3, 4 * options.LargeKvBlocks, "gpt2-16M untuned (random)");
    search = WeakToStrongSearch.WithEngineLoop(new LocalLargeModel(large), tuned, untuned);
    server = await W2sServer.StartAsync(search, new ServerOptions
    {
        Port = 0,
        MaxQueue = 1024,
        Limits = new RequestLimits { ModelName = model },
    });
    baseAddress = server.BaseAddress;
    search.Loop!.ForwardCompleted += f =>
    {
        // Raised on the loop thread only: plain arithmetic is safe; readers use Interlocked.Read.
        Interlocked.Add(ref forwardTicks, f.Duration.Ticks);
        if (f.Model != large.Transformer) return;
        Interlocked.Add(ref largeRows, f.Rows);
        Interlocked.Increment(ref largeForwards);
        Interlocked.Add(ref largeTicks, f.Duration.Ticks);
    };
}

using var http = new HttpClient { BaseAddress = baseAddress, Timeout = TimeSpan.FromMinutes(30) };
http.DefaultRequestHeaders.ConnectionClose = false;
var rows = new List<Row>();
Console.Error.WriteLine($"load test against {baseAddress} ({(server is null ? "external server" : "in-process server, GPT-2-124M-shaped large model + 4x256 small pair, random weights, CPU")}), {Environment.ProcessorCount} CPUs");
foreach (string mode in options.Modes)
{
    await RunOne(mode, 0, 1); // warm-up: JIT, buffers; not reported
    foreach (int concurrency in options.Concurrency)
    {
        var row = await Run(mode, concurrency);
        rows.Add(row);
        Console.Error.WriteLine(row.Format());
    }
}

Console.WriteLine("| method | concurrency | requests | tokens/s | × concurrency 1 | p50 latency s | p99 latency s | p50 TTFT s | p99 TTFT s | large rows / forward | large forward ms / row | time in forwards |");
Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
foreach (var row in rows)
{
    double baseline = rows.First(r => r.Mode == row.Mode && r.Concurrency == options.Concurrency[0]).TokensPerSecond;
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"| {row.Label} | {row.Concurrency} | {row.Requests} | {row.TokensPerSecond:F1} | {row.TokensPerSecond / baseline:F2} | {row.P50Latency:F2} | {row.P99Latency:F2} | {row.P50FirstToken:F2} | {row.P99FirstToken:F2} | {row.RowsPerForward:F1} | {row.LargeMsPerRow:F2} | {row.InForward:P0} |"));
}

if (server is not null) await server.DisposeAsync();
search?.Dispose();
foreach (var d in owned) d.Dispose();
return 0;

async Task<Row> Run(string mode, int concurrency)
{
    int requests = Math.Max(concurrency, options.MinRequests);
    long rows0 = Interlocked.Read(ref largeRows), forwards0 = Interlocked.Read(ref largeForwards), ticks0 = Interlocked.Read(ref forwardTicks), largeTicks0 = Interlocked.Read(ref largeTicks);
    int next = 0;
    var results = new List<(double Latency, double FirstToken, int Tokens)>();
    var clock = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
    {
        int i;
        while ((i = Interlocked.Increment(ref next) - 1) < requests)
        {
            var r = await RunOne(mode, i + 1, requests);
            lock (results) results.Add(r);
        }
    }));
    double wall = clock.Elapsed.TotalSeconds;
    var latency = results.Select(r => r.Latency).Order().ToList();
    var first = results.Select(r => r.FirstToken).Order().ToList();
    long forwards = Interlocked.Read(ref largeForwards) - forwards0;
    double rowsPerForward = forwards == 0 ? double.NaN : (double)(Interlocked.Read(ref largeRows) - rows0) / forwards;
    double inForward = TimeSpan.FromTicks(Interlocked.Read(ref forwardTicks) - ticks0).TotalSeconds / wall;
    double msPerRow = TimeSpan.FromTicks(Interlocked.Read(ref largeTicks) - largeTicks0).TotalMilliseconds / Math.Max(1, Interlocked.Read(ref largeRows) - rows0);
    return new Row(mode, concurrency, requests, results.Sum(r => r.Tokens) / wall, Percentile(latency, 0.5), Percentile(latency, 0.99), Percentile(first, 0.5), Percentile(first, 0.99), rowsPerForward, inForward, msPerRow);
}

async Task<(double Latency, double FirstToken, int Tokens)> RunOne(string mode, int index, int total)
{
    string prompt = $"Review {index}: I rented this movie last weekend because the cover looked interesting, and";
    var body = new StringBuilder();
    body.Append("{\"model\":").Append(JsonSerializer.Serialize(model, LoadJson.Default.String))
        .Append(",\"prompt\":").Append(JsonSerializer.Serialize(prompt, LoadJson.Default.String))
        .Append(",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"seed\":").Append(index.ToString(CultureInfo.InvariantCulture));
    body.Append(mode == "cbs"
        ? $",\"max_tokens\":{options.CbsTokens},\"search\":{{\"method\":\"cbs\",\"beam_width\":4,\"successors\":4,\"chunk_length\":5}}}}"
        : $",\"max_tokens\":{options.SampleTokens},\"search\":{{\"method\":\"sample\"}}}}");
    var clock = Stopwatch.StartNew();
    using var request = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = new StringContent(body.ToString(), Encoding.UTF8, "application/json") };
    using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
    if (!response.IsSuccessStatusCode)
        throw new InvalidOperationException($"HTTP {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
    using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
    double firstToken = double.NaN;
    int tokens = 0;
    while (await reader.ReadLineAsync() is { } line)
    {
        if (!line.StartsWith("data: ", StringComparison.Ordinal) || line == "data: [DONE]") continue;
        using var chunk = JsonDocument.Parse(line.AsMemory(6));
        var root = chunk.RootElement;
        if (root.TryGetProperty("error", out var error)) throw new InvalidOperationException(error.ToString());
        if (double.IsNaN(firstToken) && root.GetProperty("choices").EnumerateArray().Any(c => c.GetProperty("text").GetString() is { Length: > 0 }))
            firstToken = clock.Elapsed.TotalSeconds;
        if (root.TryGetProperty("usage", out var usage)) tokens = usage.GetProperty("completion_tokens").GetInt32();
    }
    return (clock.Elapsed.TotalSeconds, double.IsNaN(firstToken) ? clock.Elapsed.TotalSeconds : firstToken, tokens);
}

static double Percentile(List<double> sorted, double q) =>
    sorted.Count == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Count) - 1, 0, sorted.Count - 1)];

internal sealed record Row(string Mode, int Concurrency, int Requests, double TokensPerSecond, double P50Latency, double P99Latency, double P50FirstToken, double P99FirstToken, double RowsPerForward, double InForward, double LargeMsPerRow)
{
    public string Label => Mode == "cbs" ? "CBS (4,4,5)" : "sampling";

    public string Format() => string.Create(CultureInfo.InvariantCulture,
        $"{Label,-12} concurrency {Concurrency,3}: {Requests} requests, {TokensPerSecond:F1} tokens/s, latency p50 {P50Latency:F2} s p99 {P99Latency:F2} s, first token p50 {P50FirstToken:F2} s p99 {P99FirstToken:F2} s, {RowsPerForward:F1} large-model rows per forward, {InForward:P0} of the time in forwards, {LargeMsPerRow:F2} ms of large forward per row");
}

internal sealed record LoadOptions
{
    public string? Url { get; init; }
    public string Model { get; init; } = "weak-to-strong";
    public int[] Concurrency { get; init; } = [1, 8, 32];
    public string[] Modes { get; init; } = ["sample", "cbs"];
    public int MinRequests { get; init; } = 4;
    public int SampleTokens { get; init; } = 64;
    public int CbsTokens { get; init; } = 50;
    public int LargeKvBlocks { get; init; } = 3072;
    public string Tokenizer { get; init; } = Path.Combine("tests", "WeakToStrong.Tests", "TestData", "fixtures", "gpt2-tiny");

    public static LoadOptions Parse(string[] args)
    {
        var o = new LoadOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            static int[] Ints(string s) => s.Split(',').Select(x => int.Parse(x, CultureInfo.InvariantCulture)).ToArray();
            o = args[i] switch
            {
                "--url" => o with { Url = Value() },
                "--model" => o with { Model = Value() },
                "--concurrency" => o with { Concurrency = Ints(Value()) },
                "--modes" => o with { Modes = Value().Split(',') },
                "--min-requests" => o with { MinRequests = int.Parse(Value(), CultureInfo.InvariantCulture) },
                "--sample-tokens" => o with { SampleTokens = int.Parse(Value(), CultureInfo.InvariantCulture) },
                "--cbs-tokens" => o with { CbsTokens = int.Parse(Value(), CultureInfo.InvariantCulture) },
                "--kv-blocks" => o with { LargeKvBlocks = int.Parse(Value(), CultureInfo.InvariantCulture) },
                "--tokenizer" => o with { Tokenizer = Value() },
                _ => throw new ArgumentException($"unknown option {args[i]}"),
            };
        }
        return o;
    }
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
internal sealed partial class LoadJson : System.Text.Json.Serialization.JsonSerializerContext;
