using System.Text.Json.Nodes;
using WeakToStrong.Checkpoints;
using WeakToStrong.Engine;

namespace WeakToStrong.Tests.Engine;

/// <summary>Config variants that the golden fixtures do not cover directly, checked against fixtures that they do.</summary>
[Trait("Category", "Unit")]
public class FamilyConfigTests
{
    private static void EditConfig(TempDirectory dir, Action<JsonObject> edit)
    {
        var path = dir.File_("config.json");
        var config = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        edit(config);
        File.WriteAllText(path, config.ToJsonString());
    }

    [Fact]
    public void MistralIsTheLlamaArchitectureAndExplicitHeadDimIsHonoured()
    {
        using var dir = TestPaths.Temp().WithFixture("llama-tiny");
        EditConfig(dir, c =>
        {
            c["model_type"] = "mistral";
            c["head_dim"] = 16;
            c["sliding_window"] = 4096;
        });
        var c = GoldenCase.Load("llama-tiny")[2];
        using var mistral = LanguageModel.Load(dir.Path);
        Assert.Equal("mistral", mistral.Spec.Family);
        var got = mistral.Score(c.PromptTokens, c.ContinuationTokens);
        for (int i = 0; i < got.Length; i++) Assert.True(Math.Abs(got[i] - c.ContinuationLogprobs[i]) <= 2e-4);
    }

    [Fact]
    public void MistralSlidingWindowBoundsTheContextInsteadOfApproximating()
    {
        using var dir = TestPaths.Temp().WithFixture("llama-tiny");
        EditConfig(dir, c =>
        {
            c["model_type"] = "mistral";
            c["sliding_window"] = 32;
        });
        using var model = LanguageModel.Load(dir.Path);
        Assert.Equal(32, model.Spec.MaxPositions);
        Assert.Throws<ArgumentException>(() => model.Score(Enumerable.Range(1, 30).ToArray(), [5, 6, 7]));
    }

    [Fact]
    public void Llama3RopeScalingChangesEveryFrequencyRegime()
    {
        // Same weights, rope_scaling removed: the fixture's long case (past 90 positions) must then disagree with
        // the golden values; with it, it agrees (GoldenFixtureTests). This guards the scaling being applied at all.
        using var dir = TestPaths.Temp().WithFixture("llama31-small");
        EditConfig(dir, c => c.Remove("rope_scaling"));
        var c = GoldenCase.Load("llama31-small").OrderByDescending(g => g.PromptTokens.Length).First();
        using var unscaled = LanguageModel.Load(dir.Path);
        var got = unscaled.Score(c.PromptTokens, c.ContinuationTokens);
        double worst = got.Select((v, i) => Math.Abs(v - c.ContinuationLogprobs[i])).Max();
        Assert.True(worst > 1e-2, $"without llama3 scaling the log-probs should move; worst difference {worst}");

        var spec = ModelConfig.Load(TestPaths.Fixture("llama31-small"));
        var plain = ModelConfig.Load(dir.Path);
        // Wavelength 2π/θ: high-frequency dims (short wavelengths) keep θ; low-frequency ones are divided by 4.
        Assert.Equal(plain.Rope!.InverseFrequencies[0], spec.Rope!.InverseFrequencies[0]);
        Assert.Equal(plain.Rope.InverseFrequencies[^1] / 4, spec.Rope.InverseFrequencies[^1], 12);
    }

    [Fact]
    public void LinearRopeScalingDividesEveryFrequency()
    {
        using var dir = TestPaths.Temp().WithFixture("llama-tiny");
        EditConfig(dir, c => c["rope_scaling"] = new JsonObject { ["type"] = "linear", ["factor"] = 2.0 });
        var scaled = ModelConfig.Load(dir.Path).Rope!.InverseFrequencies;
        var plain = ModelConfig.Load(TestPaths.Fixture("llama-tiny")).Rope!.InverseFrequencies;
        for (int i = 0; i < plain.Length; i++) Assert.Equal(plain[i] / 2, scaled[i], 15);
    }
}
