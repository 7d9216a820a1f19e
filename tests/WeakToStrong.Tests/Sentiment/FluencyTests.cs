using WeakToStrong.Cli.Rewards;

namespace WeakToStrong.Tests.Sentiment;

/// <summary>distinct-1/2, rep-3 and the largest 3-gram count on hand-counted word sequences.</summary>
[Trait("Category", "Unit")]
public class FluencyTests
{
    [Fact]
    public void ASentenceWithOneRepeatedWordHasNoRepeatedPair()
    {
        // the cat sat on the mat: 6 words, 5 distinct; 5 pairs, all distinct; 4 triples, all distinct.
        var s = Fluency.Measure("The cat sat on the mat.");
        Assert.Equal(5.0 / 6, s.Distinct1!.Value, 12);
        Assert.Equal(1.0, s.Distinct2!.Value, 12);
        Assert.Equal(0.0, s.Repeated3GramShare!.Value, 12);
        Assert.Equal(1, s.Max3GramCount);
    }

    [Fact]
    public void TheUnitedStatesOfTheUnitedStatesRepeatsOneTriple()
    {
        // the united states of the united states: 7 words, 4 distinct; 6 pairs ("the united" and "united states"
        // twice), 4 distinct; 5 triples ("the united states" twice), 4 distinct, so rep-3 = 1 - 4/5.
        var s = Fluency.Measure("the United States of the United States,");
        Assert.Equal(4.0 / 7, s.Distinct1!.Value, 12);
        Assert.Equal(4.0 / 6, s.Distinct2!.Value, 12);
        Assert.Equal(1 - 4.0 / 5, s.Repeated3GramShare!.Value, 12);
        Assert.Equal(2, s.Max3GramCount);
    }

    [Fact]
    public void OneWordRepeatedFiveTimes()
    {
        // a a a a a: 1 distinct word of 5; 1 distinct pair of 4; the triple "a a a" three times of 3.
        var s = Fluency.Measure("A a, a; a a!");
        Assert.Equal(1.0 / 5, s.Distinct1!.Value, 12);
        Assert.Equal(1.0 / 4, s.Distinct2!.Value, 12);
        Assert.Equal(1 - 1.0 / 3, s.Repeated3GramShare!.Value, 12);
        Assert.Equal(3, s.Max3GramCount);
    }

    [Theory]
    [InlineData("", null, null)]
    [InlineData(" -- ", null, null)]
    [InlineData("Hello!", 1.0, null)]
    [InlineData("Hello there", 1.0, 1.0)]
    public void TooShortForAnNGramHasNoValue(string text, double? distinct1, double? distinct2)
    {
        var s = Fluency.Measure(text);
        Assert.Equal(distinct1, s.Distinct1);
        Assert.Equal(distinct2, s.Distinct2);
        Assert.Null(s.Repeated3GramShare);
        Assert.Equal(0, s.Max3GramCount);
    }
}
