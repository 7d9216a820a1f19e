using WeakToStrong.Engine;
using WeakToStrong.Engine.KvCache;

namespace WeakToStrong.Tests.Engine;

/// <summary>Ragged batching, paged KV forking/copy-on-write/truncation, checked against from-scratch computation.</summary>
[Trait("Category", "Unit")]
public class BatchAndCacheTests
{
    private const float BatchTolerance = 1e-5f;

    private static float[] Alone(Transformer model, IReadOnlyList<int> tokens)
    {
        using var s = model.CreateSequence(tokens);
        return model.Forward([new ForwardRequest(s, FeedUntil: s.Length - 1, TargetLogProbs: true)])[0].TargetLogProbs;
    }

    [Theory]
    [MemberData(nameof(TestPaths.FixtureNames), MemberType = typeof(TestPaths))]
    public void LogProbsAreTheSameAloneAndInARaggedBatch(string fixture)
    {
        using var model = LanguageModel.Load(TestPaths.Fixture(fixture));
        var t = model.Transformer;
        var cases = GoldenCase.Load(fixture).Select(c => c.PromptTokens.Concat(c.ContinuationTokens).ToArray()).ToList();
        var alone = cases.Select(c => Alone(t, c)).ToList();

        var sequences = cases.Select(c => t.CreateSequence(c)).ToList();
        var batched = t.Forward(sequences.Select(s => new ForwardRequest(s, FeedUntil: s.Length - 1, TargetLogProbs: true)).ToList());
        for (int i = 0; i < cases.Count; i++)
        {
            Assert.Equal(alone[i].Length, batched[i].TargetLogProbs.Length);
            for (int j = 0; j < alone[i].Length; j++)
                Assert.True(Math.Abs(alone[i][j] - batched[i].TargetLogProbs[j]) <= BatchTolerance, $"case {i} token {j}: {alone[i][j]} vs {batched[i].TargetLogProbs[j]}");
        }
        sequences.ForEach(s => s.Dispose());
        Assert.Equal(0, t.Cache.UsedBlocks);
    }

    [Fact]
    public void IncrementalScoringInChunksEqualsOneShot()
    {
        using var model = LanguageModel.Load(TestPaths.Fixture("llama31-small"));
        var t = model.Transformer;
        var c = GoldenCase.Load("llama31-small").OrderByDescending(g => g.PromptTokens.Length + g.ContinuationTokens.Length).First();
        var all = c.PromptTokens.Concat(c.ContinuationTokens).ToArray();
        var oneShot = Alone(t, all);

        using var s = t.CreateSequence(all.Take(3));
        var pieces = new List<float>(t.Forward([new ForwardRequest(s, FeedUntil: s.Length - 1, TargetLogProbs: true)])[0].TargetLogProbs);
        for (int at = 3; at < all.Length; at += 7)
        {
            s.Append(all.Skip(at).Take(7));
            pieces.AddRange(t.Forward([new ForwardRequest(s, FeedUntil: s.Length - 1, TargetLogProbs: true)])[0].TargetLogProbs);
        }
        Assert.Equal(oneShot.Length, pieces.Count);
        for (int i = 0; i < oneShot.Length; i++) Assert.True(Math.Abs(oneShot[i] - pieces[i]) <= BatchTolerance, $"token {i}: {oneShot[i]} vs {pieces[i]}");
    }

    [Theory]
    [InlineData("gpt2-tiny")]
    [InlineData("qwen2-small")]
    public void ForkedSequencesContinuedIndependentlyMatchFromScratch(string fixture)
    {
        using var model = LanguageModel.Load(TestPaths.Fixture(fixture), new ModelOptions { KvBlockSize = 4 });
        var t = model.Transformer;
        var c = GoldenCase.Load(fixture).Last();
        // 10 tokens: two full blocks of 4 and a partly filled third block that the forks share.
        var prefix = c.PromptTokens.Concat(c.ContinuationTokens).Take(10).ToArray();
        using var parent = t.CreateSequence(prefix);
        t.Forward([new ForwardRequest(parent, FeedUntil: parent.Length - 1)]);
        Assert.Equal(9, parent.CachedLength);
        int usedBefore = t.Cache.UsedBlocks;

        var forks = Enumerable.Range(0, 3).Select(i => parent.Fork((ulong)i)).ToList();
        Assert.Equal(usedBefore, t.Cache.UsedBlocks); // forking copies tables, not KV
        var rng = new Random(7);
        var continuations = forks.Select(_ => Enumerable.Range(0, 6).Select(_ => rng.Next(t.Spec.VocabSize)).ToArray()).ToList();
        for (int i = 0; i < forks.Count; i++) forks[i].Append(continuations[i]);
        var results = t.Forward(forks.Select(f => new ForwardRequest(f, FeedUntil: f.Length - 1, TargetLogProbs: true)).ToList());
        Assert.True(t.Cache.CopiedBlocks >= 3, "writing into the shared partly filled block must copy it");

        for (int i = 0; i < forks.Count; i++)
        {
            var scratch = Alone(t, prefix.Concat(continuations[i]).ToArray());
            var tail = scratch[^results[i].TargetLogProbs.Length..];
            for (int j = 0; j < tail.Length; j++)
                Assert.True(Math.Abs(tail[j] - results[i].TargetLogProbs[j]) <= BatchTolerance, $"fork {i} token {j}: {tail[j]} vs {results[i].TargetLogProbs[j]}");
        }
        // The parent is untouched by its forks' writes.
        parent.Append(continuations[0][0]);
        var parentNext = t.Forward([new ForwardRequest(parent, FeedUntil: parent.Length - 1, TargetLogProbs: true)])[0].TargetLogProbs;
        Assert.Equal(Alone(t, parent.Tokens.ToArray())[^1], parentNext[0], 5);
        forks.ForEach(f => f.Dispose());
    }

