using System.Text.Json;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.DependencyInjection;
using WeakToStrong.Chat;
using WeakToStrong.ChatClient;
using WeakToStrong.Engine;
using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;
using WeakToStrong.Tests.Search;
using WeakToStrong.Tokenization;

namespace WeakToStrong.Tests.ChatClient;

[Trait("Category", "Unit")]
public class ChatClientTests(SearchModelsFixture models) : IClassFixture<SearchModelsFixture>
{
    private const string User = "Tell me about the movie you watched";
    private const string System = "You are a film critic.";

    private static readonly ChatMessage[] Messages = [new(ChatRole.System, System), new(ChatRole.User, User)];

    /// <summary>EOS off, so every candidate samples exactly MaxOutputTokens tokens and counts are exact.</summary>
    private static WeakToStrongChatClientOptions NoEos => new() { Defaults = new SearchRequest { Prompt = "", Chat = true, EosTokenIds = [] } };

    private WeakToStrongSearch Search(ChatModel? large = null, ILargeModel? largeModel = null, ChatModel? tuned = null, ChatModel? untuned = null) =>
        new(largeModel ?? new LocalLargeModel(large ?? models.Large), tuned ?? models.Tuned, untuned ?? models.Untuned);

    private static ChatOptions Options(int maxTokens = 12, long seed = 5, params (string Key, object? Value)[] w2s)
    {
        var options = new ChatOptions { MaxOutputTokens = maxTokens, Seed = seed, AdditionalProperties = [] };
        foreach (var (key, value) in w2s) options.AdditionalProperties[key] = value;
        return options;
    }

    private static SearchResult Raw(ChatResponse response) => Assert.IsType<SearchResult>(response.RawRepresentation);

    private void AssertAllKvReleased()
    {
        foreach (var m in new[] { models.Large, models.Tuned, models.Untuned, models.Llama })
            Assert.Equal(m.Transformer.Cache.TotalBlocks, m.Transformer.Cache.FreeBlocks);
    }

    [Theory]
    [InlineData("cbs")]
    [InlineData("bon")]
    [InlineData("eft")]
    [InlineData("sample")]
    public async Task PlainAndStreamingGiveTheSameTextForTheSameSeed(string method)
    {
        using var search = Search();
        using var client = search.AsChatClient();
        var options = Options(maxTokens: 16, w2s: (WeakToStrongChatKeys.Method, method));
        var plain = await client.GetResponseAsync(Messages, options);
        var updates = new List<ChatResponseUpdate>();
        await foreach (var update in client.GetStreamingResponseAsync(Messages, options)) updates.Add(update);

        Assert.Equal(plain.Text, string.Concat(updates.Select(u => u.Text)));
        // Best-of-N's samples diverge at once, so its text is final only at the end; the others stream as they go.
        if (method != "bon") Assert.True(updates.Count >= 2, "the text should stream in more than one update");
        var last = updates[^1];
        Assert.All(updates.SkipLast(1), u => Assert.Null(u.FinishReason));
        Assert.Equal(plain.FinishReason, last.FinishReason);
        var usage = Assert.Single(last.Contents.OfType<UsageContent>()).Details;
        Assert.Equal(plain.Usage!.OutputTokenCount, usage.OutputTokenCount);
        Assert.Equal(Raw(plain).Tokens.Count, usage.OutputTokenCount);
        Assert.Equal(models.Large.EncodePrompt(User, chat: true, System).Tokens.Count, usage.InputTokenCount);
        Assert.Equal(plain.AdditionalProperties![WeakToStrongChatKeys.Score], last.AdditionalProperties![WeakToStrongChatKeys.Score]);
        Assert.Equal(method, last.AdditionalProperties[WeakToStrongChatKeys.Method]);

        var combined = updates.ToChatResponse();
        Assert.Equal(plain.Text, combined.Text);
        Assert.Equal(ChatRole.Assistant, Assert.Single(combined.Messages).Role);
        AssertAllKvReleased();
    }

