using System.Diagnostics;
using System.Net;
using System.Text.Json;
using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;
using WeakToStrong.Server;

namespace WeakToStrong.Tests.Server;

/// <summary>
/// A server whose large model is a remote endpoint that misbehaves on the wire (<see cref="FaultyUpstream"/>), one
/// fault per test: the client gets 502 (504 on timeout) with OpenAI's error JSON naming the upstream, never a 400
/// blaming it; retries, the circuit breaker and the whole-request deadline do what they say; KV is freed.
/// </summary>
[Trait("Category", "Integration")]
[Collection(ExactMetricsCollection.Name)]
public sealed class UpstreamFaultTests(ServerModels models)
{
    private const string M = ServerFixture.Model;
    private static readonly string Body = $$$"""{"model":"{{{M}}}","prompt":"The film was","max_tokens":4,"seed":3,"search":{"method":"cbs","beam_width":1,"successors":2,"chunk_length":2}}""";

    /// <summary>A server in front of <paramref name="upstream"/>; the upstream is called with a 300 ms timeout and 2 retries.</summary>
    private async Task<(W2sServer Server, WeakToStrongSearch Search, OpenAiCompletionsModel Remote)> StartAsync(
        FaultyUpstream upstream, int circuitMinimumThroughput = 100, TimeSpan? requestTimeout = null, TimeSpan? callTimeout = null)
    {
        var remote = new OpenAiCompletionsModel(new OpenAiCompletionsOptions
        {
            Endpoint = upstream.Endpoint, Model = "upstream-model",
            Timeout = callTimeout ?? TimeSpan.FromMilliseconds(300), MaxRetries = 2,
            InitialBackoff = TimeSpan.FromMilliseconds(1), MaxBackoff = TimeSpan.FromMilliseconds(20),
            CircuitMinimumThroughput = circuitMinimumThroughput,
        });
        var search = models.Load(kvBlocks: 512, remoteLarge: remote);
        var server = await W2sServer.StartAsync(search, new ServerOptions { Port = 0, Limits = ServerFixture.Limits, RequestTimeout = requestTimeout });
        return (server, search, remote);
    }

    private static void AssertUpstreamError(HttpStatusCode expectedStatus, string code, (HttpStatusCode Status, JsonElement Body, HttpResponseMessage _) reply, FaultyUpstream upstream, string detail)
    {
        Assert.True(reply.Status == expectedStatus, $"{reply.Status}: {reply.Body}");
        var error = reply.Body.GetProperty("error");
        Assert.Equal("server_error", error.GetProperty("type").GetString());
        Assert.Equal(code, error.GetProperty("code").GetString());
        string message = error.GetProperty("message").GetString()!;
        Assert.Contains($"upstream-model at {upstream.Endpoint}", message); // names the upstream
        Assert.Contains(detail, message);
    }

    private static void AssertKvFree(WeakToStrongSearch search) =>
        Assert.All(search.LocalModels, m => Assert.Equal(0, m.Transformer.Cache.UsedBlocks));

