using WeakToStrong.Search.Scoring;

namespace WeakToStrong.Tests.Search;

[Trait("Category", "Unit")]
public class ScoredSequenceTests(SearchModelsFixture models) : IClassFixture<SearchModelsFixture>
{
    private double Reference(IReadOnlyList<int> tokens, int start) =>
        models.Tuned.Model!.Score(tokens.Take(start).ToList(), tokens.Skip(start).ToList()).Sum(x => (double)x);

    [Fact]
    public void ChangedTailIsRefedFromTheLastUnchangedPositionOnly()
    {
        var transformer = models.Tuned.Transformer;
        int[] a = [464, 3807, 373, 1049, 290, 314, 2227, 340, 257, 1256];
        int[] b = [.. a[..6], 7, 8, 9, 10];
        using var sequence = ScoredSequence.Create(transformer, [], 3);

        var first = sequence.Prepare(a, 3, wantNext: false)!.Value;
        Assert.Equal(a.Length - 1, first.FeedUntil - first.Sequence.CachedLength);
        sequence.Complete(transformer.Forward([first])[0]);
        Assert.Equal(Reference(a, 3), sequence.Score, 4);

        // Tokens 0..5 are kept; position 5 is fed again because its successor changed; 6..8 are new.
        var second = sequence.Prepare(b, 3, wantNext: false)!.Value;
        Assert.Equal(5, second.Sequence.CachedLength);
        Assert.Equal(b.Length - 1, second.FeedUntil);
        sequence.Complete(transformer.Forward([second])[0]);
        Assert.Equal(Reference(b, 3), sequence.Score, 4);

        // A fork extends independently of its parent and shares what both hold.
        using var fork = sequence.Fork();
        int[] c = [.. b, 11, 12];
        var third = fork.Prepare(c, 4, wantNext: false)!.Value;
        Assert.Equal(b.Length - 1, third.Sequence.CachedLength);
        fork.Complete(transformer.Forward([third])[0]);
        Assert.Equal(Reference(c, 4), fork.Score, 4);
        Assert.Equal(Reference(b, 3), sequence.Score, 4);

        // Nothing new: no request.
        Assert.Null(fork.Prepare(c, 4, wantNext: false));
    }

    [Fact]
    public void PrefilledPromptGivesTheFirstResponseTokenWithoutFeedingIt()
    {
        var transformer = models.Tuned.Transformer;
        int[] prompt = [464, 3807, 373];
        using var root = ScoredSequence.Create(transformer, prompt, prompt.Length);
        root.Complete(transformer.Forward([root.PreparePrefill()])[0]);
        using var candidate = root.Fork();
        int[] target = [.. prompt, 1049];
        Assert.Null(candidate.Prepare(target, prompt.Length, wantNext: false));
        Assert.Equal(Reference(target, prompt.Length), candidate.Score, 4);
    }

    [Fact]
    public void ResponseThatMergesIntoThePromptsLastTokenRescoresFromThere()
    {
        // Re-tokenised text can change the prompt's last token ("time" + "s" → "times"): the shared prompt's
        // KV is kept up to the change, and the response's log-probs start before the prompt's end.
        var transformer = models.Tuned.Transformer;
        int[] prompt = [7454, 2402, 257, 640];
        using var root = ScoredSequence.Create(transformer, prompt, prompt.Length);
        root.Complete(transformer.Forward([root.PreparePrefill()])[0]);
        using var candidate = root.Fork();
        int[] target = [7454, 2402, 257, 1661, 290];
        var request = candidate.Prepare(target, 3, wantNext: false)!.Value;
        Assert.Equal(2, request.Sequence.CachedLength);
        candidate.Complete(transformer.Forward([request])[0]);
        Assert.Equal(Reference(target, 3), candidate.Score, 4);
    }
}