    [Theory]
    [InlineData("gpt2-tiny")]
    [InlineData("llama-tiny")]
    public void ForksDrawingFromOneSharedRowDrawAndContinueAsEachWouldAlone(string fixture)
    {
        using var model = LanguageModel.Load(TestPaths.Fixture(fixture), new ModelOptions { KvBlockSize = 4 });
        var t = model.Transformer;
        var sampling = new SamplingSettings(Temperature: 1.5f, TopK: 0, TopP: 1f, Seed: 11);
        var c = GoldenCase.Load(fixture).Last();
        // 10 tokens: the forks share a partly filled third block, and feed the 10th token each (alone) or once (shared).
        var prefix = c.PromptTokens.Concat(c.ContinuationTokens).Take(10).ToArray();
        ulong[] keys = [3, 17, 29, 41, 53];
        using var parent = t.CreateSequence(prefix);
        t.Forward([new ForwardRequest(parent, FeedUntil: parent.Length - 1)]);

        // Reference: every fork feeds the pending token and draws with its own key, then feeds its draw.
        var alone = keys.Select(k => parent.Fork(k)).ToList();
        var aloneDraws = t.Forward(alone.Select(f => new ForwardRequest(f, Sampling: sampling)).ToList()).Select(r => r.SampledToken).ToList();
        for (int i = 0; i < alone.Count; i++) alone[i].Append(aloneDraws[i]);
        var aloneNext = t.Forward(alone.Select(f => new ForwardRequest(f, Sampling: sampling, LastLogits: true)).ToList());
        Assert.True(aloneDraws.Distinct().Count() > 1, "draws at temperature 1.5 over the whole vocabulary should differ between keys");

        int usedBefore = t.Cache.UsedBlocks;
        var shared = keys.Select(k => parent.Fork(k)).ToList();
        var result = t.Forward([new ForwardRequest(shared[0], Sampling: sampling, SampleKeys: keys)])[0];
        Assert.Equal(aloneDraws, result.SampledTokens);
        Assert.Equal(aloneDraws[0], result.SampledToken);
        for (int i = 1; i < shared.Count; i++) shared[i].ShareCacheOf(shared[0]);
        Assert.All(shared, f => Assert.Equal(prefix.Length, f.CachedLength));
        Assert.Equal(usedBefore + 1, t.Cache.UsedBlocks); // one copy of the shared partly filled block, not one per fork
        for (int i = 0; i < shared.Count; i++) shared[i].Append(aloneDraws[i]);
        var sharedNext = t.Forward(shared.Select(f => new ForwardRequest(f, Sampling: sampling, LastLogits: true)).ToList());
        for (int i = 0; i < keys.Length; i++)
        {
            Assert.Equal(aloneNext[i].SampledToken, sharedNext[i].SampledToken);
            Assert.Equal(aloneNext[i].LastLogits, sharedNext[i].LastLogits); // the same bits: batch-invariant rows over the same KV
        }
        alone.ForEach(f => f.Dispose());
        shared.ForEach(f => f.Dispose());
    }

