using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;
using WeakToStrong.Server;
using WeakToStrong.Server.Protocol;
using WeakToStrong.Tests.Search;

namespace WeakToStrong.Tests.Server;

/// <summary>
/// The black-box path end to end: one server samples the large model (plain sampling, n = K continuations per
/// request); a second server, whose large model is the first one's URL, runs the search with its local small pair.
/// </summary>
[Trait("Category", "Integration")]
public sealed class BlackBoxServerTests(ServerFixture models) : IClassFixture<ServerFixture>
{
    private const string M = ServerFixture.Model;

    [Fact]
    public async Task ASearchServerSteersAnotherServerAsItsRemoteLargeModel()
    {
        using var innerSearch = models.Load(kvBlocks: 2048);
        await using var inner = await W2sServer.StartAsync(innerSearch, new ServerOptions
        {
            Port = 0,
            Limits = ServerFixture.Limits with { DefaultMethod = SearchMethodKind.Sample },
        });
        var remote = new OpenAiCompletionsModel(new OpenAiCompletionsOptions { Endpoint = new Uri(inner.BaseAddress, "v1"), Model = M, MaxRetries = 1 });
        using var outerSearch = models.Load(kvBlocks: 2048, remoteLarge: remote);
        await using var outer = await W2sServer.StartAsync(outerSearch, new ServerOptions { Port = 0, Limits = ServerFixture.Limits });
        using var http = new HttpClient { BaseAddress = outer.BaseAddress };
        long innerCalls = innerSearch.LocalModels[0].Transformer.ForwardCalls;

        const string prompt = "The film opens with";
        var body = await Api.OkAsync(http, "v1/completions",
            $$$"""{"model":"{{{M}}}","prompt":"{{{prompt}}}","max_tokens":9,"seed":4,"search":{"method":"cbs","beam_width":2,"successors":2,"chunk_length":3}}""");

        string text = Api.Text(body);
        var search = body.GetProperty("search");
        int chunks = search.GetProperty("chunks").GetInt32();
        Assert.True(chunks >= 2, $"9 tokens in chunks of 3 take several chunks (got {chunks})");
        Assert.Equal(4L * chunks, search.GetProperty("candidates_evaluated").GetInt64());
        Assert.True(innerSearch.LocalModels[0].Transformer.ForwardCalls > innerCalls, "the inner server's large model must have sampled");
        Assert.True(body.GetProperty("usage").GetProperty("large_tokens_sampled").GetInt64() > 0);
        Assert.Equal(2, outer.Admission.Models); // only the small pair is local to the outer server

        // The score is the small pair's, on the returned text re-tokenised (the remote's token ids are not visible).
        // Scored on separate copies of the small models: the server's run on its engine loop.
        using var tuned = ChatModel.Load(models.TunedDirectory);
        using var untuned = ChatModel.Load(models.UntunedDirectory);
        double expected = IndependentScore.Score(tuned, tuned, untuned, prompt, text, tokens: null, finished: true);
        Assert.Equal(expected, search.GetProperty("score").GetDouble(), 3);

        // Streaming through the remote path gives the same text (same seeds, same remote draws).
        var events = await Api.StreamAsync(http, "v1/completions",
            $$$"""{"model":"{{{M}}}","prompt":"{{{prompt}}}","max_tokens":9,"seed":4,"stream":true,"search":{"method":"cbs","beam_width":2,"successors":2,"chunk_length":3}}""");
        Assert.Equal(text, Api.StreamedText(events));
        foreach (var m in innerSearch.LocalModels.Concat(outerSearch.LocalModels)) Assert.Equal(0, m.Transformer.Cache.UsedBlocks);
    }
}
