using WeakToStrong.Cli.Rewards;

namespace WeakToStrong.Tests.Sentiment;

/// <summary>The gold reward: sums of AFINN-165 valences, hand-computed from the lexicon file's lines.</summary>
[Trait("Category", "Unit")]
public class LexiconRewardTests
{
    private static readonly LexiconReward Afinn = LexiconReward.Afinn165;

    [Theory]
    // good 3, bad -3
    [InlineData("This movie was GOOD, not bad!", 0)]
    // wonderful 4, beautiful 3, love 3
    [InlineData("A wonderful, beautiful film. I love it.", 10)]
    // terrible -3, awful -3, sad -2, no -1
    [InlineData("\"Terrible\" and awful... so sad; no.", -9)]
    // great 3 ×2 (case and punctuation stripped), hate -3
    [InlineData("Great! great? I hate...", 3)]
    // self-deluded -2 (inner hyphen kept), fine 2
    [InlineData("self-deluded but (fine)", 0)]
    // "does not work" is a phrase entry: never matched word by word (does, not, work have no entry)
    [InlineData("it does not work", 0)]
    // no scored word
    [InlineData("The ship sailed at noon.", 0)]
    [InlineData("", 0)]
    public void ScoresAreSumsOfWordValences(string text, double expected) => Assert.Equal(expected, Afinn.Score(text));

    [Fact]
    public void TheBundledLexiconIsAfinn165()
    {
        Assert.Equal(3382, Afinn.Count);
        Assert.Equal("afinn-165", Afinn.Name);
        Assert.Equal(3, Afinn.Valence("good"));
        Assert.Equal(-2, Afinn.Valence("naïve"));
        Assert.Equal(-5, Afinn.Valence("bastard"));
        Assert.Same(Afinn, LexiconReward.FromSpec("afinn"));
        Assert.Same(Afinn, LexiconReward.FromSpec(" AFINN-165 "));
    }

    [Fact]
    public void WordsAreWhitespacePiecesWithNonAlphanumericEndsStrippedAndLowerCased() =>
        Assert.Equal(["good", "self-deluded", "don't", "x2", "naïve"], LexiconReward.Words(" \"Good,\" (self-deluded)\tdon't -- X2! Naïve\n").ToArray());

    [Fact]
    public void AnotherLexiconIsReadFromATabSeparatedFile()
    {
        string path = Path.Combine(Path.GetTempPath(), $"w2s-lexicon-{Guid.NewGuid():N}.tsv");
        try
        {
            File.WriteAllText(path, "# my lexicon\nShip\t1.5\n\nsea\t-0.25\n");
            var lexicon = LexiconReward.FromSpec("lexicon:" + path);
            Assert.Equal(2, lexicon.Count);
            Assert.Equal(path, lexicon.Name);
            Assert.Equal(1.5 + 1.5 - 0.25, lexicon.Score("The ship, the SHIP and the sea; good."));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Theory]
    [InlineData("word 3\n", ":1: expected 'word<TAB>valence'")]
    [InlineData("# c\nword\tmany\n", ":2: expected 'word<TAB>valence' with a number")]
    [InlineData("a\t1\nA\t2\n", ":2: 'a' appears twice")]
    [InlineData("# only a comment\n", ": the lexicon has no entry")]
    public void AMalformedLexiconNamesFileAndLine(string content, string message)
    {
        string path = Path.Combine(Path.GetTempPath(), $"w2s-lexicon-{Guid.NewGuid():N}.tsv");
        try
        {
            File.WriteAllText(path, content);
            var e = Assert.Throws<InvalidDataException>(() => LexiconReward.Load(path));
            Assert.StartsWith(path + message, e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void AnUnknownRewardOrMissingFileIsRefused()
    {
        Assert.Throws<ArgumentException>(() => LexiconReward.FromSpec("vader"));
        Assert.Throws<ArgumentException>(() => LexiconReward.FromSpec("lexicon:"));
        var e = Assert.Throws<InvalidDataException>(() => LexiconReward.FromSpec("lexicon:/no/such/file.tsv"));
        Assert.Equal("/no/such/file.tsv: lexicon file not found", e.Message);
    }
}