    [Fact]
    public void SharingTheCacheOfASequenceWithOtherTokensIsRefused()
    {
        using var model = LanguageModel.Load(TestPaths.Fixture("gpt2-tiny"));
        var t = model.Transformer;
        using var a = t.CreateSequence([1, 2, 3]);
        using var b = t.CreateSequence([1, 2, 4]);
        var e = Assert.Throws<ArgumentException>(() => b.ShareCacheOf(a));
        Assert.Contains("tokens differ", e.Message);
        var sampling = new SamplingSettings(0.7f, 50, 1f, 1);
        var e2 = Assert.Throws<ArgumentException>(() => t.Forward([new ForwardRequest(a, SampleKeys: [1, 2])]));
        Assert.Contains("SampleKeys needs Sampling", e2.Message);
        Assert.Throws<ArgumentException>(() => t.Forward([new ForwardRequest(a, Sampling: sampling, SampleKeys: [])]));
    }

    [Fact]
    public void TruncateDropsBlocksAndRecomputesTheTail()
    {
        using var model = LanguageModel.Load(TestPaths.Fixture("llama-tiny"), new ModelOptions { KvBlockSize = 4 });
        var t = model.Transformer;
        var c = GoldenCase.Load("llama-tiny").Last();
        var all = c.PromptTokens.Concat(c.ContinuationTokens).ToArray();
        using var s = t.CreateSequence(all);
        t.Forward([new ForwardRequest(s, FeedUntil: s.Length - 1)]);
        int before = t.Cache.UsedBlocks;
        s.Truncate(5);
        Assert.Equal(5, s.CachedLength);
        Assert.Equal(2, s.BlockTable.Count);
        Assert.True(t.Cache.UsedBlocks < before);

        var replacement = new[] { 7, 8, 9, 10 };
        s.Append(replacement);
        var got = t.Forward([new ForwardRequest(s, FeedUntil: s.Length - 1, TargetLogProbs: true)])[0].TargetLogProbs;
        var expected = Alone(t, all.Take(5).Concat(replacement).ToArray())[^got.Length..];
        for (int i = 0; i < got.Length; i++) Assert.True(Math.Abs(expected[i] - got[i]) <= BatchTolerance);
    }

    [Fact]
    public void ReleasedSequencesReturnEveryBlockAndExhaustionIsAClearError()
    {
        using var model = LanguageModel.Load(TestPaths.Fixture("gpt2-tiny"), new ModelOptions { KvBlocks = 4, KvBlockSize = 4 });
        var t = model.Transformer;
        using (var s = t.CreateSequence(Enumerable.Range(0, 12)))
        {
            t.Forward([new ForwardRequest(s)]);
            Assert.Equal(3, t.Cache.UsedBlocks);
        }
        Assert.Equal(0, t.Cache.UsedBlocks);
        using var big = t.CreateSequence(Enumerable.Range(0, 20));
        var e = Assert.Throws<KvCacheExhaustedException>(() => t.Forward([new ForwardRequest(big)]));
        Assert.Contains("4 blocks", e.Message);
    }

    [Fact]
    public void SeededSamplingDoesNotDependOnTheBatch()
    {
        using var model = LanguageModel.Load(TestPaths.Fixture("gpt2-tiny"));
        var t = model.Transformer;
        var sampling = new SamplingSettings(Temperature: 1.3f, TopK: 50, TopP: 0.95f, Seed: 42);
        List<int> Run(int others)
        {
            var target = t.CreateSequence([464, 614], key: 99);
            var extra = Enumerable.Range(0, others).Select(i => t.CreateSequence([100 + i, 200 + i, 300], key: (ulong)i)).ToList();
            var output = new List<int>();
            for (int step = 0; step < 10; step++)
            {
                var all = extra.Append(target).ToList();
                var r = t.Forward(all.Select(s => new ForwardRequest(s, Sampling: sampling)).ToList());
                for (int i = 0; i < all.Count; i++) all[i].Append(r[i].SampledToken);
                output.Add(r[^1].SampledToken);
            }
            extra.ForEach(s => s.Dispose());
            target.Dispose();
            return output;
        }
        var alone = Run(0);
        Assert.Equal(alone, Run(3));
        Assert.Equal(alone, Run(5));
        Assert.True(alone.Distinct().Count() > 1, "sampling at temperature 1.3 should not be constant");
    }

    [Fact]
    public void OutOfRangeTokenAndOverlongSequenceAreRejectedWithTheReason()
    {
        using var model = LanguageModel.Load(TestPaths.Fixture("qwen2-small"));
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => model.Score([1, 2], [800]));
        Assert.Contains("800", e.Message);
        var tooLong = Enumerable.Repeat(5, model.Spec.MaxPositions + 1).ToArray();
        var e2 = Assert.Throws<ArgumentException>(() => model.Score(tooLong[..1], tooLong[1..]));
        Assert.Contains("context", e2.Message);
    }
}
