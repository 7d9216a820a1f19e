using System.Net;
using System.Text;
using System.Text.Json;
using WeakToStrong.Server;

namespace WeakToStrong.Tests.Server;

/// <summary>
/// Every bad request gets its status and OpenAI's error JSON ({"error":{"message","type","param","code"}}), and
/// the server keeps serving afterwards.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ServerErrorTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string M = ServerFixture.Model;

    private static void AssertError(JsonElement body, string? param, string code, string type = "invalid_request_error")
    {
        var error = body.GetProperty("error");
        Assert.False(string.IsNullOrWhiteSpace(error.GetProperty("message").GetString()));
        Assert.Equal(type, error.GetProperty("type").GetString());
        Assert.Equal(param, error.GetProperty("param").GetString());
        Assert.Equal(code, error.GetProperty("code").GetString());
    }

    private async Task StillServes()
    {
        var body = await Api.OkAsync(server.Http, "v1/completions", $$"""{"model":"{{M}}","prompt":"ok","max_tokens":2,"method":"sample"}""");
        Assert.Single(body.GetProperty("choices").EnumerateArray());
    }

    [Theory]
    [InlineData("{\"model\":", null, "invalid_json")]
    [InlineData("[1,2]", null, "invalid_json")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"model\":\"w2s-test\"}", "model", "invalid_json")]
    [InlineData("{\"prompt\":\"x\"}", "model", "missing_required_parameter")]
    [InlineData("{\"model\":\"w2s-test\"}", "prompt", "missing_required_parameter")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"temperature\":\"hot\"}", "temperature", "invalid_type")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"max_tokens\":2.5}", "max_tokens", "invalid_type")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"stream\":\"yes\"}", "stream", "invalid_type")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"stop\":[\"a\",3]}", "stop", "invalid_type")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"search\":\"cbs\"}", "search", "invalid_type")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"temperature\":3}", "temperature", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"top_p\":0}", "top_p", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"max_tokens\":0}", "max_tokens", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"max_tokens\":201}", "max_tokens", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"max_tokens\":1e12}", "max_tokens", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"n\":9}", "n", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"n\":0}", "n", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}", "stop", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"stop\":\"\"}", "stop", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"best_of\":2,\"n\":3}", "best_of", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"best_of\":2,\"stream\":true}", "best_of", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"best_of\":2,\"search\":{\"method\":\"cbs\"}}", "best_of", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"stream_options\":{\"include_usage\":true}}", "stream_options", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"search\":{\"method\":\"beam\"}}", "search.method", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"search\":{\"beam_width\":0}}", "search.beam_width", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"search\":{\"beam_width\":8,\"successors\":8}}", "search.beam_width", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"search\":{\"method\":\"bon\",\"n\":33}}", "search.n", "invalid_value")]
    // W·K past 2³¹ (100000² wrapped to 1410065408; 65536² wrapped to 0 and passed the cap).
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"search\":{\"beam_width\":100000,\"successors\":100000}}", "search.beam_width", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"search\":{\"beam_width\":65536,\"successors\":65536}}", "search.beam_width", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"beam_width\":65536,\"successors\":65536}", "beam_width", "invalid_value")]
    // Rejected by the library's Validate(): the error names the field sent, not the C# property (N, Beta).
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"search\":{\"n\":5000}}", "search.n", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"search\":{\"method\":\"eft\",\"beta\":1e300}}", "search.beta", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"method\":\"eft\",\"beta\":1e300}", "beta", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"search\":{\"width\":2}}", "search.width", "unknown_parameter")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"logprobs\":3}", "logprobs", "unsupported_parameter")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"echo\":true}", "echo", "unsupported_parameter")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"presence_penalty\":0.5}", "presence_penalty", "unsupported_parameter")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"logit_bias\":{\"50256\":-100}}", "logit_bias", "unsupported_parameter")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":[\"a\",\"b\"]}", "prompt", "unsupported_parameter")]
    [InlineData("{\"model\":\"w2s-test\",\"prompt\":\"x\",\"frobnicate\":1}", "frobnicate", "unknown_parameter")]
    public async Task CompletionsBadRequestsAre400sNamingTheField(string json, string? param, string code)
    {
        var (status, body, _) = await Api.PostAsync(server.Http, "v1/completions", json);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        AssertError(body, param, code);
        await StillServes();
    }

    [Theory]
    [InlineData("{\"model\":\"w2s-test\"}", "messages", "missing_required_parameter")]
    [InlineData("{\"model\":\"w2s-test\",\"messages\":\"hi\"}", "messages", "invalid_type")]
    [InlineData("{\"model\":\"w2s-test\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":\"b\"}]}", "messages[1]", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"system\",\"content\":\"b\"},{\"role\":\"user\",\"content\":\"c\"}]}", "messages[1].role", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"tool\",\"content\":\"b\",\"tool_call_id\":\"x\"},{\"role\":\"user\",\"content\":\"c\"}]}", "messages[1].role", "unsupported_parameter")]
    [InlineData("{\"model\":\"w2s-test\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"x\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},{\"role\":\"user\",\"content\":\"c\"}]}", "messages[1].tool_calls", "unsupported_parameter")]
    [InlineData("{\"model\":\"w2s-test\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"assistant\"},{\"role\":\"user\",\"content\":\"c\"}]}", "messages[1].content", "missing_required_parameter")]
    [InlineData("{\"model\":\"w2s-test\",\"messages\":[{\"role\":\"system\",\"content\":\"a\"}]}", "messages", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"messages\":[{\"role\":\"robot\",\"content\":\"a\"}]}", "messages[0].role", "invalid_value")]
    [InlineData("{\"model\":\"w2s-test\",\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"x\"}}]}]}", "messages[0].content[0]", "unsupported_parameter")]
    [InlineData("{\"model\":\"w2s-test\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"tools\":[{\"type\":\"function\"}]}", "tools", "unsupported_parameter")]
    [InlineData("{\"model\":\"w2s-test\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"best_of\":2}", "best_of", "unknown_parameter")]
    [InlineData("{\"model\":\"w2s-test\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}],\"max_completion_tokens\":-1}", "max_completion_tokens", "invalid_value")]
    public async Task ChatBadRequestsAre400sNamingTheField(string json, string? param, string code)
    {
        var (status, body, _) = await Api.PostAsync(server.Http, "v1/chat/completions", json);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        AssertError(body, param, code);
        await StillServes();
    }

    [Theory]
    [InlineData(100000, 100000, "10000000000")]
    [InlineData(65536, 65536, "4294967296")]
    public async Task AnOverflowingBeamShapeIsRefusedWithItsTrueSizeAndThisServersLimit(int w, int k, string product)
    {
        var (status, body, _) = await Api.PostAsync(server.Http, "v1/completions",
            $$$"""{"model":"{{{M}}}","prompt":"x","search":{"beam_width":{{{w}}},"successors":{{{k}}}}}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        string message = body.GetProperty("error").GetProperty("message").GetString()!;
        Assert.Equal($"beam_width × successors is {product} candidates; this server allows at most {ServerFixture.Limits.MaxCandidates} per search.", message);
    }

    [Fact]
    public async Task AHostThatIsNoAddressIsRefusedBeforeListening()
    {
        // Kestrel would bind every interface for a name it cannot parse.
        var e = await Assert.ThrowsAsync<ArgumentException>(() => W2sServer.StartAsync(server.Search, new ServerOptions { Host = "999.1.1.1", Port = 0 }));
        Assert.Contains("'999.1.1.1' is not an IP address", e.Message);
    }

    [Fact]
    public async Task FieldsWeDoNotSupportAreAcceptedAtTheirDefaults()
    {
        var body = await Api.OkAsync(server.Http, "v1/completions",
            $$"""{"model":"{{M}}","prompt":"x","max_tokens":2,"method":"sample","logprobs":null,"echo":false,"presence_penalty":0,"frequency_penalty":0,"logit_bias":{},"user":"u1"}""");
        Assert.Equal("text_completion", body.GetProperty("object").GetString());
    }

    [Fact]
    public async Task AnUnknownModelIs404()
    {
        var (status, body, _) = await Api.PostAsync(server.Http, "v1/completions", """{"model":"gpt-4","prompt":"x"}""");
        Assert.Equal(HttpStatusCode.NotFound, status);
        AssertError(body, "model", "model_not_found");
        Assert.Contains("gpt-4", body.GetProperty("error").GetProperty("message").GetString());
        await StillServes();
    }

    [Fact]
    public async Task AnUnknownEndpointIs404WithErrorJson()
    {
        var response = await server.Http.GetAsync("v1/engines");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        AssertError(JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement, null, "unknown_url");
    }

    [Fact]
    public async Task APromptLongerThanTheContextIsContextLengthExceeded()
    {
        // The fixture models have 256 positions; each " word" is one GPT-2 token.
        string prompt = string.Concat(Enumerable.Repeat(" word", 300));
        var (status, body, _) = await Api.PostAsync(server.Http, "v1/completions", $$"""{"model":"{{M}}","prompt":"{{prompt}}","max_tokens":5}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        AssertError(body, "max_tokens", "context_length_exceeded");
        Assert.Contains("256", body.GetProperty("error").GetProperty("message").GetString());

        string fits = string.Concat(Enumerable.Repeat(" word", 100));
        (status, body, _) = await Api.PostAsync(server.Http, "v1/completions", $$"""{"model":"{{M}}","prompt":"{{fits}}","max_tokens":200}""");
        Assert.Equal(HttpStatusCode.BadRequest, status); // prompt fits, prompt + max_tokens does not
        AssertError(body, "max_tokens", "context_length_exceeded");
        await StillServes();
    }

    [Fact]
    public async Task ABodyOverTheLimitIs413()
    {
        string huge = new('a', 70 * 1024);
        var (status, body, _) = await Api.PostAsync(server.Http, "v1/completions", $$"""{"model":"{{M}}","prompt":"{{huge}}"}""");
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, status);
        AssertError(body, null, "request_too_large");

        // Without a Content-Length (chunked), the limit holds while reading.
        using var content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes($$"""{"model":"{{M}}","prompt":"{{huge}}"}""")));
        content.Headers.ContentType = new("application/json");
        using var request = new HttpRequestMessage(HttpMethod.Post, "v1/completions") { Content = content };
        request.Headers.TransferEncodingChunked = true;
        var response = await server.Http.SendAsync(request);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        await StillServes();
    }

    [Fact]
    public async Task AChunkedBodyUnderTheLimitIsReadWhateverItsChunkSize()
    {
        // 60 KiB of content (the limit is 64 KiB) in 16-byte chunks: 84 KiB on the wire. Kestrel's limit counted the
        // chunk framing and refused it with 413.
        string json = $$"""{"model":"{{M}}","prompt":"ok","max_tokens":2,"method":"sample"}""";
        byte[] body = Encoding.UTF8.GetBytes(json + new string(' ', 60 * 1024 - json.Length));
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(server.Server.BaseAddress.Host, server.Server.BaseAddress.Port);
        var stream = tcp.GetStream();
        var wire = new MemoryStream();
        wire.Write("POST /v1/completions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"u8);
        for (int at = 0; at < body.Length; at += 16)
        {
            int n = Math.Min(16, body.Length - at);
            wire.Write(Encoding.ASCII.GetBytes($"{n:x}\r\n"));
            wire.Write(body, at, n);
            wire.Write("\r\n"u8);
        }
        wire.Write("0\r\n\r\n"u8);
        await stream.WriteAsync(wire.ToArray());
        string response = await new StreamReader(stream).ReadToEndAsync();
        Assert.StartsWith("HTTP/1.1 200 ", response);
        Assert.Contains("\"text_completion\"", response);
    }

    /// <summary>A request body that fails as Kestrel's does when the connection breaks, with RequestAborted not (yet) cancelled.</summary>
    private sealed class BrokenBody(Exception error) : Stream
    {
        public override int Read(byte[] buffer, int offset, int count) => throw error;
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromException<int>(error);
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private async Task<(int Status, string Body)> HandleWithBody(Exception bodyError)
    {
        using var metrics = new ServerMetrics(server.Search, server.Server.Admission);
        var handler = new CompletionHandler(server.Search, server.Server.Admission, metrics, new ServerOptions { Limits = ServerFixture.Limits, MaxBodyBytes = 64 * 1024 });
        var http = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        http.Request.Method = "POST";
        http.Request.Body = new BrokenBody(bodyError);
        var written = new MemoryStream();
        http.Response.Body = written;
        await handler.HandleAsync(http, chat: false);
        return (http.Response.StatusCode, Encoding.UTF8.GetString(written.ToArray()));
    }

    [Fact]
    public async Task ABodyReadBrokenByTheConnectionIsNoServerErrorEvenBeforeRequestAbortedFires()
    {
        // Kestrel cancels RequestAborted on the thread pool after the read fails; under load the handler saw the
        // token still unset and answered (and counted) the broken read as a 500 "internal error".
        foreach (var broken in new Exception[]
        {
            new Microsoft.AspNetCore.Connections.ConnectionResetException("reset by peer"),
            new TaskCanceledException("The request was aborted", new Microsoft.AspNetCore.Connections.ConnectionAbortedException()),
        })
        {
            var (status, body) = await HandleWithBody(broken);
            Assert.NotEqual(500, status);
            Assert.Equal("", body); // nobody to answer
        }

        // Kestrel's own refusals are IOExceptions too; they still get their status and error JSON.
        var (tooLarge, json) = await HandleWithBody(new Microsoft.AspNetCore.Http.BadHttpRequestException("Request body too large.", 413));
        Assert.Equal(413, tooLarge);
        AssertError(JsonDocument.Parse(json).RootElement, null, "request_too_large");
    }
}