    [Theory]
    [InlineData("same-tokenizer")]
    [InlineData("cross-tokenizer")]
    public async Task TheScoreIsTunedMinusUntunedOfTheReturnedTextAsTheScoreCommandComputesIt(string setup)
    {
        var large = setup == "same-tokenizer" ? models.Large : models.Llama;
        using var search = Search(large);
        var response = await search.AsChatClient().GetResponseAsync(Messages, Options(maxTokens: 12, w2s: (WeakToStrongChatKeys.ChunkLength, 3)));

        // The small models have no chat template, so they read system + "\n\n" + user, and score the text tokenized
        // jointly with it (no large-model tokens: the text alone decides).
        string prompt = System + "\n\n" + User;
        bool finished = Raw(response).Finish != FinishReason.None;
        double tuned = IndependentScore.LogProb(models.Tuned, prompt, response.Text, sameVocabularyTokens: null, finished);
        double untuned = IndependentScore.LogProb(models.Untuned, prompt, response.Text, sameVocabularyTokens: null, finished);
        double score = Assert.IsType<double>(response.AdditionalProperties![WeakToStrongChatKeys.Score]);
        Assert.True(Math.Abs(score - (tuned - untuned)) <= 1e-3, $"reported {score}, recomputed {tuned - untuned}");
        Assert.True(Math.Abs((double)response.AdditionalProperties[WeakToStrongChatKeys.TunedLogProb]! - tuned) <= 1e-3);
        Assert.True(Math.Abs((double)response.AdditionalProperties[WeakToStrongChatKeys.UntunedLogProb]! - untuned) <= 1e-3);
        Assert.Equal(Raw(response).Stats.LargeTokensFed, Assert.IsType<long>(response.AdditionalProperties[WeakToStrongChatKeys.LargeTokensFed]));
        Assert.True(Raw(response).Stats.LargeTokensFed > 0, "a local large model feeds at least the prompt");
        double sampling = Assert.IsType<double>(response.AdditionalProperties[WeakToStrongChatKeys.SamplingMs]);
        double scoring = Assert.IsType<double>(response.AdditionalProperties[WeakToStrongChatKeys.ScoringMs]);
        Assert.True(sampling > 0 && sampling + scoring <= Assert.IsType<double>(response.AdditionalProperties[WeakToStrongChatKeys.WallMs]), $"sampling {sampling} + scoring {scoring} ms vs wall");
    }

    [Fact]
    public async Task EachModelReadsTheMessagesInItsOwnChatTemplate()
    {
        // The small pair as zephyr models, the large one (llama-tiny) without a template.
        using var tunedZephyr = new ChatModel(models.Tuned.Transformer, models.Tuned.Tokenizer, ChatTemplate.Zephyr, "tuned");
        using var untunedZephyr = new ChatModel(models.Untuned.Transformer, models.Untuned.Tokenizer, ChatTemplate.Zephyr, "untuned");
        using var search = Search(models.Llama, tuned: tunedZephyr, untuned: untunedZephyr);
        var response = await search.AsChatClient().GetResponseAsync(Messages, Options(maxTokens: 10));
        var result = Raw(response);

        // zephyr: "<|system|>\n{system}" EOS "\n<|user|>\n{user}" EOS "\n<|assistant|>\n", the response tokenized
        // together with the last text; the score is the Score call on those tokens.
        var tokenizer = models.Tuned.Tokenizer;
        int eos = tokenizer.EosTokenId!.Value;
        var prefix = tokenizer.Encode("<|system|>\n" + System).Append(eos).Concat(tokenizer.Encode("\n<|user|>\n" + User)).Append(eos).ToList();
        var promptTokens = prefix.Concat(tokenizer.Encode("\n<|assistant|>\n")).ToList();
        var joint = prefix.Concat(tokenizer.Encode("\n<|assistant|>\n" + response.Text)).ToList();
        int common = promptTokens.Zip(joint).TakeWhile(p => p.First == p.Second).Count();
        var continuation = joint.Skip(common).ToList();
        if (result.Finish != FinishReason.None) continuation.Add(eos);
        Assert.Equal(joint.Take(common), result.Tuned.PromptTokens);
        Assert.Equal(continuation, result.Tuned.ResponseTokens);
        double expected = models.Tuned.Model!.Score(joint.Take(common).ToList(), continuation).Sum(x => (double)x)
            - models.Untuned.Model!.Score(joint.Take(common).ToList(), continuation).Sum(x => (double)x);
        Assert.True(Math.Abs(result.Score - expected) <= 1e-3, $"reported {result.Score}, recomputed {expected}");

        // The large model read system + "\n\n" + user with its BOS.
        var llama = models.Llama.Tokenizer;
        var largePrompt = new[] { llama.BosTokenId!.Value }.Concat(llama.Encode(System + "\n\n" + User)).Count();
        Assert.Equal(largePrompt, response.Usage!.InputTokenCount);
    }

