// Soak test of a running `w2s serve` (issue 20): N concurrent clients send a seeded mix of requests for a while,
// then the run is checked: no 5xx, every 4xx the one its malformed body calls for, the server's resident memory
// flat after warm-up, every KV block free at the end, and /metrics' request counts equal to the clients' own.
// Usage: see benchmarks/soak.sh.
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;

internal static class Soak
{
    /// <summary>A malformed body (for the served model's name) and the status it must get: OpenAI's error JSON, never a 5xx.</summary>
    private static readonly (string Path, Func<string, byte[]> Body, int Status)[] Malformed =
    [
        ("v1/completions", _ => "{\"model\":"u8.ToArray(), 400),
        ("v1/completions", m => Encoding.UTF8.GetBytes($"{{\"model\":\"{m}\",\"prompt\":5}}"), 400),
        ("v1/completions", m => Encoding.UTF8.GetBytes($"{{\"model\":\"{m}\",\"prompt\":\"x\",\"max_tokens\":100000000000}}"), 400),
        ("v1/completions", m => Encoding.UTF8.GetBytes($"{{\"model\":\"{m}\",\"prompt\":\"x\",\"search\":{{\"method\":\"beam\"}}}}"), 400),
        ("v1/completions", _ => "{\"model\":\"another-model\",\"prompt\":\"x\"}"u8.ToArray(), 404),
        ("v1/chat/completions", m => Encoding.UTF8.GetBytes($"{{\"model\":\"{m}\",\"messages\":\"hi\"}}"), 400),
        ("v1/chat/completions", m => [.. Encoding.UTF8.GetBytes($"{{\"model\":\"{m}\",\"messages\":[{{\"role\":\"user\",\"content\":\""), 0xC3, 0x28, .. "\"}]}"u8], 400),
    ];

