using WeakToStrong.Cli.Rewards;

namespace WeakToStrong.Tests.Sentiment;

/// <summary>The values <c>--reward</c> accepts and what each scores.</summary>
[Trait("Category", "Unit")]
public class GoldRewardTests
{
    [Fact]
    public void VaderIsTheCompoundScore()
    {
        var vader = GoldReward.FromSpec(" VADER ");
        Assert.Same(GoldReward.Vader, vader);
        Assert.Equal("vader-sentiment-1.1.3", vader.Name);
        // "good" 1.9: 1.9 / sqrt(1.9² + 15)
        Assert.Equal(1.9 / Math.Sqrt(1.9 * 1.9 + 15), vader.Score("good"), 12);
    }

    [Fact]
    public void AfinnIsTheSumOfValences()
    {
        var afinn = GoldReward.FromSpec("afinn");
        Assert.Equal("afinn-165", afinn.Name);
        // good 3 twice, bad -3
        Assert.Equal(3.0, afinn.Score("good good bad"));
        Assert.Equal("afinn-165", GoldReward.FromSpec("afinn-165").Name);
    }

    [Fact]
    public void ALexiconFileIsRead()
    {
        using var dir = TestPaths.Temp();
        string path = dir.File_("l.tsv");
        File.WriteAllText(path, "ship\t2\n");
        var reward = GoldReward.FromSpec("lexicon:" + path);
        Assert.Equal(path, reward.Name);
        Assert.Equal(4.0, reward.Score("Ship, ship."));
    }

    [Theory]
    [InlineData("vaders")]
    [InlineData("lexicon:")]
    [InlineData("")]
    public void AnythingElseIsRefused(string spec)
    {
        var e = Assert.Throws<ArgumentException>(() => GoldReward.FromSpec(spec));
        Assert.StartsWith($"'{spec}' is not a reward (expected vader, afinn or lexicon:PATH)", e.Message);
    }
}
