using System.ClientModel;
using System.Text.Json;
using OpenAI;
using OpenAI.Chat;
using WeakToStrong.Chat;
using WeakToStrong.Search;

namespace WeakToStrong.Tests.Server;

/// <summary>
/// The OpenAI-compatible endpoints on a real server: each response is checked against the search it stands for,
/// run through the library with the documented mapping (choice i of a request uses seed + i; stop strings are cut
/// from the returned text), and streams against the non-streamed text.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ServerApiTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string Prompt = "The movie was";

    private OpenAIClient Client => new(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(server.Server.BaseAddress, "v1") });

    /// <summary>The search a request with these fields stands for (defaults: the published sentiment settings).</summary>
    private static SearchRequest Expected(string method, ulong seed, int maxTokens, bool chat = false) => new()
    {
        Prompt = Prompt,
        Chat = chat,
        Method = method switch
        {
            "cbs" => SearchMethodKind.ChunkBeamSearch,
            "bon" => SearchMethodKind.BestOfN,
            "eft" => SearchMethodKind.EmulatedFineTuning,
            _ => SearchMethodKind.Sample,
        },
        BeamWidth = 2,
        Successors = 2,
        ChunkLength = 3,
        N = 3,
        Seed = seed,
        MaxNewTokens = maxTokens,
    };

    private static string Body(string method, ulong seed, int maxTokens, string extra = "") =>
        $$"""{"model":"{{ServerFixture.Model}}","prompt":"{{Prompt}}","max_tokens":{{maxTokens}},"seed":{{seed}},"search":{"method":"{{method}}","beam_width":2,"successors":2,"chunk_length":3,"n":3}{{extra}}}""";

    [Fact]
    public async Task ModelsListsTheServedModel()
    {
        var models = (await Client.GetOpenAIModelClient().GetModelsAsync()).Value;
        Assert.Equal([ServerFixture.Model], models.Select(m => m.Id));
        var model = (await Client.GetOpenAIModelClient().GetModelAsync(ServerFixture.Model)).Value;
        Assert.Equal(ServerFixture.Model, model.Id);
        Assert.Equal("weak-to-strong", model.OwnedBy);
        var missing = await Assert.ThrowsAsync<ClientResultException>(() => Client.GetOpenAIModelClient().GetModelAsync("org/other-model"));
        Assert.Equal(404, missing.Status);
        Assert.Contains("model_not_found", missing.GetRawResponse()!.Content.ToString());
    }

    [Theory]
    [InlineData("cbs")]
    [InlineData("bon")]
    [InlineData("eft")]
    [InlineData("sample")]
    public async Task CompletionsRunEachMethodAndStreamTheSameText(string method)
    {
        const ulong seed = 42;
        const int maxTokens = 10;
        var expected = await server.Search.RunAsync(Expected(method, seed, maxTokens));
        var body = await Api.OkAsync(server.Http, "v1/completions", Body(method, seed, maxTokens));

        Assert.Equal("text_completion", body.GetProperty("object").GetString());
        Assert.Equal(ServerFixture.Model, body.GetProperty("model").GetString());
        Assert.Equal(expected.Text, Api.Text(body));
        Assert.Equal(expected.Finish == FinishReason.Length ? "length" : "stop", body.GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        var search = body.GetProperty("search");
        Assert.Equal(method, search.GetProperty("method").GetString());
        Assert.Equal(expected.Score, search.GetProperty("score").GetDouble());
        int chunks = search.GetProperty("chunks").GetInt32();
        long evaluated = search.GetProperty("candidates_evaluated").GetInt64();
        switch (method)
        {
            case "cbs":
                Assert.Equal(2, search.GetProperty("beam_width").GetInt32());
                Assert.Equal(4 * chunks, evaluated); // W·K candidates at every selection
                Assert.True(chunks >= 2);
                break;
            case "bon":
                Assert.Equal((1, 3L), (chunks, evaluated));
                break;
            case "eft":
                Assert.Equal((0, 1L), (chunks, evaluated));
                break;
            default:
                Assert.Equal((1, 1L), (chunks, evaluated));
                break;
        }
        var usage = body.GetProperty("usage");
        int promptTokens = server.Search.LocalModels[0].EncodePrompt(Prompt, false).Tokens.Count;
        Assert.Equal(promptTokens, usage.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(expected.Tokens.Count, usage.GetProperty("completion_tokens").GetInt32());
        Assert.Equal(promptTokens + expected.Tokens.Count, usage.GetProperty("total_tokens").GetInt32());
        Assert.Equal(expected.Stats.SmallTokensScored, usage.GetProperty("small_tokens_scored").GetInt64());
        Assert.Equal(expected.Stats.LargeTokensSampled, usage.GetProperty("large_tokens_sampled").GetInt64());
        Assert.Equal(expected.Stats.LargeTokensFed, usage.GetProperty("large_tokens_fed").GetInt64());
        Assert.True(expected.Stats.LargeTokensFed > 0, "a local large model feeds at least the prompt");

        var events = await Api.StreamAsync(server.Http, "v1/completions", Body(method, seed, maxTokens, ""","stream":true"""));
        Assert.Equal(expected.Text, Api.StreamedText(events));
        Assert.DoesNotContain(events, e => e.TryGetProperty("usage", out _)); // only with stream_options.include_usage
        Assert.Equal(body.GetProperty("choices")[0].GetProperty("finish_reason").GetString(), events[^1].GetProperty("choices")[0].GetProperty("finish_reason").GetString());
        if (method is "eft" or "sample")
            Assert.True(events.Count(e => e.GetProperty("choices")[0].GetProperty("text").GetString() != "") >= 2, "token-level methods stream text as it is drawn");
    }

    /// <summary>The server reads method names as the CLI and the chat client do: the best-of-n alias runs Best-of-N.</summary>
    [Fact]
    public async Task TheBestOfNAliasRunsBestOfN()
    {
        const ulong seed = 11;
        var expected = await server.Search.RunAsync(Expected("bon", seed, 6));
        var body = await Api.OkAsync(server.Http, "v1/completions", Body("best-of-n", seed, 6));
        Assert.Equal(expected.Text, Api.Text(body));
        Assert.Equal("bon", body.GetProperty("search").GetProperty("method").GetString());
        Assert.Equal(3, body.GetProperty("search").GetProperty("n").GetInt32());
        Assert.Equal(expected.Score, body.GetProperty("search").GetProperty("score").GetDouble(), 6);
    }

    [Fact]
    public async Task ChoicesUseConsecutiveSeedsAndUsageComesLastWhenAsked()
    {
        const ulong seed = 7;
        var body = await Api.OkAsync(server.Http, "v1/completions", Body("sample", seed, 8, ""","n":3"""));
        var texts = Enumerable.Range(0, 3).Select(i => Api.Text(body, i)).ToList();
        for (int i = 0; i < 3; i++)
            Assert.Equal((await server.Search.RunAsync(Expected("sample", seed + (ulong)i, 8))).Text, texts[i]);
        Assert.True(texts.Distinct().Count() > 1, "choices with different seeds should differ");

        var events = await Api.StreamAsync(server.Http, "v1/completions", Body("sample", seed, 8, ""","n":3,"stream":true,"stream_options":{"include_usage":true}"""));
        for (int i = 0; i < 3; i++) Assert.Equal(texts[i], Api.StreamedText(events, i));
        var last = events[^1];
        Assert.Equal(0, last.GetProperty("choices").GetArrayLength());
        Assert.Equal(body.GetProperty("usage").GetProperty("completion_tokens").GetInt32(), last.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        Assert.All(events.SkipLast(1), e => Assert.False(e.TryGetProperty("usage", out _)));
    }

    [Fact]
    public async Task BestOfReturnsTheNBestOfBestOfScoredSamples()
    {
        const ulong seed = 5;
        var body = await Api.OkAsync(server.Http, "v1/completions",
            $$"""{"model":"{{ServerFixture.Model}}","prompt":"{{Prompt}}","max_tokens":8,"seed":{{seed}},"best_of":4,"n":2}""");
        var bon = await server.Search.RunAsync(new SearchRequest { Prompt = Prompt, Method = SearchMethodKind.BestOfN, N = 4, Seed = seed, MaxNewTokens = 8, Trace = true });
        var ranked = bon.Trace![0].Candidates.OrderByDescending(c => c.Score).ThenBy(c => c.Index).ToList();
        Assert.Equal(2, body.GetProperty("choices").GetArrayLength());
        Assert.Equal(bon.Text, Api.Text(body, 0));
        Assert.Equal(ranked[1].Text, Api.Text(body, 1));
        var scores = body.GetProperty("search").GetProperty("scores").EnumerateArray().Select(s => s.GetDouble()).ToList();
        Assert.Equal(ranked[0].Score, scores[0]);
        Assert.Equal(ranked[1].Score, scores[1]);
        Assert.Equal("bon", body.GetProperty("search").GetProperty("method").GetString());
        Assert.Equal(4, body.GetProperty("search").GetProperty("n").GetInt32());
    }

    [Fact]
    public async Task StopSequencesEndTheTextAndAreLeftOut()
    {
        const ulong seed = 11;
        string free = Api.Text(await Api.OkAsync(server.Http, "v1/completions", Body("sample", seed, 24)));
        // A stop sequence that occurs in the free text, not at its start: the same draws stop just before it.
        int at = Enumerable.Range(2, free.Length - 4).First(i => char.IsLetter(free[i]) && char.IsLetter(free[i + 1]));
        string stop = free.Substring(at, 2);
        int first = free.IndexOf(stop, StringComparison.Ordinal);
        string stopJson = JsonSerializer.Serialize(stop);
        var body = await Api.OkAsync(server.Http, "v1/completions", Body("sample", seed, 24, $$""","stop":[{{stopJson}}]"""));
        Assert.Equal(free[..first], Api.Text(body));
        Assert.Equal("stop", body.GetProperty("choices")[0].GetProperty("finish_reason").GetString());

        var events = await Api.StreamAsync(server.Http, "v1/completions", Body("sample", seed, 24, $$""","stop":{{stopJson}},"stream":true"""));
        Assert.Equal(free[..first], Api.StreamedText(events));
    }

    [Fact]
    public async Task TopLevelSearchKeysAreAcceptedLikeExtraBody()
    {
        var body = await Api.OkAsync(server.Http, "v1/completions",
            $$"""{"model":"{{ServerFixture.Model}}","prompt":"{{Prompt}}","max_tokens":6,"seed":3,"method":"cbs","beam_width":2,"successors":2,"chunk_length":3}""");
        var expected = await server.Search.RunAsync(Expected("cbs", 3, 6));
        Assert.Equal(expected.Text, Api.Text(body));
        Assert.Equal(2, body.GetProperty("search").GetProperty("successors").GetInt32());
    }

#pragma warning disable OPENAI001 // Seed is marked experimental in the SDK
    [Fact]
    public async Task ChatThroughTheOfficialSdkStreamingAndNot()
    {
        var chat = Client.GetChatClient(ServerFixture.Model);
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 9, Seed = 21, Temperature = 0.7f };
        var messages = new List<OpenAI.Chat.ChatMessage> { new SystemChatMessage("Be kind."), new UserChatMessage(Prompt) };
        ChatCompletion completion = (await chat.CompleteChatAsync(messages, options)).Value;

        var expected = await server.Search.RunAsync(new SearchRequest { Prompt = Prompt, SystemPrompt = "Be kind.", Chat = true, Seed = 21, MaxNewTokens = 9 });
        Assert.Equal(expected.Text, completion.Content[0].Text);
        Assert.Equal(ChatMessageRole.Assistant, completion.Role);
        Assert.Equal(expected.Finish == FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop, completion.FinishReason);
        Assert.Equal(expected.Tokens.Count, completion.Usage.OutputTokenCount);

        var streamed = new System.Text.StringBuilder();
        ChatTokenUsage? usage = null;
        ChatFinishReason? finish = null;
        await foreach (var update in chat.CompleteChatStreamingAsync(messages, options))
        {
            foreach (var part in update.ContentUpdate) streamed.Append(part.Text);
            usage ??= update.Usage;
            finish ??= update.FinishReason;
        }
        Assert.Equal(expected.Text, streamed.ToString());
        Assert.Equal(completion.FinishReason, finish);
        Assert.NotNull(usage); // the SDK asks for stream_options.include_usage
        Assert.Equal(completion.Usage.TotalTokenCount, usage!.TotalTokenCount);
    }

    /// <summary>
    /// A conversation with earlier turns through the official SDK runs the library's search with those turns. These
    /// test models have no chat template, so the conversation renders as its messages joined by blank lines: it must
    /// answer, and count its prompt, exactly as that one user message does.
    /// </summary>
    [Fact]
    public async Task ChatWithEarlierTurnsThroughTheOfficialSdk()
    {
        var chat = Client.GetChatClient(ServerFixture.Model);
        var options = new ChatCompletionOptions { MaxOutputTokenCount = 9, Seed = 23, Temperature = 0.7f };
        var conversation = new List<OpenAI.Chat.ChatMessage>
        {
            new SystemChatMessage("Be kind."), new UserChatMessage(Prompt), new AssistantChatMessage("It rained."), new UserChatMessage("And then?"),
        };
        ChatCompletion completion = (await chat.CompleteChatAsync(conversation, options)).Value;

        var expected = await server.Search.RunAsync(new SearchRequest
        {
            Prompt = "And then?", SystemPrompt = "Be kind.", History = [ChatTurn.User(Prompt), ChatTurn.Assistant("It rained.")], Chat = true, Seed = 23, MaxNewTokens = 9,
        });
        Assert.Equal(expected.Text, completion.Content[0].Text);
        var joined = (await chat.CompleteChatAsync([new SystemChatMessage("Be kind."), new UserChatMessage(Prompt + "\n\nIt rained.\n\nAnd then?")], options)).Value;
        Assert.Equal(joined.Content[0].Text, completion.Content[0].Text);
        Assert.Equal(joined.Usage.InputTokenCount, completion.Usage.InputTokenCount);
        var single = (await chat.CompleteChatAsync([new SystemChatMessage("Be kind."), new UserChatMessage(Prompt)], options)).Value;
        Assert.True(completion.Usage.InputTokenCount > single.Usage.InputTokenCount, "the earlier turns should count as prompt tokens");
    }
#pragma warning restore OPENAI001

    [Fact]
    public async Task ChatTakesMaxCompletionTokensAndTheSearchObject()
    {
        var body = await Api.OkAsync(server.Http, "v1/chat/completions",
            $$$"""{"model":"{{{ServerFixture.Model}}}","messages":[{"role":"user","content":[{"type":"text","text":"{{{Prompt}}}"}]}],"max_completion_tokens":7,"seed":9,"search":{"method":"bon","n":3}}""");
        var expected = await server.Search.RunAsync(new SearchRequest { Prompt = Prompt, Chat = true, Seed = 9, MaxNewTokens = 7, Method = SearchMethodKind.BestOfN, N = 3 });
        Assert.Equal("chat.completion", body.GetProperty("object").GetString());
        Assert.Equal(expected.Text, Api.Text(body, chat: true));
        Assert.Equal("assistant", body.GetProperty("choices")[0].GetProperty("message").GetProperty("role").GetString());
        Assert.Equal(expected.Score, body.GetProperty("search").GetProperty("score").GetDouble());
    }

    [Fact]
    public async Task HealthReportsIdlePoolsAfterRequests()
    {
        await Api.OkAsync(server.Http, "v1/completions", Body("cbs", 1, 5));
        using var health = JsonDocument.Parse(await server.Http.GetStringAsync("health"));
        Assert.Equal("ok", health.RootElement.GetProperty("status").GetString());
        var kv = health.RootElement.GetProperty("kv").EnumerateArray().ToList();
        Assert.Equal(["large", "tuned", "untuned"], kv.Select(k => k.GetProperty("model").GetString()));
        Assert.All(kv, k => Assert.Equal(4096, k.GetProperty("total_blocks").GetInt32()));
    }

    [Fact]
    public async Task MetricsExposeTheServerInstrumentsAsPrometheusText()
    {
        await Api.OkAsync(server.Http, "v1/completions", Body("sample", 2, 4));
        await Api.StreamAsync(server.Http, "v1/completions", Body("sample", 2, 4, ""","stream":true"""));
        await Api.PostAsync(server.Http, "v1/completions", "{");
        string text = await server.Http.GetStringAsync("metrics");
        foreach (var name in new[]
        {
            "w2s_requests_total{", "w2s_large_tokens_sampled_total", "w2s_small_tokens_scored_total", "w2s_queue_depth",
            "w2s_batch_rows_bucket{", "w2s_time_to_first_token_seconds_bucket{", "w2s_request_duration_seconds_bucket{", "w2s_kv_blocks_in_use{",
        })
            Assert.Contains(name, text);
        Assert.Contains("status=\"400\"", text);
        Assert.Contains("model=\"large\"", text);
    }
}
