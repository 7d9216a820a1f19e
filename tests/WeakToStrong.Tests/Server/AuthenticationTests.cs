using System.ClientModel;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using WeakToStrong.Server;
using WeakToStrong.Server.Deployment;

namespace WeakToStrong.Tests.Server;

/// <summary>The key check alone: what counts as a presented key, and which hosts are reachable from outside.</summary>
[Trait("Category", "Unit")]
public sealed class ApiKeysTests
{
    [Theory]
    [InlineData("Bearer k-two", true)]
    [InlineData("bearer k-one", true)]
    [InlineData("Bearer   k-one  ", true)]
    [InlineData("Bearer k-on", false)]
    [InlineData("Bearer k-one2", false)]
    [InlineData("Bearer k-one,k-two", false)]
    [InlineData("Basic k-one", false)]
    [InlineData("k-one", false)]
    [InlineData("Bearer ", false)]
    [InlineData(null, false)]
    public void OnlyABearerHeaderWithAWholeKeyIsAccepted(string? authorization, bool accepted) =>
        Assert.Equal(accepted, new ApiKeys(["k-one", "k-two"]).Accepts(authorization));

    [Fact]
    public void KeysAreCommaSeparatedAndNoneMayBeEmpty()
    {
        Assert.Equal(["a", "b c"], ApiKeys.Parse(" a , b c ,,"));
        Assert.Empty(ApiKeys.Parse(null));
        Assert.Throws<ArgumentException>(() => new ApiKeys(["a", " "]));
    }

    [Theory]
    [InlineData("127.0.0.1", false)]
    [InlineData("127.0.0.2", false)]
    [InlineData("localhost", false)]
    [InlineData("[::1]", false)]
    [InlineData("::1", false)]
    [InlineData("*", true)]
    [InlineData("0.0.0.0", true)]
    [InlineData("[::]", true)]
    [InlineData("10.1.2.3", true)]
    public void OnlyLoopbackIsPrivate(string host, bool reachable) => Assert.Equal(reachable, ApiKeys.IsReachableFromOutside(host));
}

/// <summary>A server started with API keys: /v1 needs one, /health does not, /metrics by flag; the official SDK's apiKey works.</summary>
[Trait("Category", "Integration")]
[Collection(ExactMetricsCollection.Name)]
public sealed class AuthenticationTests(ServerModels models)
{
    private const string M = ServerFixture.Model;
    private static readonly string Completion = $$$"""{"model":"{{{M}}}","prompt":"Hi","max_tokens":2,"seed":1,"search":{"method":"sample"}}""";

    private async Task<(W2sServer Server, WeakToStrong.Search.WeakToStrongSearch Search)> StartAsync(bool metricsNeedKey)
    {
        var search = models.Load(kvBlocks: 512);
        var server = await W2sServer.StartAsync(search, new ServerOptions
        {
            Port = 0, Limits = ServerFixture.Limits, ApiKeys = ["first-key", "second-key"], MetricsNeedKey = metricsNeedKey,
        });
        return (server, search);
    }