    // ---- one test per option ------------------------------------------------------------------------------

    /// <summary>Plain sampling of the large model alone with these settings (the engine's generate path).</summary>
    private List<int> Generate(int maxTokens, float temperature, int topK, float topP, ulong seed) =>
        models.Large.Model!.Generate(models.Large.EncodePrompt(User, chat: true, System).Tokens, maxTokens, new SamplingSettings(temperature, topK, topP, seed));

    private async Task<SearchResult> Ask(ChatOptions options, WeakToStrongChatClientOptions? clientOptions = null)
    {
        using var search = Search();
        return Raw(await search.AsChatClient(clientOptions ?? NoEos).GetResponseAsync(Messages, options));
    }

    [Fact]
    public async Task TemperatureZeroIsGreedy()
    {
        var options = Options(maxTokens: 10, w2s: (WeakToStrongChatKeys.Method, "sample"));
        options.Temperature = 0;
        Assert.Equal(Generate(10, 0, 50, 1, 0), (await Ask(options)).Tokens);
    }

    [Fact]
    public async Task TopKOneIsGreedyAtAnyTemperature()
    {
        var options = Options(maxTokens: 10, w2s: (WeakToStrongChatKeys.Method, "sample"));
        options.Temperature = 1.5f;
        options.TopK = 1;
        Assert.Equal(Generate(10, 0, 50, 1, 0), (await Ask(options)).Tokens);
    }

    [Fact]
    public async Task TopPMapsToNucleusSampling()
    {
        var options = Options(maxTokens: 10, seed: 8, w2s: (WeakToStrongChatKeys.Method, "sample"));
        options.TopP = 0.3f;
        Assert.Equal(Generate(10, 0.7f, 50, 0.3f, 8), (await Ask(options)).Tokens);
        Assert.NotEqual(Generate(10, 0.7f, 50, 1f, 8), Generate(10, 0.7f, 50, 0.3f, 8));
    }

    [Fact]
    public async Task SeedMapsToTheSamplingSeed()
    {
        var first = await Ask(Options(maxTokens: 10, seed: 11, w2s: (WeakToStrongChatKeys.Method, "sample")));
        var second = await Ask(Options(maxTokens: 10, seed: 12, w2s: (WeakToStrongChatKeys.Method, "sample")));
        Assert.Equal(Generate(10, 0.7f, 50, 1f, 11), first.Tokens);
        Assert.Equal(Generate(10, 0.7f, 50, 1f, 12), second.Tokens);
        Assert.NotEqual(first.Tokens, second.Tokens);
    }

