using System.Diagnostics;
using System.Net;
using System.Text.Json;
using WeakToStrong.Search;
using WeakToStrong.Server;

namespace WeakToStrong.Tests.Server;

/// <summary>
/// Graceful shutdown in process (<see cref="W2sServer.StopAsync"/>, which SIGTERM and Ctrl-C trigger through the
/// host): new requests get 503 during the drain, requests in flight finish, those past the drain time are cancelled
/// with their KV freed; and the whole-request deadline on a local model.
/// </summary>
[Trait("Category", "Integration")]
[Collection(ExactMetricsCollection.Name)]
public sealed class ShutdownTests(ServerModels models)
{
    private const string M = ServerFixture.Model;

    private static string Sample(int maxTokens, bool stream = false) =>
        $$$"""{"model":"{{{M}}}","prompt":"The film was","max_tokens":{{{maxTokens}}},"seed":5,"stream":{{{(stream ? "true" : "false")}}},"search":{"method":"sample"}}""";

    /// <summary>Polls until <paramref name="condition"/> holds (30 s at most).</summary>
    private static async Task Until(Func<Task<bool>> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"timed out waiting for {what}");
            await Task.Delay(10);
        }
    }

    private static void AssertKvFree(WeakToStrongSearch search) =>
        Assert.All(search.LocalModels, m => Assert.Equal(0, m.Transformer.Cache.UsedBlocks));

    [Fact]
    public async Task RequestsInFlightFinishWhileNewOnesGet503()
    {
        using var search = models.Load(kvBlocks: 512);
        var server = await W2sServer.StartAsync(search, new ServerOptions { Port = 0, Limits = ServerFixture.Limits });
        await using var _ = server;
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        using var probe = new HttpClient { BaseAddress = server.BaseAddress };

        // In flight: its body is half sent when the stop begins.
        var body = new GatedContent(Sample(maxTokens: 6));
        var inFlight = http.PostAsync("v1/completions", body);
        await body.FirstHalfSent;
        await Until(async () => MetricsText.Value(await probe.GetStringAsync("metrics"), "w2s_requests_in_flight") >= 2, "the gated request to be in flight");

        var stopping = server.StopAsync();
        await Until(async () => (await probe.GetAsync("health")).StatusCode == HttpStatusCode.ServiceUnavailable, "the drain to start");
        var (status, refused, response) = await Api.PostAsync(probe, "v1/completions", Sample(maxTokens: 2));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Equal("server_shutting_down", refused.GetProperty("error").GetProperty("code").GetString());
        Assert.True(response.Headers.ConnectionClose, "a refused client is told to reconnect (elsewhere)");
        Assert.False(stopping.IsCompleted, "the server waits for the request in flight");

        body.Release();
        using var answer = await inFlight;
        string text = await answer.Content.ReadAsStringAsync();
        Assert.True(answer.StatusCode == HttpStatusCode.OK, text);
        using var json = JsonDocument.Parse(text);
        Assert.Equal(6, json.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        await stopping.WaitAsync(TimeSpan.FromSeconds(30));
        AssertKvFree(search);
        await Assert.ThrowsAsync<HttpRequestException>(() => probe.GetAsync("health")); // no longer listening
    }

    [Fact]
    public async Task RequestsPastTheDrainTimeAreCancelledAndTheirKvFreed()
    {
        using var search = models.Load(kvBlocks: 512);
        // Each forward takes at least 50 ms: 200 tokens take 10 s or more, far past the 0.5 s drain.
        search.Loop!.ForwardCompleted += _ => Thread.Sleep(50);
        var server = await W2sServer.StartAsync(search, new ServerOptions
        {
            Port = 0, Limits = ServerFixture.Limits, ShutdownTimeout = TimeSpan.FromMilliseconds(500),
        });
        await using var _ = server;
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        var plain = Api.PostAsync(http, "v1/completions", Sample(maxTokens: 200));
        var streamed = Api.StreamAsync(http, "v1/completions", Sample(maxTokens: 200, stream: true));
        // Sampling holds the large model's KV from the start (the small pair scores only at the end).
        await Until(() => Task.FromResult(server.Admission.Running == 2 && search.LocalModels[0].Transformer.Cache.UsedBlocks > 0), "both requests to run");

        var clock = Stopwatch.StartNew();
        await server.StopAsync();
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"200 forwards of 50 ms or more take 10 s; the drain gave up after 0.5 s (stopping took {clock.Elapsed})");

        var (status, error, _) = await plain;
        Assert.Equal(HttpStatusCode.ServiceUnavailable, status);
        Assert.Equal("server_shutting_down", error.GetProperty("error").GetProperty("code").GetString());
        var events = await streamed;
        Assert.Equal("server_shutting_down", events[^1].GetProperty("error").GetProperty("code").GetString());
        Assert.All(events.SkipLast(1).SelectMany(e => e.GetProperty("choices").EnumerateArray()),
            c => Assert.Equal(JsonValueKind.Null, c.GetProperty("finish_reason").ValueKind));
        AssertKvFree(search);
    }

    [Fact]
    public async Task TheRequestDeadlineCancelsALocalSearchWith504()
    {
        using var search = models.Load(kvBlocks: 512);
        search.Loop!.ForwardCompleted += _ => Thread.Sleep(50);
        var server = await W2sServer.StartAsync(search, new ServerOptions
        {
            Port = 0, Limits = ServerFixture.Limits, RequestTimeout = TimeSpan.FromMilliseconds(500),
        });
        await using var _ = server;
        using var http = new HttpClient { BaseAddress = server.BaseAddress };

        var clock = Stopwatch.StartNew();
        var (status, body, _) = await Api.PostAsync(http, "v1/completions", Sample(maxTokens: 200));
        Assert.True(status == HttpStatusCode.GatewayTimeout, $"{status}: {body}");
        Assert.Equal("request_timeout", body.GetProperty("error").GetProperty("code").GetString());
        Assert.Contains("0.5 s", body.GetProperty("error").GetProperty("message").GetString());
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(8), $"200 forwards of 50 ms or more would take 10 s; the deadline ended it after {clock.Elapsed}");
        AssertKvFree(search);

        var events = await Api.StreamAsync(http, "v1/completions", Sample(maxTokens: 200, stream: true));
        Assert.Equal("request_timeout", events[^1].GetProperty("error").GetProperty("code").GetString());
        AssertKvFree(search);
        var quick = await Api.OkAsync(http, "v1/completions", Sample(maxTokens: 1)); // within the deadline: served as usual
        Assert.Equal(1, quick.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
    }
}
