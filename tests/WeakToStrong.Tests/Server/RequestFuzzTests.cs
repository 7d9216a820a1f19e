using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using WeakToStrong.Server;

namespace WeakToStrong.Tests.Server;

/// <summary>
/// Request bodies generated from the completions and chat request schema, then mutated at random (wrong types,
/// huge and odd numbers, deep nesting, invalid UTF-8 and lone surrogates, duplicate keys, missing and unknown
/// fields, truncation, flipped bytes, oversized strings), seeded so that a failure replays: no body may get a 5xx
/// or hang, every refusal is OpenAI's error JSON, and the server serves a plain request afterwards with all KV free.
/// </summary>
[Trait("Category", "Integration")]
public sealed class RequestFuzzTests(ServerFixture models) : IClassFixture<ServerFixture>
{
    private const string M = ServerFixture.Model;
    private const int Bodies = 1200;

    /// <summary>A JSON value written as text; the generator keeps objects as key lists so that keys can repeat.</summary>
    private static string Str(string s) => JsonSerializer.Serialize(s);

    private static readonly string[] OddValues =
    [
        "null", "true", "false", "0", "-1", "1.5", "-0", "1e308", "-1e308", "1e400", "9223372036854775808", "-9223372036854775809",
        "18446744073709551616", "4294967296", "2147483648", "1e-400", "\"\"", "\"x\"", "\"12\"", "[]", "{}", "[1,2]", "{\"a\":1}",
        "\"\\ud800\"", "\"\\udc00x\"", "\"\\u0000\"", "NaN", "Infinity", "01", "+1", ".5", "1.", "0x10", "'single'", "tru",
    ];

    private static List<(string Key, string Value)> Search(Random r)
    {
        var fields = new List<(string, string)> { ("method", Str(r.Next(4) switch { 0 => "cbs", 1 => "bon", 2 => "eft", _ => "sample" })) };
        if (r.Next(2) == 0) fields.Add(("beam_width", "2"));
        if (r.Next(2) == 0) fields.Add(("successors", "2"));
        if (r.Next(2) == 0) fields.Add(("chunk_length", r.Next(3) == 0 ? "null" : "2"));
        if (r.Next(3) == 0) fields.Add(("n", "2"));
        if (r.Next(3) == 0) fields.Add(("beta", "0.5"));
        if (r.Next(4) == 0) fields.Add(("dedupe", "true"));
        return fields;
    }

    /// <summary>A valid, cheap request of the schema (at most 3 tokens, small searches).</summary>
    private static (bool Chat, List<(string Key, string Value)> Fields) Valid(Random r)
    {
        bool chat = r.Next(2) == 0;
        var fields = new List<(string, string)> { ("model", Str(M)) };
        if (chat)
            fields.Add(("messages", r.Next(3) == 0
                ? $"[{{\"role\":\"system\",\"content\":{Str("Be brief.")}}},{{\"role\":\"user\",\"content\":{Str("Hi")}}}]"
                : $"[{{\"role\":\"user\",\"content\":{Str("The film was")}}}]"));
        else
            fields.Add(("prompt", r.Next(4) == 0 ? "[\"The film was\"]" : Str("The film was")));
        fields.Add((chat && r.Next(2) == 0 ? "max_completion_tokens" : "max_tokens", (1 + r.Next(3)).ToString(CultureInfo.InvariantCulture)));
        if (r.Next(2) == 0) fields.Add(("temperature", "0.7"));
        if (r.Next(3) == 0) fields.Add(("top_p", "0.9"));
        if (r.Next(3) == 0) fields.Add(("top_k", "40"));
        if (r.Next(3) == 0) fields.Add(("n", "2"));
        if (r.Next(2) == 0) fields.Add(("seed", r.Next(1000).ToString(CultureInfo.InvariantCulture)));
        if (r.Next(3) == 0) fields.Add(("stop", r.Next(2) == 0 ? Str(".") : "[\".\",\"!\"]"));
        if (r.Next(3) == 0)
        {
            fields.Add(("stream", "true"));
            if (r.Next(2) == 0) fields.Add(("stream_options", "{\"include_usage\":true}"));
        }
        if (r.Next(2) == 0) fields.Add(("search", Object(Search(r))));
        if (r.Next(5) == 0) fields.Add(("user", Str("fuzz")));
        return (chat, fields);
    }

    private static string Object(List<(string Key, string Value)> fields) => "{" + string.Join(",", fields.Select(f => $"{Str(f.Key)}:{f.Value}")) + "}";