    [Fact]
    public async Task WithoutASeedEachRequestDrawsOneAndReportsIt()
    {
        using var search = Search();
        using var client = search.AsChatClient(NoEos);
        var options = Options(maxTokens: 10, w2s: (WeakToStrongChatKeys.Method, "sample"));
        options.Seed = null;
        var first = await client.GetResponseAsync(Messages, options);
        var second = await client.GetResponseAsync(Messages, options);
        long seed = Assert.IsType<long>(first.AdditionalProperties![WeakToStrongChatKeys.Seed]);
        Assert.NotEqual(seed, second.AdditionalProperties![WeakToStrongChatKeys.Seed]);
        Assert.Equal(Generate(10, 0.7f, 50, 1f, unchecked((ulong)seed)), Raw(first).Tokens);

        options.Seed = seed;
        Assert.Equal(first.Text, (await client.GetResponseAsync(Messages, options)).Text);
    }

    [Fact]
    public async Task MaxOutputTokensBoundsTheResponse()
    {
        using var search = Search();
        var response = await search.AsChatClient(NoEos).GetResponseAsync(Messages, Options(maxTokens: 7));
        Assert.Equal(7, Raw(response).Tokens.Count);
        Assert.Equal(ChatFinishReason.Length, response.FinishReason);
        Assert.Equal("length", response.AdditionalProperties![WeakToStrongChatKeys.Finish]);
    }

    [Fact]
    public async Task StopSequencesEndTheResponse()
    {
        using var search = Search();
        var options = Options(maxTokens: 40, seed: 2);
        options.StopSequences = ["e"];
        var response = await search.AsChatClient(NoEos).GetResponseAsync(Messages, options);
        Assert.EndsWith("e", response.Text);
        Assert.Equal(1, response.Text.Count(c => c == 'e'));
        Assert.Equal(ChatFinishReason.Stop, response.FinishReason);
        Assert.Equal("stop_string", response.AdditionalProperties![WeakToStrongChatKeys.Finish]);
    }

    [Fact]
    public async Task MethodPicksTheSearch()
    {
        // With EOS off, CBS(2,2,3) over 12 tokens samples 4 candidates × 12 tokens in 4 chunks; Best-of-3 samples
        // 3 × 12 in one; EFT samples 12 one token at a time; plain sampling 12 in one chunk.
        var defaults = NoEos;
        defaults.Defaults = defaults.Defaults with { BeamWidth = 2, Successors = 2, ChunkLength = 3, N = 3 };
        var cbs = await Ask(Options(w2s: (WeakToStrongChatKeys.Method, "cbs")), defaults);
        var bon = await Ask(Options(w2s: (WeakToStrongChatKeys.Method, "bon")), defaults);
        var eft = await Ask(Options(w2s: (WeakToStrongChatKeys.Method, "eft")), defaults);
        var sample = await Ask(Options(w2s: (WeakToStrongChatKeys.Method, "sample")), defaults);
        Assert.Equal((48L, 4), (cbs.Stats.LargeTokensSampled, cbs.Stats.Chunks));
        Assert.Equal((36L, 1), (bon.Stats.LargeTokensSampled, bon.Stats.Chunks));
        Assert.Equal((12L, 0), (eft.Stats.LargeTokensSampled, eft.Stats.Chunks));
        Assert.Equal((12L, 1), (sample.Stats.LargeTokensSampled, sample.Stats.Chunks));
        Assert.Equal(Generate(12, 0.7f, 50, 1f, 5), sample.Tokens);
    }

    [Fact]
    public async Task BeamWidthAndSuccessorsSetTheCandidatesPerChunk()
    {
        var result = await Ask(Options(w2s: [(WeakToStrongChatKeys.BeamWidth, 3), (WeakToStrongChatKeys.Successors, 2), (WeakToStrongChatKeys.ChunkLength, 4)]));
        Assert.Equal((72L, 3), (result.Stats.LargeTokensSampled, result.Stats.Chunks));
    }

