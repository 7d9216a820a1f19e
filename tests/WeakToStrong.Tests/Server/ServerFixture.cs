using System.Net;
using System.Text;
using System.Text.Json;
using WeakToStrong.Engine;
using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;
using WeakToStrong.Server;
using WeakToStrong.Server.Protocol;
using WeakToStrong.Tests.Search;

namespace WeakToStrong.Tests.Server;

/// <summary>
/// A real <see cref="W2sServer"/> on 127.0.0.1 with a random port, over a GPT-2-vocabulary large model and small
/// pair with random weights (the search tests' models), on one engine loop.
/// </summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public const string Model = "w2s-test";

    private readonly TempDirectory _folder = TestPaths.Temp();

    public string LargeDirectory { get; private set; } = "";

    public string TunedDirectory { get; private set; } = "";

    public string UntunedDirectory { get; private set; } = "";

    public WeakToStrongSearch Search { get; private set; } = null!;

    public W2sServer Server { get; private set; } = null!;

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromMinutes(5) };

    public static RequestLimits Limits => new() { ModelName = Model, MaxTokens = 200, MaxChoices = 8, MaxCandidates = 32 };

    public async Task InitializeAsync()
    {
        LargeDirectory = SearchTestModels.WriteGpt2(_folder.Path, "large", seed: 11, dim: 48, layers: 3);
        TunedDirectory = SearchTestModels.WriteGpt2(_folder.Path, "tuned", seed: 22);
        UntunedDirectory = SearchTestModels.WriteGpt2(_folder.Path, "untuned", seed: 33);
        Search = Load(kvBlocks: 4096);
        Server = await W2sServer.StartAsync(Search, new ServerOptions { Port = 0, Limits = Limits, MaxBodyBytes = 64 * 1024 });
        Http.BaseAddress = Server.BaseAddress;
    }

    /// <summary>The same three models on their own engine loop, with pools of <paramref name="kvBlocks"/> blocks.</summary>
    public WeakToStrongSearch Load(int kvBlocks, ILargeModel? remoteLarge = null) => WeakToStrongSearch.Load(new SearchModelOptions
    {
        LargeDirectory = remoteLarge is null ? LargeDirectory : null,
        LargeModel = remoteLarge,
        TunedDirectory = TunedDirectory,
        UntunedDirectory = UntunedDirectory,
        Model = new ModelOptions { KvBlocks = kvBlocks },
        ContinuousBatching = true,
    });

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
        Search.Dispose();
        _folder.Dispose();
    }
}

/// <summary>Raw HTTP calls (the official SDK has no legacy completions client) and SSE parsing.</summary>
internal static class Api
{
    public static async Task<(HttpStatusCode Status, JsonElement Body, HttpResponseMessage Response)> PostAsync(HttpClient http, string path, string json, CancellationToken cancellationToken = default)
    {
        using var content = new StringContent(json, Encoding.UTF8, "application/json");
        var response = await http.PostAsync(path, content, cancellationToken);
        string text = await response.Content.ReadAsStringAsync(cancellationToken);
        return (response.StatusCode, JsonDocument.Parse(text).RootElement.Clone(), response);
    }

    public static async Task<JsonElement> OkAsync(HttpClient http, string path, string json)
    {
        var (status, body, _) = await PostAsync(http, path, json);
        Assert.True(status == HttpStatusCode.OK, $"{status}: {body}");
        return body;
    }

    /// <summary>Every <c>data:</c> event of a stream, which must end with [DONE].</summary>
    public static async Task<List<JsonElement>> StreamAsync(HttpClient http, string path, string json)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var events = new List<JsonElement>();
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        bool done = false;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.Length == 0) continue;
            Assert.StartsWith("data: ", line);
            Assert.False(done, "nothing may follow [DONE]");
            string data = line["data: ".Length..];
            if (data == "[DONE]") done = true;
            else events.Add(JsonDocument.Parse(data).RootElement.Clone());
        }
        Assert.True(done, "the stream must end with data: [DONE]");
        return events;
    }

    /// <summary>Concatenated text of one choice over a stream's chunks (completions "text", chat "delta.content").</summary>
    public static string StreamedText(List<JsonElement> events, int index = 0, bool chat = false) => string.Concat(
        events.SelectMany(e => e.GetProperty("choices").EnumerateArray())
            .Where(c => c.GetProperty("index").GetInt32() == index)
            .Select(c => chat
                ? c.GetProperty("delta").TryGetProperty("content", out var t) ? t.GetString() : ""
                : c.GetProperty("text").GetString()));

    /// <summary>The text of a choice of a non-streamed response.</summary>
    public static string Text(JsonElement body, int index = 0, bool chat = false)
    {
        var choice = body.GetProperty("choices")[index];
        Assert.Equal(index, choice.GetProperty("index").GetInt32());
        return chat ? choice.GetProperty("message").GetProperty("content").GetString()! : choice.GetProperty("text").GetString()!;
    }
}
