using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using WeakToStrong.Chat;
using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;

namespace WeakToStrong.Tests.Search;

/// <summary>The black-box large model against an in-memory OpenAI-compatible completions server.</summary>
[Trait("Category", "Unit")]
public class RemoteLargeModelTests(SearchModelsFixture models) : IClassFixture<SearchModelsFixture>
{
    private const string Prompt = "The film was";

    private static readonly string[] Words = [" good", " bad", " long", " dull", " bright", " odd", " calm", " loud", " fine", " grim"];

    /// <summary>Answers each request with n continuations made of words picked from the prompt's hash.</summary>
    private sealed class FakeServer(Func<JsonNode, int, HttpResponseMessage?>? intercept = null) : HttpMessageHandler
    {
        public List<JsonNode> Requests { get; } = [];

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var body = JsonNode.Parse(await request.Content!.ReadAsStringAsync(cancellationToken))!;
            lock (Requests) Requests.Add(body);
            if (intercept?.Invoke(body, Requests.Count) is { } special) return special;
            int n = (int)body["n"]!, max = (int)body["max_tokens"]!;
            string prompt = (string)body["prompt"]!;
            var choices = new JsonArray();
            for (int i = 0; i < n; i++)
            {
                int h = StableHash(prompt, i);
                bool stop = h % 7 == 0;
                int words = stop ? 1 + h % max : max;
                var text = string.Concat(Enumerable.Range(0, words).Select(k => Words[(h / (k + 1) + k) % Words.Length]));
                choices.Add(new JsonObject { ["index"] = i, ["text"] = text, ["finish_reason"] = stop ? "stop" : "length" });
            }
            var reply = new JsonObject { ["choices"] = choices, ["usage"] = new JsonObject { ["completion_tokens"] = n * max } };
            return new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent(reply.ToJsonString(), Encoding.UTF8, "application/json") };
        }
    }

    /// <summary>FNV-1a over the prompt and the choice index: the same replies in every process (string.GetHashCode
    /// and HashCode.Combine are randomised per process, which made this server's answers differ between runs).</summary>
    private static int StableHash(string prompt, int choice)
    {
        uint h = 2166136261;
        foreach (char c in prompt) h = (h ^ c) * 16777619;
        h = (h ^ (uint)choice) * 16777619;
        return (int)(h & 0x7fffffff);
    }

    private static OpenAiCompletionsModel Remote(FakeServer server, TimeSpan? timeout = null, int retries = 3) => new(
        new OpenAiCompletionsOptions
        {
            Endpoint = new Uri("http://cluster.test/v1"), Model = "large", ApiKey = "k",
            InitialBackoff = TimeSpan.FromMilliseconds(1), Timeout = timeout ?? TimeSpan.FromSeconds(30), MaxRetries = retries,
        },
        new HttpClient(server));

    private Task<SearchResult> Run(ILargeModel large, SearchRequest request) =>
        SearchMethods.For(request.Method).RunAsync(new SearchContext(large, models.Tuned, models.Untuned), request);

    [Fact]
    public async Task ChunkBeamSearchAsksForKContinuationsPerSurvivorAndScoresTheText()
    {
        var server = new FakeServer();
        using var large = Remote(server);
        var request = new SearchRequest { Prompt = Prompt, BeamWidth = 2, Successors = 3, ChunkLength = 2, MaxNewTokens = 6, Trace = true, Seed = 1 };
        var result = await Run(large, request);

        Assert.Equal(6, (int)server.Requests[0]["n"]!);
        Assert.Equal(Prompt, (string)server.Requests[0]["prompt"]!);
        Assert.Equal(2, (int)server.Requests[0]["max_tokens"]!);
        Assert.Equal(50, (int)server.Requests[0]["top_k"]!);
        Assert.All(server.Requests.Skip(1), r => Assert.StartsWith(Prompt, (string)r["prompt"]!));
        Assert.Contains(server.Requests.Skip(1), r => (int)r["n"]! == 3);
        Assert.Equal(server.Requests.Count, large.Attempts);
        Assert.Empty(result.Tokens);

        foreach (var c in result.Trace!.SelectMany(t => t.Candidates))
        {
            double expected = IndependentScore.Score(models.Large, models.Tuned, models.Untuned, Prompt, c.Text, null, c.Finish != FinishReason.None);
            Assert.True(Math.Abs(c.Score - expected) <= 1e-3, $"'{c.Text}': reported {c.Score}, recomputed {expected}");
        }
        // This server reports usage = n × max_tokens, so every continuation counts its whole budget, length or stop.
        Assert.Equal(server.Requests.Sum(r => (long)(int)r["n"]! * (int)r["max_tokens"]!), result.Stats.LargeTokensSampled);
        Assert.Equal(0, result.Stats.LargeTokensFed); // what a remote model feeds is not known here
    }

    [Fact]
    public async Task StopStringsAreAppliedOnThisSideAndStayInTheText()
    {
        var server = new FakeServer((_, _) => new HttpResponseMessage(HttpStatusCode.OK)
        {
            Content = new StringContent("""{"choices":[{"index":0,"text":" fine. And more","finish_reason":"length"}],"usage":{"completion_tokens":4}}"""),
        });
        using var large = Remote(server);
        var result = await Run(large, new SearchRequest { Prompt = Prompt, Method = SearchMethodKind.Sample, MaxNewTokens = 8, StopStrings = ["."] });
        Assert.Equal(" fine.", result.Text);
        Assert.Equal(FinishReason.StopString, result.Finish);
        Assert.Null(server.Requests[0]["stop"]);
    }

    [Fact]
    public async Task TransientFailuresAreRetriedWithBackoff()
    {
        var server = new FakeServer((_, attempt) => attempt switch
        {
            1 => new HttpResponseMessage(HttpStatusCode.ServiceUnavailable),
            2 => new HttpResponseMessage(HttpStatusCode.TooManyRequests) { Headers = { RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(TimeSpan.FromMilliseconds(5)) } },
            _ => null,
        });
        using var large = Remote(server);
        var result = await Run(large, new SearchRequest { Prompt = Prompt, Method = SearchMethodKind.Sample, MaxNewTokens = 3 });
        Assert.Equal(3, large.Attempts);
        Assert.Equal(2, large.Retries);
        Assert.NotEmpty(result.Text);
    }

    [Fact]
    public async Task ClientErrorsFailAtOnceWithTheServersMessage()
    {
        var server = new FakeServer((_, _) => new HttpResponseMessage(HttpStatusCode.BadRequest)
        {
            Content = new StringContent("""{"error":{"message":"top_k is not supported","type":"invalid_request_error"}}"""),
        });
        using var large = Remote(server);
        var error = await Assert.ThrowsAsync<LargeModelUnavailableException>(() => Run(large, new SearchRequest { Prompt = Prompt, MaxNewTokens = 3 }));
        Assert.Contains("HTTP 400 top_k is not supported", error.Message);
        Assert.Equal(LargeModelFailure.Failed, error.Kind);
        Assert.Equal(1, error.Attempts);
        Assert.Equal(1, large.Attempts);
    }

    [Theory]
    [InlineData("""{"choices":[{"index":0,"text":"\ud800","finish_reason":"length"}]}""", "not valid Unicode")]
    [InlineData("""{"choices":[1]}""", "a choice is not an object")]
    [InlineData("""{"choices":{}}""", "no \"choices\" array")]
    [InlineData("""[]""", "no \"choices\" array")]
    [InlineData("""{"choices":[{"index":7,"text":"x"}]}""", "index 7")]
    [InlineData("""{"choices":[]}""", "asked for 1 continuations, got 0")]
    public async Task AReplyOfTheWrongShapeIsTheUpstreamsFailure(string reply, string message)
    {
        var server = new FakeServer((_, _) => new HttpResponseMessage(HttpStatusCode.OK) { Content = new StringContent(reply) });
        using var large = Remote(server);
        var error = await Assert.ThrowsAsync<LargeModelUnavailableException>(() => Run(large, new SearchRequest { Prompt = Prompt, Method = SearchMethodKind.Sample, MaxNewTokens = 3 }));
        Assert.Equal(LargeModelFailure.Failed, error.Kind);
        Assert.Equal(1, error.Attempts); // not retried: the upstream answered, wrongly
        Assert.Contains(message, error.Message);
        Assert.StartsWith(large.Name, error.Message);
    }

    [Fact]
    public async Task ASlowServerTimesOutAndIsRetriedThenGivenUp()
    {
        var server = new FakeServer();
        var slow = new SlowHandler(server);
        using var large = new OpenAiCompletionsModel(new OpenAiCompletionsOptions
        {
            Endpoint = new Uri("http://cluster.test/v1"), Model = "large", Timeout = TimeSpan.FromMilliseconds(100), MaxRetries = 1, InitialBackoff = TimeSpan.FromMilliseconds(1),
        }, new HttpClient(slow));
        var error = await Assert.ThrowsAsync<LargeModelUnavailableException>(() => Run(large, new SearchRequest { Prompt = Prompt, MaxNewTokens = 3 }));
        Assert.Equal(LargeModelFailure.Timeout, error.Kind);
        Assert.Equal(2, error.Attempts);
        Assert.Equal(1, large.Retries);
        Assert.Contains("gave up after 2 attempts", error.Message);
        Assert.Contains("no reply within 0.1 s", error.Message);
    }

    private sealed class SlowHandler(HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            await Task.Delay(TimeSpan.FromSeconds(10), cancellationToken);
            return await base.SendAsync(request, cancellationToken);
        }
    }

    [Fact]
    public async Task EftNeedsLogitsARemoteModelDoesNotExpose()
    {
        using var large = Remote(new FakeServer());
        var error = await Assert.ThrowsAsync<SearchException>(() => Run(large, new SearchRequest { Prompt = Prompt, Method = SearchMethodKind.EmulatedFineTuning }));
        Assert.Contains("remote", error.Message);
    }

    [Fact]
    public async Task ChatPromptsAreRenderedAsText()
    {
        var server = new FakeServer();
        using var large = new OpenAiCompletionsModel(new OpenAiCompletionsOptions
        {
            Endpoint = new Uri("http://cluster.test/v1/"), Model = "large", Template = ChatTemplate.Zephyr,
        }, new HttpClient(server));
        await Run(large, new SearchRequest { Prompt = "Hi", Method = SearchMethodKind.Sample, MaxNewTokens = 2, Chat = true });
        Assert.Equal("<|user|>\nHi</s>\n<|assistant|>\n", (string)server.Requests[0]["prompt"]!);

        // Earlier turns of a conversation are rendered into the remote's prompt too.
        await Run(large, new SearchRequest
        {
            Prompt = "More", SystemPrompt = "S", History = [ChatTurn.User("Hi"), ChatTurn.Assistant("Hello")], Method = SearchMethodKind.Sample, MaxNewTokens = 2, Chat = true,
        });
        Assert.Equal("<|system|>\nS</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello</s>\n<|user|>\nMore</s>\n<|assistant|>\n", (string)server.Requests[^1]["prompt"]!);
    }
}