/// <summary>Admission control on a server whose KV pools hold 20 blocks of 16 tokens per model.</summary>
[Trait("Category", "Integration")]
public sealed class ServerAdmissionTests(ServerFixture models) : IClassFixture<ServerFixture>
{
    private const string M = ServerFixture.Model;

    [Fact]
    public async Task ARequestThatCouldNeverFitIsRefusedWithTheNumbers()
    {
        using var search = models.Load(kvBlocks: 20);
        await using var server = await W2sServer.StartAsync(search, new ServerOptions { Port = 0, Limits = ServerFixture.Limits });
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        var (status, body, _) = await Api.PostAsync(http, "v1/completions",
            $$$"""{"model":"{{{M}}}","prompt":"hello","max_tokens":100,"search":{"method":"cbs","beam_width":4,"successors":4}}""");
        Assert.Equal(HttpStatusCode.BadRequest, status);
        var error = body.GetProperty("error");
        Assert.Equal("kv_budget_exceeded", error.GetProperty("code").GetString());
        Assert.Matches(@"could need \d+ KV blocks of 16 tokens on large, more than its whole pool of 20", error.GetProperty("message").GetString());
        // A request that fits still runs.
        await Api.OkAsync(http, "v1/completions", $$"""{"model":"{{M}}","prompt":"hello","max_tokens":5,"method":"sample"}""");
    }