    [Fact]
    public async Task ChunkLengthSetsTheChunks()
    {
        var four = await Ask(Options(w2s: (WeakToStrongChatKeys.ChunkLength, 4)));
        var infinite = await Ask(Options(w2s: (WeakToStrongChatKeys.ChunkLength, "inf")));
        Assert.Equal(3, four.Stats.Chunks);
        Assert.Equal(1, infinite.Stats.Chunks);
    }

    [Fact]
    public async Task NSetsTheBestOfNSamples()
    {
        var result = await Ask(Options(w2s: [(WeakToStrongChatKeys.Method, "bon"), (WeakToStrongChatKeys.N, 5)]));
        Assert.Equal(60, result.Stats.LargeTokensSampled);
    }

    [Fact]
    public async Task BetaWeighsTheSmallPairInEft()
    {
        var plain = await Ask(Options(w2s: [(WeakToStrongChatKeys.Method, "eft"), (WeakToStrongChatKeys.Beta, 0)]));
        var steered = await Ask(Options(w2s: [(WeakToStrongChatKeys.Method, "eft"), (WeakToStrongChatKeys.Beta, 1.5)]));
        Assert.Equal(Generate(12, 0.7f, 50, 1f, 5), plain.Tokens); // β = 0 is the large model's own draw
        Assert.NotEqual(plain.Tokens, steered.Tokens);
    }

    [Fact]
    public async Task DedupeLetsOneOfIdenticalCandidatesCompete()
    {
        // Greedy: every candidate is the same. Without dedupe 2 survivors fork into 4; with it one survives into 2.
        var options = Options(maxTokens: 8, w2s: [(WeakToStrongChatKeys.BeamWidth, 2), (WeakToStrongChatKeys.Successors, 2), (WeakToStrongChatKeys.ChunkLength, 4)]);
        options.Temperature = 0;
        var kept = await Ask(options);
        options.AdditionalProperties![WeakToStrongChatKeys.Dedupe] = true;
        var deduped = await Ask(options);
        Assert.Equal(32, kept.Stats.LargeTokensSampled);
        Assert.Equal(24, deduped.Stats.LargeTokensSampled);
    }

    [Fact]
    public async Task ValuesMayBeNumbersStringsOrJsonElements()
    {
        object[] forms = [3, 3L, 3.0, 3m, "3", JsonDocument.Parse("3").RootElement, JsonDocument.Parse("\"3\"").RootElement];
        foreach (var form in forms)
        {
            var result = await Ask(Options(w2s: [(WeakToStrongChatKeys.BeamWidth, form), (WeakToStrongChatKeys.Successors, 1), (WeakToStrongChatKeys.ChunkLength, 4)]));
            Assert.Equal(36, result.Stats.LargeTokensSampled);
        }
        foreach (var form in new object[] { true, "true", "True", JsonDocument.Parse("true").RootElement })
        {
            var options = Options(maxTokens: 8, w2s: [(WeakToStrongChatKeys.Dedupe, form), (WeakToStrongChatKeys.BeamWidth, 2), (WeakToStrongChatKeys.Successors, 2), (WeakToStrongChatKeys.ChunkLength, 4)]);
            options.Temperature = 0;
            Assert.Equal(24, (await Ask(options)).Stats.LargeTokensSampled);
        }
    }

