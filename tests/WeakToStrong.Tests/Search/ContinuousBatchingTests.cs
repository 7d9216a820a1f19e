using WeakToStrong.Engine;
using WeakToStrong.Engine.Scheduling;
using WeakToStrong.Search;

namespace WeakToStrong.Tests.Search;

/// <summary>
/// Many searches on one engine loop: their steps are merged into shared forwards, and each seeded search returns
/// what it returns alone (the serial <see cref="WeakToStrongSearch"/> without a loop is the reference).
/// </summary>
[Trait("Category", "Unit")]
public sealed class ContinuousBatchingTests(SearchModelsFixture models) : IClassFixture<SearchModelsFixture>
{
    private WeakToStrongSearch Load(bool batching) => WeakToStrongSearch.Load(new SearchModelOptions
    {
        LargeDirectory = models.LargeDirectory,
        TunedDirectory = models.TunedDirectory,
        UntunedDirectory = models.UntunedDirectory,
        Model = new ModelOptions { KvBlocks = 2048 },
        ContinuousBatching = batching,
    });

    private static List<SearchRequest> MixedRequests() =>
    [
        .. Enumerable.Range(0, 12).Select(i => new SearchRequest
        {
            Prompt = $"Prompt number {i} says",
            Method = (SearchMethodKind)(i % 4),
            BeamWidth = 2,
            Successors = 2,
            ChunkLength = 3,
            N = 3,
            MaxNewTokens = 6 + i % 5,
            Seed = (ulong)(100 + i),
            EosTokenIds = [],
        }),
    ];

    [Fact]
    public async Task ConcurrentSearchesEqualTheirSoloResultsAndShareForwards()
    {
        var requests = MixedRequests();
        List<SearchResult> solo;
        using (var serial = Load(batching: false))
        {
            solo = [];
            foreach (var r in requests) solo.Add(await serial.RunAsync(r));
        }

        using var search = Load(batching: true);
        var batches = new List<BatchedForward>();
        search.Loop!.ForwardCompleted += b => batches.Add(b);
        var together = await Task.WhenAll(requests.Select(r => Task.Run(() => search.RunAsync(r))));

        for (int i = 0; i < requests.Count; i++)
        {
            Assert.Equal(solo[i].Tokens, together[i].Tokens);
            Assert.Equal(solo[i].Text, together[i].Text);
            // Bit for bit: the batched forwards compute every row as the solo forward does.
            Assert.Equal(solo[i].Score, together[i].Score);
            Assert.Equal(solo[i].Finish, together[i].Finish);
        }
        // Steps of different searches ran in the same forward: some batch merged several callers.
        Assert.Contains(batches, b => b.Submissions > 1);
        Assert.True(batches.Count < together.Sum(r => r.Stats.ForwardCalls),
            "merged forwards must be fewer than the searches' own forward calls");
        foreach (var m in search.LocalModels) Assert.Equal(0, m.Transformer.Cache.UsedBlocks);
    }

    [Fact]
    public async Task CancelledSearchesFreeTheirKvAndOthersFinish()
    {
        using var search = Load(batching: true);
        var longOnes = Enumerable.Range(0, 4).Select(i => new SearchRequest { Prompt = $"long {i}", MaxNewTokens = 200, EosTokenIds = [], Seed = (ulong)i }).ToList();
        using var cancel = new CancellationTokenSource();
        var cancelled = longOnes.Select(r => Task.Run(() => search.RunAsync(r, cancel.Token))).ToList();
        var survivor = Task.Run(() => search.RunAsync(new SearchRequest { Prompt = "short one", MaxNewTokens = 8, EosTokenIds = [], Seed = 9 }));
        while (search.Context.Tuned.Transformer.Cache.UsedBlocks == 0) await Task.Delay(5);
        cancel.Cancel();
        foreach (var t in cancelled) await Assert.ThrowsAnyAsync<OperationCanceledException>(() => t);
        var result = await survivor;
        Assert.Equal(8, result.Tokens.Count);
        foreach (var m in search.LocalModels) Assert.Equal(0, m.Transformer.Cache.UsedBlocks);
    }

    [Fact]
    public async Task ADirectForwardOnALoopModelIsRefused()
    {
        using var search = Load(batching: true);
        var model = search.Context.Tuned.Transformer;
        using var sequence = model.CreateSequence([1, 2, 3]);
        var e = Assert.Throws<InvalidOperationException>(() => model.Forward([new ForwardRequest(sequence)]));
        Assert.Contains("ForwardAsync", e.Message);
        var results = await model.ForwardAsync([new ForwardRequest(sequence, TargetLogProbs: true)]);
        Assert.Equal(2, results[0].TargetLogProbs.Length);
    }
}