    private static async Task<(HttpStatusCode Status, string Body, HttpResponseMessage Response)> SendAsync(HttpClient http, HttpMethod method, string path, string? key, string? json = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (key is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        if (json is not null) request.Content = new StringContent(json, System.Text.Encoding.UTF8, "application/json");
        var response = await http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), response);
    }

    private static void AssertInvalidKey(HttpStatusCode status, string body, HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.Unauthorized, status);
        Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
        using var doc = JsonDocument.Parse(body);
        var error = doc.RootElement.GetProperty("error");
        Assert.Equal("invalid_request_error", error.GetProperty("type").GetString());
        Assert.Equal("invalid_api_key", error.GetProperty("code").GetString());
        Assert.DoesNotContain("key\"", error.GetProperty("message").GetString()!); // the presented key is never echoed
    }

    [Fact]
    public async Task EveryV1RouteNeedsAKeyHealthAndMetricsDoNot()
    {
        var (server, search) = await StartAsync(metricsNeedKey: false);
        await using var _ = server;
        using var __ = search;
        using var http = new HttpClient { BaseAddress = server.BaseAddress };

        foreach (var (method, path, json) in new[]
        {
            (HttpMethod.Post, "v1/completions", Completion),
            (HttpMethod.Post, "v1/chat/completions", $$"""{"model":"{{M}}","messages":[{"role":"user","content":"Hi"}],"max_tokens":2}"""),
            (HttpMethod.Get, "v1/models", null),
            (HttpMethod.Get, $"v1/models/{M}", null),
            (HttpMethod.Get, "v1/no-such-route", null), // a guess at a route learns nothing without a key
        })
        {
            var missing = await SendAsync(http, method, path, null, json);
            AssertInvalidKey(missing.Status, missing.Body, missing.Response);
            Assert.Contains("didn't provide an API key", missing.Body);
            var wrong = await SendAsync(http, method, path, "first-ke", json);
            AssertInvalidKey(wrong.Status, wrong.Body, wrong.Response);
            Assert.Contains("Incorrect API key", wrong.Body);
        }

        var ok = await SendAsync(http, HttpMethod.Post, "v1/completions", "second-key", Completion);
        Assert.True(ok.Status == HttpStatusCode.OK, ok.Body);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(http, HttpMethod.Get, "v1/models", "first-key")).Status);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(http, HttpMethod.Get, "health", null)).Status);
        var metrics = await SendAsync(http, HttpMethod.Get, "metrics", null);
        Assert.Equal(HttpStatusCode.OK, metrics.Status);
        // Refusals are counted like any other answer: 2 per completions request above.
        Assert.Equal(2, MetricsText.Value(metrics.Body, "w2s_requests_total", ("endpoint", "completions"), ("status", "401")));
        Assert.Equal(1, MetricsText.Value(metrics.Body, "w2s_requests_total", ("endpoint", "completions"), ("status", "200")));
    }

    [Fact]
    public async Task MetricsCanBePutBehindTheKey()
    {
        var (server, search) = await StartAsync(metricsNeedKey: true);
        await using var _ = server;
        using var __ = search;
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        var refused = await SendAsync(http, HttpMethod.Get, "metrics", null);
        AssertInvalidKey(refused.Status, refused.Body, refused.Response);
        var scraped = await SendAsync(http, HttpMethod.Get, "metrics", "first-key");
        Assert.Equal(HttpStatusCode.OK, scraped.Status);
        Assert.Contains("w2s_kv_blocks_in_use", scraped.Body);
        Assert.Equal(HttpStatusCode.OK, (await SendAsync(http, HttpMethod.Get, "health", null)).Status);
    }

    [Fact]
    public async Task TheOfficialSdkSendsItsApiKey()
    {
        var (server, search) = await StartAsync(metricsNeedKey: false);
        await using var _ = server;
        using var __ = search;
        OpenAIClient Client(string key) => new(new ApiKeyCredential(key), new OpenAIClientOptions { Endpoint = new Uri(server.BaseAddress, "v1") });

        var models = (await Client("second-key").GetOpenAIModelClient().GetModelsAsync()).Value;
        Assert.Equal([M], models.Select(m => m.Id));
        var chat = (await Client("first-key").GetChatClient(M).CompleteChatAsync([new UserChatMessage("Hello")], new ChatCompletionOptions { MaxOutputTokenCount = 3 })).Value;
        Assert.Equal(ChatMessageRole.Assistant, chat.Role);

        var refused = await Assert.ThrowsAsync<ClientResultException>(() => Client("not-a-key").GetChatClient(M).CompleteChatAsync([new UserChatMessage("Hello")]));
        Assert.Equal(401, refused.Status);
        Assert.Contains("invalid_api_key", refused.GetRawResponse()!.Content.ToString());
    }
}