    [Theory]
    [InlineData("w2s.beam_widht", 2)]
    [InlineData("w2s.score", 1.0)]
    [InlineData(WeakToStrongChatKeys.BeamWidth, "four")]
    [InlineData(WeakToStrongChatKeys.BeamWidth, 2.5)]
    [InlineData(WeakToStrongChatKeys.BeamWidth, true)]
    [InlineData(WeakToStrongChatKeys.BeamWidth, 0)]
    [InlineData(WeakToStrongChatKeys.Successors, "")]
    [InlineData(WeakToStrongChatKeys.ChunkLength, "infinite")]
    [InlineData(WeakToStrongChatKeys.ChunkLength, -1)]
    [InlineData(WeakToStrongChatKeys.N, 1e12)]
    [InlineData(WeakToStrongChatKeys.Beta, "strong")]
    [InlineData(WeakToStrongChatKeys.Beta, double.NaN)]
    [InlineData(WeakToStrongChatKeys.Dedupe, 1)]
    [InlineData(WeakToStrongChatKeys.Method, "beam")]
    [InlineData(WeakToStrongChatKeys.Method, 3)]
    public async Task AnUnknownKeyOrAWrongValueIsAnArgumentExceptionNamingTheKey(string key, object value)
    {
        using var search = Search();
        using var client = search.AsChatClient();
        var options = Options(w2s: (key, value));
        var plain = await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync(Messages, options));
        Assert.Equal(key, plain.ParamName);
        Assert.Contains(key, plain.Message);
        var streaming = Assert.Throws<ArgumentException>(() => client.GetStreamingResponseAsync(Messages, options));
        Assert.Equal(key, streaming.ParamName);