    private static string Nested(Random r)
    {
        int depth = r.Next(3) == 0 ? 2000 + r.Next(3000) : 10 + r.Next(100);
        return r.Next(2) == 0 ? new string('[', depth) + new string(']', depth) : string.Concat(Enumerable.Repeat("{\"a\":", depth)) + "1" + new string('}', depth);
    }

    /// <summary>One mutation of the field list; some act on the bytes after (see <see cref="Generate"/>).</summary>
    private static void Mutate(Random r, List<(string Key, string Value)> fields)
    {
        int at = fields.Count == 0 ? 0 : r.Next(fields.Count);
        switch (r.Next(9))
        {
            case 0 when fields.Count > 0: // wrong type or odd number
                fields[at] = (fields[at].Key, OddValues[r.Next(OddValues.Length)]);
                break;
            case 1 when fields.Count > 0: // deep nesting
                fields[at] = (fields[at].Key, Nested(r));
                break;
            case 2 when fields.Count > 0: // duplicate key
                fields.Insert(r.Next(fields.Count + 1), (fields[at].Key, r.Next(2) == 0 ? fields[at].Value : OddValues[r.Next(OddValues.Length)]));
                break;
            case 3 when fields.Count > 0: // missing field
                fields.RemoveAt(at);
                break;
            case 4: // unknown or unsupported field
                fields.Add((r.Next(2) == 0 ? "frobnicate" : new[] { "logprobs", "echo", "logit_bias", "tools", "suffix", "presence_penalty" }[r.Next(6)], OddValues[r.Next(OddValues.Length)]));
                break;
            case 5: // huge values where numbers are expected
                fields.Add((new[] { "max_tokens", "n", "best_of", "seed", "temperature", "top_k" }[r.Next(6)], new[] { "1e308", "99999999999999999999", "-5", "2147483647", "1000000" }[r.Next(5)]));
                break;
            case 6: // a long string, sometimes past the body limit
                fields.Add((r.Next(2) == 0 ? "prompt" : "user", Str(new string('w', r.Next(2) == 0 ? 70_000 : 5_000))));
                break;
            case 7 when fields.Count > 0: // a search object of the wrong shape
                var search = Search(r);
                search[r.Next(search.Count)] = (search[0].Key, OddValues[r.Next(OddValues.Length)]);
                fields[at] = ("search", r.Next(3) == 0 ? Nested(r) : Object(search));
                break;
            default: // messages of the wrong shape
                fields.Add(("messages", new[] { "[]", "[{}]", "[{\"role\":\"user\"}]", "[{\"role\":\"robot\",\"content\":\"x\"}]", "[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}]", "[{\"role\":\"user\",\"content\":5}]" }[r.Next(6)]));
                break;
        }
    }

    /// <summary>Body <paramref name="index"/> of the run: a valid request, 1-3 mutations, then maybe byte-level damage.</summary>
    private static (string Path, byte[] Body) Generate(int index)
    {
        var r = new Random(20_000 + index);
        var (chat, fields) = Valid(r);
        int mutations = index % 10 == 0 ? 0 : 1 + r.Next(3); // every tenth body stays valid
        for (int i = 0; i < mutations; i++) Mutate(r, fields);
        byte[] body = Encoding.UTF8.GetBytes(Object(fields));
        if (mutations > 0)
            switch (r.Next(8))
            {
                case 0: // invalid UTF-8 inside the first string
                    int quote = Array.IndexOf(body, (byte)'"', Array.IndexOf(body, (byte)':') + 1);
                    byte[][] bad = [[0xC3, 0x28], [0xFF], [0xED, 0xA0, 0x80], [0xF0, 0x28, 0x8C, 0x28], [0xC0, 0xAF]];
                    body = quote < 0 ? body : [.. body[..(quote + 1)], .. bad[r.Next(bad.Length)], .. body[(quote + 1)..]];
                    break;
                case 1: // truncated
                    body = body[..r.Next(body.Length)];
                    break;
                case 2: // a flipped byte
                    body[r.Next(body.Length)] ^= (byte)(1 << r.Next(8));
                    break;
            }
        return (chat ? "v1/chat/completions" : "v1/completions", body);
    }