    [Theory]
    [InlineData(Fault.Hang)]
    [InlineData(Fault.SlowDrip)]
    public async Task AnUpstreamThatDoesNotAnswerInTimeIsA504AfterItsRetries(Fault fault)
    {
        await using var upstream = new FaultyUpstream(_ => fault);
        var (server, search, _) = await StartAsync(upstream);
        await using (server)
        using (search)
        {
            using var http = new HttpClient { BaseAddress = server.BaseAddress };
            var clock = Stopwatch.StartNew();
            var reply = await Api.PostAsync(http, "v1/completions", Body);
            AssertUpstreamError(HttpStatusCode.GatewayTimeout, "upstream_timeout", reply, upstream, "gave up after 3 attempts; last: no reply within 0.3 s");
            Assert.Equal(3, upstream.Calls);
            Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(900), $"three attempts of 300 ms took {clock.Elapsed}");
            AssertKvFree(search);
        }
    }

    [Fact]
    public async Task A429IsRetriedAndThenTheRequestSucceeds()
    {
        await using var upstream = new FaultyUpstream(call => call == 1 ? Fault.TooManyRequests : Fault.None);
        var (server, search, remote) = await StartAsync(upstream);
        await using (server)
        using (search)
        {
            using var http = new HttpClient { BaseAddress = server.BaseAddress };
            var body = await Api.OkAsync(http, "v1/completions", Body);
            Assert.NotEmpty(Api.Text(body));
            Assert.Equal(1, remote.Retries);
            Assert.Equal(upstream.Calls, remote.Attempts);
            string metrics = await http.GetStringAsync("metrics");
            Assert.Equal(1, MetricsText.Value(metrics, "w2s_upstream_retries_total"));
            Assert.Equal(upstream.Calls, MetricsText.Value(metrics, "w2s_upstream_attempts_total"));
            Assert.True(upstream.Calls >= 3, $"the 429 and at least the two chunks of 2 tokens (got {upstream.Calls} calls)");
        }
    }

    [Fact]
    public async Task AnUpstreamThatAlwaysFailsIsA502AndThenTheBreakerFailsFast()
    {
        await using var upstream = new FaultyUpstream(_ => Fault.ServerError);
        // The breaker opens once 6 attempts in its window failed: after the second request's three.
        var (server, search, _) = await StartAsync(upstream, circuitMinimumThroughput: 6);
        await using (server)
        using (search)
        {
            using var http = new HttpClient { BaseAddress = server.BaseAddress };
            for (int request = 1; request <= 2; request++)
            {
                var failed = await Api.PostAsync(http, "v1/completions", Body);
                AssertUpstreamError(HttpStatusCode.BadGateway, "upstream_error", failed, upstream, "gave up after 3 attempts; last: HTTP 500 upstream exploded");
                Assert.Equal(3 * request, upstream.Calls);
            }
            var clock = Stopwatch.StartNew();
            var refused = await Api.PostAsync(http, "v1/completions", Body);
            AssertUpstreamError(HttpStatusCode.BadGateway, "upstream_unavailable", refused, upstream, "circuit breaker");
            Assert.Equal(6, upstream.Calls); // not called at all
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"an open circuit fails at once (took {clock.Elapsed})");
            AssertKvFree(search);
        }
    }

    [Fact]
    public async Task MalformedJsonIsA502WithoutRetries()
    {
        await using var upstream = new FaultyUpstream(_ => Fault.MalformedJson);
        var (server, search, _) = await StartAsync(upstream);
        await using (server)
        using (search)
        {
            using var http = new HttpClient { BaseAddress = server.BaseAddress };
            AssertUpstreamError(HttpStatusCode.BadGateway, "upstream_error", await Api.PostAsync(http, "v1/completions", Body), upstream, "the reply is not JSON");
            Assert.Equal(1, upstream.Calls);
        }
    }

    [Fact]
    public async Task AConnectionResetMidReplyIsRetriedThenA502()
    {
        await using var upstream = new FaultyUpstream(_ => Fault.ResetMidBody);
        var (server, search, remote) = await StartAsync(upstream);
        await using (server)
        using (search)
        {
            using var http = new HttpClient { BaseAddress = server.BaseAddress };
            AssertUpstreamError(HttpStatusCode.BadGateway, "upstream_error", await Api.PostAsync(http, "v1/completions", Body), upstream, "gave up after 3 attempts");
            Assert.Equal(3, upstream.Calls);
            Assert.Equal(2, remote.Retries);
            AssertKvFree(search);
        }
    }

    [Fact]
    public async Task AStreamThatLosesItsUpstreamEndsWithAnErrorEventNotAFinishReason()
    {
        // Two chunks are answered, then the upstream dies for good.
        await using var upstream = new FaultyUpstream(call => call <= 2 ? Fault.None : Fault.ResetMidBody);
        var (server, search, _) = await StartAsync(upstream);
        await using (server)
        using (search)
        {
            using var http = new HttpClient { BaseAddress = server.BaseAddress };
            var events = await Api.StreamAsync(http, "v1/completions",
                $$$"""{"model":"{{{M}}}","prompt":"The film was","max_tokens":12,"seed":3,"stream":true,"search":{"method":"cbs","beam_width":1,"successors":1,"chunk_length":2}}""");
            Assert.NotEmpty(Api.StreamedText(events.Where(e => e.TryGetProperty("choices", out _)).ToList())); // text was streamed before the loss
            Assert.All(events.Where(e => e.TryGetProperty("choices", out _)).SelectMany(e => e.GetProperty("choices").EnumerateArray()),
                c => Assert.Equal(JsonValueKind.Null, c.GetProperty("finish_reason").ValueKind)); // never presented as complete
            var error = events[^1].GetProperty("error");
            Assert.Equal("upstream_error", error.GetProperty("code").GetString());
            Assert.Contains(upstream.Endpoint.ToString(), error.GetProperty("message").GetString());
            AssertKvFree(search);
        }
    }

    [Fact]
    public async Task TheRequestDeadlineCutsAHungUpstreamShortWith504()
    {
        await using var upstream = new FaultyUpstream(_ => Fault.Hang);
        var (server, search, _) = await StartAsync(upstream, requestTimeout: TimeSpan.FromMilliseconds(500), callTimeout: TimeSpan.FromSeconds(60));
        await using (server)
        using (search)
        {
            using var http = new HttpClient { BaseAddress = server.BaseAddress };
            var clock = Stopwatch.StartNew();
            var (status, body, _) = await Api.PostAsync(http, "v1/completions", Body);
            Assert.True(status == HttpStatusCode.GatewayTimeout, $"{status}: {body}");
            Assert.Equal("request_timeout", body.GetProperty("error").GetProperty("code").GetString());
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"the 0.5 s deadline, not the 60 s call timeout, ended it (took {clock.Elapsed})");
            AssertKvFree(search);
        }
    }
}