        // The same value as a JSON element, as a deserialised request body carries it (JSON has no NaN).
        if (value is not double.NaN)
        {
            options.AdditionalProperties![key] = JsonSerializer.SerializeToElement(value);
            Assert.Equal(key, (await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync(Messages, options))).ParamName);
        }
        AssertAllKvReleased();
    }

    [Fact]
    public async Task OtherLayersKeysAreLeftAloneAndChatOptionsOutOfRangeNameTheOption()
    {
        using var search = Search();
        using var client = search.AsChatClient();
        var options = Options(maxTokens: 4, w2s: ("other.setting", "anything"));
        Assert.Equal(4, Raw(await client.GetResponseAsync(Messages, options)).Tokens.Count);

        options.TopP = 1.5f;
        Assert.Equal("ChatOptions.TopP", (await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync(Messages, options))).ParamName);
        await Assert.ThrowsAsync<NotSupportedException>(() => client.GetResponseAsync(Messages.Append(new ChatMessage(ChatRole.Tool, "42")), Options()));
        await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync([new ChatMessage(ChatRole.System, System)], Options()));
        var endsWithReply = await Assert.ThrowsAsync<ArgumentException>(() => client.GetResponseAsync(Messages.Append(new ChatMessage(ChatRole.Assistant, "Sure.")), Options()));
        Assert.Equal("messages", endsWithReply.ParamName);
        Assert.Contains("the last message must be a user message", endsWithReply.Message);
    }

    /// <summary>
    /// Earlier turns reach the large model and both small models. These are base models (no chat template), which
    /// render a conversation as its messages joined by blank lines: the conversation must search exactly as that one
    /// prompt does, and each model's prompt must be that text's tokens.
    /// </summary>
    [Fact]
    public async Task AConversationWithEarlierTurnsReachesEveryModel()
    {
        using var search = Search();
        using var client = search.AsChatClient(NoEos);
        ChatMessage[] conversation = [new(ChatRole.System, System), new(ChatRole.User, User), new(ChatRole.Assistant, "It was long."), new(ChatRole.User, "And the ending?")];
        const string joined = User + "\n\nIt was long.\n\nAnd the ending?";
        var turns = await client.GetResponseAsync(conversation, Options());
        var single = Raw(await client.GetResponseAsync([new(ChatRole.System, System), new(ChatRole.User, joined)], Options()));

        Assert.Equal(single.Tokens, Raw(turns).Tokens);
        Assert.Equal(single.Score, Raw(turns).Score);
        Assert.Equal(models.Large.EncodePrompt(System + "\n\n" + joined, chat: false).Tokens.Count, turns.Usage!.InputTokenCount);
        Assert.Equal(models.Tuned.EncodePrompt(System + "\n\n" + joined, chat: false).Tokens, Raw(turns).Tuned.PromptTokens);
        Assert.Equal(models.Untuned.EncodePrompt(System + "\n\n" + joined, chat: false).Tokens, Raw(turns).Untuned.PromptTokens);
        AssertAllKvReleased();
    }

    // ---- cancellation ---------------------------------------------------------------------------------------

    /// <summary>A local large model that cancels a token after its <c>after</c>-th extension (mid-search, deterministically).</summary>
    private sealed class CancellingLargeModel(LocalLargeModel inner, CancellationTokenSource cancel, int after) : ILargeModel
    {
        private int _extensions;

        public string Name => inner.Name;

        public bool SingleStepsAreCheap => inner.SingleStepsAreCheap;

        public TextTokenizer? Tokenizer => inner.Tokenizer;

        public Task<LargeCandidate> StartAsync(string prompt, GenerationSettings settings, SearchCounters counters, CancellationToken cancellationToken = default) =>
            inner.StartAsync(prompt, settings, counters, cancellationToken);

        public async Task ExtendAsync(IReadOnlyList<LargeCandidate> candidates, int maxTokens, SearchCounters counters, CancellationToken cancellationToken = default)
        {
            await inner.ExtendAsync(candidates, maxTokens, counters, cancellationToken);
            if (++_extensions == after) cancel.Cancel();
        }

        public void Dispose() => inner.Dispose();
    }

    [Fact]
    public async Task CancellingMidSearchFreesEveryKvBlock()
    {
        using var cancel = new CancellationTokenSource();
        var large = new CancellingLargeModel(new LocalLargeModel(models.Large), cancel, after: 3);
        using var search = Search(largeModel: large);
        using var client = search.AsChatClient(NoEos);
        var options = Options(maxTokens: 40, w2s: (WeakToStrongChatKeys.ChunkLength, 2));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.GetResponseAsync(Messages, options, cancel.Token));
        AssertAllKvReleased();

        using var streamCancel = new CancellationTokenSource();
        int updates = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var update in client.GetStreamingResponseAsync(Messages, Options(maxTokens: 40, w2s: (WeakToStrongChatKeys.Method, "sample")), streamCancel.Token))
                if (++updates == 3) streamCancel.Cancel();
        });
        Assert.Equal(3, updates);
        AssertAllKvReleased();

        // The search takes the next request.
        Assert.Equal(5, Raw(await client.GetResponseAsync(Messages, Options(maxTokens: 5))).Tokens.Count);
    }

    // ---- hosting --------------------------------------------------------------------------------------------

    [Fact]
    public async Task RegisteredWithServicesItComposesWithMiddlewareAndTheContainerOwnsTheSearch()
    {
        var seen = new List<long?>();
        var services = new ServiceCollection();
        services.AddWeakToStrongChatClient(_ => Search(), o => o.Defaults = o.Defaults with { EosTokenIds = [] })
            .Use(async (messages, options, next, cancellationToken) =>
            {
                seen.Add(options?.Seed);
                await next(messages, options, cancellationToken);
            });
        WeakToStrongSearch search;
        using (var provider = services.BuildServiceProvider())
        {
            var client = provider.GetRequiredService<IChatClient>();
            Assert.Equal("w2s", client.GetService<ChatClientMetadata>()!.ProviderName);
            search = client.GetService<WeakToStrongSearch>()!;
            Assert.Same(provider.GetRequiredService<WeakToStrongSearch>(), search);
            var response = await client.GetResponseAsync(Messages, Options(maxTokens: 6, seed: 9));
            Assert.Equal(6, Raw(response).Tokens.Count);
            Assert.Equal([9L], seen);

            using var direct = search.AsChatClient(NoEos);
            Assert.Equal(response.Text, (await direct.GetResponseAsync(Messages, Options(maxTokens: 6, seed: 9))).Text);
        }
        await Assert.ThrowsAsync<ObjectDisposedException>(() => search.RunAsync(new SearchRequest { Prompt = User }));
    }
}