    [Fact]
    public async Task NoBodyGetsA5xxOrHangsAndTheServerStaysUp()
    {
        using var search = models.Load(kvBlocks: 2048);
        var server = await W2sServer.StartAsync(search, new ServerOptions { Port = 0, Limits = ServerFixture.Limits, MaxBodyBytes = 64 * 1024 });
        await using var _ = server;
        using var http = new HttpClient { BaseAddress = server.BaseAddress, Timeout = TimeSpan.FromSeconds(60) }; // a hang fails the request
        var statuses = new Dictionary<int, int>();
        var failures = new List<string>();
        int next = -1;
        await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < Bodies)
            {
                var (path, body) = Generate(i);
                string? problem;
                int status = 0;
                try
                {
                    using var content = new ByteArrayContent(body) { Headers = { ContentType = new("application/json") } };
                    using var response = await http.PostAsync(path, content);
                    status = (int)response.StatusCode;
                    string text = await response.Content.ReadAsStringAsync();
                    problem = Check(status, text, response.Content.Headers.ContentType?.MediaType);
                }
                catch (Exception e)
                {
                    problem = $"{e.GetType().Name}: {e.Message}";
                }
                lock (statuses)
                {
                    statuses[status] = statuses.GetValueOrDefault(status) + 1;
                    if (problem is not null) failures.Add($"body {i} ({path}, {Preview(body)}): {problem}");
                }
            }
        }));

        Assert.True(failures.Count == 0, string.Join("\n", failures.Take(20)));
        // The run is not vacuous: bodies were refused for many reasons, and valid ones were served.
        Assert.True(statuses.GetValueOrDefault(200) >= Bodies / 20, $"statuses: {string.Join(", ", statuses.Select(s => $"{s.Key}×{s.Value}"))}");
        Assert.True(statuses.GetValueOrDefault(400) >= Bodies / 2, $"statuses: {string.Join(", ", statuses.Select(s => $"{s.Key}×{s.Value}"))}");
        Assert.True(statuses.ContainsKey(413), "some bodies were past the size limit");

        var after = await Api.OkAsync(http, "v1/completions", $$$"""{"model":"{{{M}}}","prompt":"Still there?","max_tokens":2}""");
        Assert.Equal(2, after.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.All(search.LocalModels, m => Assert.Equal(0, m.Transformer.Cache.UsedBlocks));
    }

    /// <summary>What the fuzzer first found (both were 500s): text the JSON reader accepts but cannot turn into a string.</summary>
    [Theory]
    [InlineData(new byte[] { 0xC3, 0x28 }, null)]
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 }, null)] // a surrogate encoded in UTF-8
    [InlineData(new byte[] { (byte)'\\', (byte)'u', (byte)'d', (byte)'8', (byte)'0', (byte)'0' }, "messages[0].content")]
    public async Task TextThatIsNotUnicodeIsA400(byte[] inside, string? param)
    {
        byte[] body = [.. "{\"model\":\"w2s-test\",\"messages\":[{\"role\":\"user\",\"content\":\"a"u8, .. inside, .. "b\"}]}"u8];
        using var content = new ByteArrayContent(body) { Headers = { ContentType = new("application/json") } };
        using var response = await models.Http.PostAsync("v1/chat/completions", content);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var error = doc.RootElement.GetProperty("error");
        Assert.Equal("invalid_json", error.GetProperty("code").GetString());
        Assert.Equal(param, error.GetProperty("param").GetString());
    }

    /// <summary>Null when the answer is acceptable: a served request, or a 4xx with OpenAI's error JSON.</summary>
    private static string? Check(int status, string text, string? mediaType)
    {
        if (status >= 500) return $"HTTP {status}: {text}";
        if (status == 200)
            return mediaType == "text/event-stream"
                ? text.TrimEnd().EndsWith("data: [DONE]", StringComparison.Ordinal) && !text.Contains("\"error\"", StringComparison.Ordinal) ? null : $"a stream that did not end cleanly: {text[^Math.Min(200, text.Length)..]}"
                : text.Contains("\"choices\"", StringComparison.Ordinal) ? null : $"200 without choices: {text}";
        if (status is < 400 or > 499) return $"HTTP {status}";
        try
        {
            using var doc = JsonDocument.Parse(text);
            var error = doc.RootElement.GetProperty("error");
            return error.GetProperty("message").GetString() is { Length: > 0 } && error.GetProperty("type").ValueKind == JsonValueKind.String
                ? null : $"an error without message or type: {text}";
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException)
        {
            return $"HTTP {status} without OpenAI's error JSON: {text}";
        }
    }

    private static string Preview(byte[] body) => Encoding.UTF8.GetString(body[..Math.Min(body.Length, 160)]);
}