    public static async Task<int> RunAsync(string[] args)
    {
        var o = SoakOptions.Parse(args);
        using var http = new HttpClient { BaseAddress = new Uri(o.Url.TrimEnd('/') + "/"), Timeout = TimeSpan.FromMinutes(5) };
        var counts = new Dictionary<string, long>(); // "endpoint status" → responses; "endpoint disconnected" → clients that left mid-stream
        var latencies = new List<double>();
        var rss = new List<(double Minute, long Bytes)>();
        var failures = new List<string>();
        var clock = Stopwatch.StartNew();
        var end = TimeSpan.FromMinutes(o.Minutes);
        using var stop = new CancellationTokenSource();

        var sampler = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                if (ResidentBytes(o.Pid) is { } bytes) lock (rss) rss.Add((clock.Elapsed.TotalMinutes, bytes));
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(2), stop.Token);
                }
                catch (OperationCanceledException)
                {
                }
            }
        });
        Console.Error.WriteLine($"soak: {o.Clients} clients for {o.Minutes} min against {http.BaseAddress} (w2s serve pid {o.Pid}), seed {o.Seed}, {Environment.ProcessorCount} CPUs");
        await Task.WhenAll(Enumerable.Range(0, o.Clients).Select(async client =>
        {
            var random = new Random(o.Seed * 1000 + client);
            for (int i = 0; clock.Elapsed < end; i++)
            {
                var started = Stopwatch.StartNew();
                string outcome;
                try
                {
                    outcome = await OneAsync(http, o.Model, random, client, i);
                }
                catch (Exception e)
                {
                    outcome = "client-error";
                    lock (failures) failures.Add($"client {client} request {i}: {e.GetType().Name}: {e.Message}");
                }
                lock (counts)
                {
                    counts[outcome] = counts.GetValueOrDefault(outcome) + 1;
                    latencies.Add(started.Elapsed.TotalSeconds);
                }
            }
        }));
        double wall = clock.Elapsed.TotalSeconds;

        // Settle: requests the server is still unwinding (clients that left) are counted once the handler returns.
        string metrics = "";
        var settle = Stopwatch.StartNew();
        while (settle.Elapsed < TimeSpan.FromSeconds(30))
        {
            metrics = await http.GetStringAsync("metrics");
            if (Value(metrics, "w2s_requests_in_flight") <= 1 && Value(metrics, "w2s_kv_blocks_in_use") == 0) break;
            await Task.Delay(200);
        }
        await stop.CancelAsync();
        await sampler;

        // --- report -------------------------------------------------------------------------------------------------
        long total = counts.Values.Sum();
        Console.WriteLine($"| outcome | requests |");
        Console.WriteLine("|---|---|");
        foreach (var (k, v) in counts.OrderBy(kv => kv.Key, StringComparer.Ordinal)) Console.WriteLine($"| {k} | {v} |");
        latencies.Sort();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"\n{total} requests in {wall:F0} s ({total / wall:F2} requests/s); latency p50 {Pct(latencies, 0.5):F2} s, p99 {Pct(latencies, 0.99):F2} s"));

        // No 5xx and every 4xx expected: a well-formed request must get 200 and a malformed one its own 4xx, or the
        // client calls the outcome unexpected.
        foreach (var (k, v) in counts)
            if (k.Contains("unexpected", StringComparison.Ordinal) || k == "client-error") failures.Add($"{v} × {k}");
        for (int status = 500; status < 600; status++)
            if (Value(metrics, "w2s_requests_total", $"status=\"{status}\"") is > 0 and var n) failures.Add($"/metrics counts {n} responses with status {status}");

        // /metrics equals the clients' counts, endpoint by endpoint.
        foreach (string endpoint in new[] { "completions", "chat_completions" })
        {
            long Client(string what) => counts.GetValueOrDefault($"{endpoint} {what}");
            double Server(int status) => Value(metrics, "w2s_requests_total", $"endpoint=\"{endpoint}\"", $"status=\"{status}\"");
            long clientAll = counts.Where(kv => kv.Key.StartsWith(endpoint + " ", StringComparison.Ordinal)).Sum(kv => kv.Value);
            double serverAll = Value(metrics, "w2s_requests_total", $"endpoint=\"{endpoint}\"");
            if (serverAll != clientAll) failures.Add($"{endpoint}: /metrics counts {serverAll} requests, the clients sent {clientAll}");
            foreach (int status in new[] { 400, 404, 413, 429 })
                if (Server(status) != Client(status.ToString(CultureInfo.InvariantCulture)))
                    failures.Add($"{endpoint}: /metrics counts {Server(status)} × {status}, the clients got {Client(status.ToString(CultureInfo.InvariantCulture))}");
            // A client that left mid-stream is a 499 on the server, or a 200 when its search was done before it noticed.
            if (Server(200) + Server(499) != Client("200") + Client("disconnected") || Server(499) > Client("disconnected"))
                failures.Add($"{endpoint}: /metrics counts {Server(200)} × 200 and {Server(499)} × 499; the clients got {Client("200")} × 200 and left {Client("disconnected")} streams");
            Console.WriteLine($"{endpoint}: /metrics {serverAll} requests ({Server(200)} × 200, {Server(499)} × 499, {Server(400)} × 400, {Server(404)} × 404); clients {clientAll}");
        }

        double inUse = Value(metrics, "w2s_kv_blocks_in_use");
        Console.WriteLine($"KV blocks in use at the end: {inUse} (free: {Value(metrics, "w2s_kv_blocks_free")})");
        if (inUse != 0) failures.Add($"{inUse} KV blocks still in use at the end");

        // Resident memory: median of the samples after warm-up (40-50 % of the run: the server's heap settles in its first
        // minute or two, so in a short run 20-30 % still caught it growing) against the last 10 %.
        if (rss.Count >= 10)
        {
            double minutes = o.Minutes;
            long Median(double from, double to)
            {
                var window = rss.Where(s => s.Minute >= from * minutes && s.Minute <= to * minutes).Select(s => s.Bytes).Order().ToList();
                return window.Count == 0 ? 0 : window[window.Count / 2];
            }
            long after = Median(0.4, 0.5), last = Median(0.9, 1.0), peak = rss.Max(s => s.Bytes);
            double growth = after == 0 ? double.NaN : (double)(last - after) / after;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"RSS of w2s serve: {rss[0].Bytes / 1048576.0:F1} MiB at start, {after / 1048576.0:F1} MiB after warm-up (40-50 % of the run), {last / 1048576.0:F1} MiB at the end (last 10 %), peak {peak / 1048576.0:F1} MiB; growth {growth:P1} (limit 5 %)"));
            if (!(growth <= 0.05)) failures.Add(string.Create(CultureInfo.InvariantCulture, $"resident memory grew {growth:P1} after warm-up"));
        }
        else
        {
            failures.Add($"only {rss.Count} RSS samples of pid {o.Pid} (is it running, on Linux?)");
        }

        foreach (var f in failures.Take(40)) Console.WriteLine("FAIL: " + f);
        Console.WriteLine(failures.Count == 0 ? "soak: PASS" : $"soak: FAIL ({failures.Count} problems)");
        return failures.Count == 0 ? 0 : 1;
    }

    /// <summary>One request of the mix; returns "endpoint status", "endpoint disconnected" or "endpoint unexpected …".</summary>
    private static async Task<string> OneAsync(HttpClient http, string model, Random random, int client, int index)
    {
        double pick = random.NextDouble();
        if (pick < 0.05) return await MalformedAsync(http, model, random);
        bool disconnect = pick < 0.15;
        bool stream = disconnect || random.NextDouble() < 0.5;
        bool chat = random.NextDouble() < 0.3;
        string method = random.NextDouble() switch { < 0.3 => "sample", < 0.5 => "bon", < 0.8 => "cbs", _ => "eft" };
        int n = random.NextDouble() < 0.25 ? 2 : 1;
        int maxTokens = 8 + random.Next(17);
        string prompt = $"Review {client}-{index}: I watched this film last night and";
        var json = new StringBuilder();
        json.Append(CultureInfo.InvariantCulture, $"{{\"model\":\"{model}\",");
        json.Append(chat ? $"\"messages\":[{{\"role\":\"user\",\"content\":\"{prompt}\"}}]," : $"\"prompt\":\"{prompt}\",");
        json.Append(CultureInfo.InvariantCulture, $"\"max_tokens\":{maxTokens},\"n\":{n},\"seed\":{random.Next()},\"stream\":{(stream ? "true" : "false")},");
        json.Append(CultureInfo.InvariantCulture, $"\"search\":{{\"method\":\"{method}\",\"beam_width\":2,\"successors\":2,\"chunk_length\":4,\"n\":4}}}}");
        string path = chat ? "v1/chat/completions" : "v1/completions";
        string endpoint = Endpoint(path);
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json.ToString(), Encoding.UTF8, "application/json") };
        using var reply = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        int code = (int)reply.StatusCode;
        if (code != 200) return $"{endpoint} unexpected {code}: {Shorten(await reply.Content.ReadAsStringAsync())}";
        if (!stream)
        {
            string text = await reply.Content.ReadAsStringAsync();
            return text.Contains("\"choices\"", StringComparison.Ordinal) ? $"{endpoint} 200" : $"{endpoint} unexpected body {Shorten(text)}";
        }
        using var reader = new StreamReader(await reply.Content.ReadAsStreamAsync());
        bool done = false, finished = false;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (!line.StartsWith("data: ", StringComparison.Ordinal)) continue;
            if (disconnect) return $"{endpoint} disconnected"; // leave after the first event: disposing the reply drops the connection
            if (line.Contains("\"error\"", StringComparison.Ordinal)) return $"{endpoint} unexpected error event {Shorten(line)}";
            if (line.Contains("\"finish_reason\":\"", StringComparison.Ordinal)) finished = true;
            if (line == "data: [DONE]") done = true;
        }
        return done && finished ? $"{endpoint} 200" : $"{endpoint} unexpected stream end (done {done}, finish reason {finished})";
    }

    private static async Task<string> MalformedAsync(HttpClient http, string model, Random random)
    {
        var (path, body, expected) = Malformed[random.Next(Malformed.Length)];
        using var content = new ByteArrayContent(body(model)) { Headers = { ContentType = new("application/json") } };
        using var response = await http.PostAsync(path, content);
        string text = await response.Content.ReadAsStringAsync();
        int status = (int)response.StatusCode;
        return status == expected && text.Contains("\"error\"", StringComparison.Ordinal)
            ? $"{Endpoint(path)} {status}"
            : $"{Endpoint(path)} unexpected {status} for a body that calls for {expected}";
    }

    private static string Endpoint(string path) => path.Contains("chat", StringComparison.Ordinal) ? "chat_completions" : "completions";

    private static string Shorten(string text) => text.Length > 160 ? text[..160] + "…" : text;

    private static double Pct(List<double> sorted, double q) =>
        sorted.Count == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Count) - 1, 0, sorted.Count - 1)];

    /// <summary>VmRSS of a process (Linux /proc), or null when it cannot be read.</summary>
    private static long? ResidentBytes(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                    return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException)
        {
        }
        return null;
    }

    /// <summary>The sum of the samples of a Prometheus metric whose labels include every one of <paramref name="labels"/>.</summary>
    private static double Value(string text, string name, params string[] labels)
    {
        double sum = 0;
        foreach (var line in text.Split('\n'))
        {
            if (!line.StartsWith(name, StringComparison.Ordinal) || line.Length == name.Length || line[name.Length] is not ('{' or ' ')) continue;
            int close = line.LastIndexOf('}');
            string labelText = close > 0 ? line[..close] : "";
            if (!labels.All(l => labelText.Contains(l, StringComparison.Ordinal))) continue;
            sum += double.Parse(line[(close + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        }
        return sum;
    }
}

internal sealed record SoakOptions
{
    public string Url { get; init; } = "http://127.0.0.1:8000";
    public string Model { get; init; } = "weak-to-strong";
    public int Pid { get; init; }
    public double Minutes { get; init; } = 10;
    public int Clients { get; init; } = 32;
    public int Seed { get; init; } = 20;

    public static SoakOptions Parse(string[] args)
    {
        var o = new SoakOptions();
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            o = args[i] switch
            {
                "--url" => o with { Url = Value() },
                "--model" => o with { Model = Value() },
                "--pid" => o with { Pid = int.Parse(Value(), CultureInfo.InvariantCulture) },
                "--minutes" => o with { Minutes = double.Parse(Value(), CultureInfo.InvariantCulture) },
                "--clients" => o with { Clients = int.Parse(Value(), CultureInfo.InvariantCulture) },
                "--seed" => o with { Seed = int.Parse(Value(), CultureInfo.InvariantCulture) },
                _ => throw new ArgumentException($"unknown option {args[i]}"),
            };
        }
        return o.Pid > 0 ? o : throw new ArgumentException("--pid (the w2s serve process, for its resident memory) is required");
    }
}