    [Fact]
    public async Task ARequestThatFitsButNotNowWaitsAndAFullQueueIs429()
    {
        using var search = models.Load(kvBlocks: 20);
        await using var server = await W2sServer.StartAsync(search, new ServerOptions { Port = 0, Limits = ServerFixture.Limits, MaxQueue = 1 });
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        // The budget is held by a reservation the test releases, not by a running request: a real one (200 tokens
        // on the tiny test models) can finish before the next request arrives on a fast machine, and the second
        // would then never wait. 14 of 20 blocks per model held; a 150-token request needs 1 + 10, so it waits.
        var held = await server.Admission.AcquireAsync([.. Enumerable.Repeat(14L, server.Admission.Models)], CancellationToken.None);
        Assert.Equal(1, server.Admission.Running);
        var waiting = Api.OkAsync(http, "v1/completions", $$"""{"model":"{{M}}","prompt":"hi","max_tokens":150,"method":"sample","seed":2}""");
        await Until(() => server.Admission.Queued == 1);

        var (status, body, response) = await Api.PostAsync(http, "v1/completions", $$"""{"model":"{{M}}","prompt":"hi","max_tokens":150,"method":"sample"}""");
        Assert.Equal(HttpStatusCode.TooManyRequests, status);
        Assert.Equal("queue_full", body.GetProperty("error").GetProperty("code").GetString());
        Assert.Equal("rate_limit_error", body.GetProperty("error").GetProperty("type").GetString());
        Assert.Equal(TimeSpan.FromSeconds(1), response.Headers.RetryAfter?.Delta);
        Assert.False(waiting.IsCompleted);

        held.Dispose(); // the reservation ends, then the waiting request runs
        var done = await waiting;
        Assert.Equal(150, done.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        await Until(() => server.Admission.Running == 0);
        foreach (var m in search.LocalModels) Assert.Equal(0, m.Transformer.Cache.UsedBlocks);
    }

    private static async Task Until(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for the server");
            await Task.Delay(5);
        }
    }
}
