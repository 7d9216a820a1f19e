using System.Text.Json;
using WeakToStrong.Cli.Rewards;

namespace WeakToStrong.Tests.Sentiment;

/// <summary>
/// Our VADER against the npm package vader-sentiment 1.1.3 itself: TestData/vader holds the package's scores of 407
/// sentences (tools/vader-fixture/make.js), and a few rules are checked on hand-computed values.
/// </summary>
[Trait("Category", "Unit")]
public class VaderSentimentTests
{
    private static readonly VaderSentiment Vader = VaderSentiment.Default;

    // The package rounds the compound to 4 decimals and the proportions to 3 (JavaScript's toFixed): ours, unrounded,
    // must lie within half a unit of the last digit it printed.
    private const double CompoundTolerance = 0.5e-4 + 1e-12;
    private const double ProportionTolerance = 0.5e-3 + 1e-12;

    private sealed record Expected(string Text, double Compound, double Pos, double Neu, double Neg);

    private static List<Expected> Fixture()
    {
        string path = Path.Combine(AppContext.BaseDirectory, "TestData", "vader", "vader-sentiment-1.1.3.jsonl");
        return File.ReadLines(path).Where(l => l.Length > 0).Select(l =>
        {
            using var doc = JsonDocument.Parse(l);
            var e = doc.RootElement;
            return new Expected(e.GetProperty("text").GetString()!, e.GetProperty("compound").GetDouble(), e.GetProperty("pos").GetDouble(),
                e.GetProperty("neu").GetDouble(), e.GetProperty("neg").GetDouble());
        }).ToList();
    }

    [Fact]
    public void EverySentenceOfTheFixtureScoresAsThePackageScoresIt()
    {
        var fixture = Fixture();
        Assert.Equal(407, fixture.Count);
        // Every rule family is represented by a sentence the package scores away from zero.
        Assert.True(fixture.Count(e => e.Compound > 0.05) > 100 && fixture.Count(e => e.Compound < -0.05) > 40);
        var wrong = new List<string>();
        foreach (var e in fixture)
        {
            var s = Vader.Score(e.Text);
            if (Math.Abs(s.Compound - e.Compound) > CompoundTolerance || Math.Abs(s.Positive - e.Pos) > ProportionTolerance
                || Math.Abs(s.Neutral - e.Neu) > ProportionTolerance || Math.Abs(s.Negative - e.Neg) > ProportionTolerance)
                wrong.Add($"{JsonSerializer.Serialize(e.Text)}: package {e.Compound}/{e.Pos}/{e.Neu}/{e.Neg}, ours {s.Compound}/{s.Positive}/{s.Neutral}/{s.Negative}");
        }
        Assert.True(wrong.Count == 0, string.Join("\n", wrong));
    }

    [Fact]
    public void TheBundledLexiconIsThePackages()
    {
        Assert.Equal(7503, Vader.Count);
        // "good" is rated 1.9: compound = 1.9 / sqrt(1.9² + 15).
        Assert.Equal(1.9 / Math.Sqrt(1.9 * 1.9 + 15), Vader.Compound("good"), 1e-12);
    }

    [Theory]
    // "good" 1.9 after "very" (a booster, +0.293): 2.193
    [InlineData("very good", 2.193)]
    // negated: 1.9 × −0.74
    [InlineData("not good", 1.9 * -0.74)]
    // ALL CAPS among lower-case words: 1.9 + 0.733
    [InlineData("so GOOD here", 1.9 + 0.733 + 0.293)]
    // two exclamation marks: 1.9 + 2 × 0.292
    [InlineData("good!!", 1.9 + 2 * 0.292)]
    // "but": before it counts half, after it 1.5 times: 1.9 × 0.5 + (−2.5) × 1.5
    [InlineData("good but bad", 1.9 * 0.5 - 2.5 * 1.5)]
    public void RulesChangeTheSumAsVaderDefinesThem(string text, double sum) =>
        Assert.Equal(sum / Math.Sqrt(sum * sum + 15), Vader.Compound(text), 1e-12);

    [Fact]
    public void RepetitionSaturates()
    {
        // "united" is rated 1.8: each further "the United States" adds less to the compound, which stays below 1.
        double[] compounds = Enumerable.Range(1, 10).Select(k => Vader.Compound(string.Join(" and ", Enumerable.Repeat("the United States", k)))).ToArray();
        Assert.Equal(1.8 / Math.Sqrt(1.8 * 1.8 + 15), compounds[0], 1e-12);
        for (int k = 2; k < compounds.Length; k++)
            Assert.True(compounds[k] - compounds[k - 1] < compounds[k - 1] - compounds[k - 2], $"repetition {k + 1}: {string.Join(", ", compounds)}");
        Assert.True(compounds[^1] < 1);
    }

    [Fact]
    public void WordsKeepCaseAndLoseOneEdgePunctuationRun() =>
        Assert.Equal(["Good", "(great)", "don't,", "ok", "fine", ":)"], VaderSentiment.WordsAndEmoticons("Good, (great) don't, a ok!!! \"fine :)"));
}
