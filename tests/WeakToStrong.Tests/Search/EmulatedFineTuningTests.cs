using WeakToStrong.Engine;
using WeakToStrong.Search;

namespace WeakToStrong.Tests.Search;

[Trait("Category", "Unit")]
public class EmulatedFineTuningTests(SearchModelsFixture models) : IClassFixture<SearchModelsFixture>
{
    private const string Prompt = "The best thing about this film is";

    private Task<SearchResult> Run(ChatModel large, SearchRequest request) =>
        SearchMethods.For(SearchMethodKind.EmulatedFineTuning).RunAsync(models.Context(large, models.Tuned, models.Untuned), request with { Method = SearchMethodKind.EmulatedFineTuning });

    [Fact]
    public async Task BetaZeroIsPlainSamplingTokenForToken()
    {
        var result = await Run(models.Large, new SearchRequest { Prompt = Prompt, Beta = 0f, MaxNewTokens = 25, Seed = 13 });
        var plain = models.Large.Model!.Generate(models.Large.Tokenizer.Encode(Prompt), 25, new SamplingSettings(0.7f, 50, 1f, 13));
        Assert.Equal(plain, result.Tokens);
    }

    [Fact]
    public async Task BetaOneSteersAndReportsTheScoreOfItsText()
    {
        var request = new SearchRequest { Prompt = Prompt, Beta = 1f, MaxNewTokens = 25, Seed = 13 };
        var steered = await Run(models.Large, request);
        var plain = await Run(models.Large, request with { Beta = 0f });
        Assert.NotEqual(plain.Tokens, steered.Tokens);

        double expected = IndependentScore.Score(models.Large, models.Tuned, models.Untuned, Prompt, steered.Text, steered.Tokens, steered.Finish != FinishReason.None);
        Assert.True(Math.Abs(steered.Score - expected) <= 1e-3, $"reported {steered.Score}, recomputed {expected}");
        Assert.Equal(25, steered.Stats.LargeTokensSampled);
        // The prompt once, then each drawn token but the last.
        Assert.Equal(models.Large.Tokenizer.Encode(Prompt).Count + 25 - 1, steered.Stats.LargeTokensFed);
        var stats = steered.Stats;
        Assert.True(stats.SamplingMs > 0 && stats.ScoringMs > 0, $"sampling {stats.SamplingMs} ms, scoring {stats.ScoringMs} ms");
        Assert.True(stats.SamplingMs + stats.ScoringMs <= stats.WallMs, $"sampling {stats.SamplingMs} + scoring {stats.ScoringMs} ms exceed the wall time {stats.WallMs} ms");
        foreach (var m in new[] { models.Large, models.Tuned, models.Untuned })
            Assert.Equal(m.Transformer.Cache.TotalBlocks, m.Transformer.Cache.FreeBlocks);
    }

    [Fact]
    public async Task RefusesModelsWithDifferentVocabularies()
    {
        var error = await Assert.ThrowsAsync<SearchException>(() => Run(models.Llama, new SearchRequest { Prompt = Prompt, MaxNewTokens = 5 }));
        Assert.Contains("one vocabulary", error.Message);
        Assert.Contains("cbs or bon", error.Message);
    }
}
