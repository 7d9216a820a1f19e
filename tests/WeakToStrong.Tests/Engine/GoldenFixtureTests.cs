using WeakToStrong.Engine;

namespace WeakToStrong.Tests.Engine;

/// <summary>Our forward against Hugging Face transformers' own numbers (golden.json, float64 reference).</summary>
[Trait("Category", "Unit")]
public class GoldenFixtureTests
{
    /// <summary>The bar; a correct float32 runtime lands near 1e-5 (fixtures README).</summary>
    private const double LogProbTolerance = 2e-4;

    [Theory]
    [MemberData(nameof(TestPaths.FixtureNames), MemberType = typeof(TestPaths))]
    public void ContinuationLogProbsMatchTransformers(string fixture)
    {
        using var model = LanguageModel.Load(TestPaths.Fixture(fixture));
        foreach (var c in GoldenCase.Load(fixture))
        {
            var logprobs = model.Score(c.PromptTokens, c.ContinuationTokens);
            Assert.Equal(c.ContinuationLogprobs.Length, logprobs.Length);
            for (int i = 0; i < logprobs.Length; i++)
                Assert.True(Math.Abs(logprobs[i] - c.ContinuationLogprobs[i]) <= LogProbTolerance,
                    $"{fixture} token {i}: ours {logprobs[i]}, transformers {c.ContinuationLogprobs[i]}");
        }
    }

    [Theory]
    [MemberData(nameof(TestPaths.FixtureNames), MemberType = typeof(TestPaths))]
    public void GreedyTokensMatchTransformers(string fixture)
    {
        using var model = LanguageModel.Load(TestPaths.Fixture(fixture));
        foreach (var c in GoldenCase.Load(fixture))
        {
            var tokens = model.Generate(c.PromptTokens, c.GreedyTokens.Length, SamplingSettings.Greedy);
            Assert.Equal(c.GreedyTokens, tokens.ToArray());
        }
    }
}
