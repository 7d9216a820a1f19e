using System.Diagnostics;
using WeakToStrong.Engine;
using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;
using WeakToStrong.Tokenization;

namespace WeakToStrong.Tests.Search;

[Trait("Category", "Unit")]
public class ChunkBeamSearchTests(SearchModelsFixture models) : IClassFixture<SearchModelsFixture>
{
    private const string Prompt = "I watched this movie last night and";

    /// <summary>The bar for a reported score against an independent recomputation.</summary>
    private const double ScoreTolerance = 1e-3;

    /// <summary>A tenth of the vocabulary ends a response, so candidates finish in different chunks.</summary>
    private static int[] ManyEos(ChatModel large) => Enumerable.Range(0, large.Spec.VocabSize).Where(i => i % 10 == 3).ToArray();

    private (ChatModel Large, ChatModel Tuned, ChatModel Untuned) Setup(string name) => name switch
    {
        "same-tokenizer" => (models.Large, models.Tuned, models.Untuned),
        "cross-tokenizer" => (models.Llama, models.Tuned, models.Untuned),
        "mixed" => (models.Large, models.Llama, models.Untuned),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    private Task<SearchResult> Run((ChatModel Large, ChatModel Tuned, ChatModel Untuned) m, SearchRequest request) =>
        SearchMethods.For(request.Method).RunAsync(models.Context(m.Large, m.Tuned, m.Untuned), request);

    private static IReadOnlyList<int>? TokensIfExact(ChatModel large, string text, IReadOnlyList<int> tokens) =>
        large.Tokenizer.Decode(tokens) == text ? tokens : null;

    private void AssertAllKvReleased()
    {
        foreach (var m in new[] { models.Large, models.Tuned, models.Untuned, models.Llama })
            Assert.Equal(m.Transformer.Cache.TotalBlocks, m.Transformer.Cache.FreeBlocks);
    }

    [Theory]
    [InlineData("same-tokenizer")]
    [InlineData("cross-tokenizer")]
    [InlineData("mixed")]
    public async Task EveryReportedScoreEqualsTunedMinusUntunedRecomputedIndependently(string setup)
    {
        var m = Setup(setup);
        var request = new SearchRequest
        {
            Prompt = Prompt, BeamWidth = 2, Successors = 2, ChunkLength = 4, MaxNewTokens = 16,
            EosTokenIds = ManyEos(m.Large), Seed = 7, Trace = true,
        };
        var result = await Run(m, request);

        var all = result.Trace!.SelectMany(c => c.Candidates).ToList();
        Assert.Contains(all, c => c.Finish == FinishReason.Eos);
        Assert.Contains(all, c => c.Finish == FinishReason.None);
        foreach (var c in all)
        {
            double expected = IndependentScore.Score(m.Large, m.Tuned, m.Untuned, Prompt, c.Text, TokensIfExact(m.Large, c.Text, c.Tokens), c.Finish != FinishReason.None);
            Assert.True(Math.Abs(c.Score - expected) <= ScoreTolerance, $"candidate {c.Index} '{c.Text}': reported {c.Score}, recomputed {expected}");
        }
        var last = result.Trace![^1];
        var best = last.Candidates[last.Selected[0]];
        Assert.Equal(best.Text, result.Text);
        Assert.Equal(best.Score, result.Score);
        double final = IndependentScore.Score(m.Large, m.Tuned, m.Untuned, Prompt, result.Text, TokensIfExact(m.Large, result.Text, result.Tokens), result.Finish != FinishReason.None);
        Assert.True(Math.Abs(result.Score - final) <= ScoreTolerance, $"reported {result.Score}, recomputed {final}");

        // The token ids reported per small model are what `w2s score --prompt-tokens … --continuation-tokens …` takes.
        double tuned = m.Tuned.Model!.Score(result.Tuned.PromptTokens, result.Tuned.ResponseTokens).Sum(x => (double)x);
        double untuned = m.Untuned.Model!.Score(result.Untuned.PromptTokens, result.Untuned.ResponseTokens).Sum(x => (double)x);
        Assert.True(Math.Abs(result.Tuned.LogProb - tuned) <= ScoreTolerance);
        Assert.True(Math.Abs(result.Untuned.LogProb - untuned) <= ScoreTolerance);
        Assert.Equal(result.Score, result.Tuned.LogProb - result.Untuned.LogProb, 9);
        AssertAllKvReleased();
    }

    [Theory]
    [InlineData("same-tokenizer")]
    [InlineData("cross-tokenizer")]
    public async Task BestOfNReturnsTheBestOfItsSamplesByIndependentRescoring(string setup)
    {
        var m = Setup(setup);
        var request = new SearchRequest
        {
            Prompt = Prompt, Method = SearchMethodKind.BestOfN, N = 6, MaxNewTokens = 12,
            EosTokenIds = ManyEos(m.Large), Seed = 3, Trace = true,
        };
        var result = await Run(m, request);

        var samples = Assert.Single(result.Trace!).Candidates;
        Assert.Equal(6, samples.Count);
        Assert.True(samples.All(s => s.Finish != FinishReason.None));
        var rescored = samples.Select(s => IndependentScore.Score(m.Large, m.Tuned, m.Untuned, Prompt, s.Text, TokensIfExact(m.Large, s.Text, s.Tokens), finished: true)).ToList();
        int best = rescored.IndexOf(rescored.Max());
        Assert.Equal(samples[best].Text, result.Text);
        Assert.True(Math.Abs(result.Score - rescored[best]) <= ScoreTolerance, $"reported {result.Score}, best recomputed {rescored[best]}");
        Assert.True(samples.Select(s => s.Text).Distinct().Count() > 1, "the samples should differ");
        AssertAllKvReleased();
    }

    [Theory]
    [InlineData(SearchMethodKind.Sample, null)]
    [InlineData(SearchMethodKind.ChunkBeamSearch, null)]
    [InlineData(SearchMethodKind.ChunkBeamSearch, 3)]
    public async Task OneBeamOneSuccessorIsPlainSamplingWithTheSameSeed(SearchMethodKind method, int? chunkLength)
    {
        var m = Setup("same-tokenizer");
        var request = new SearchRequest
        {
            Prompt = Prompt, Method = method, BeamWidth = 1, Successors = 1, ChunkLength = chunkLength, MaxNewTokens = 20, Seed = 42,
        };
        var result = await Run(m, request);

        var prompt = m.Large.Tokenizer.Encode(Prompt);
        var plain = m.Large.Model!.Generate(prompt, 20, new SamplingSettings(0.7f, 50, 1f, 42));
        Assert.Equal(plain, result.Tokens);
        Assert.Equal(m.Large.Tokenizer.Decode(plain), result.Text);
        AssertAllKvReleased();
    }

    [Fact]
    public async Task SameSeedGivesTheSameOutputWhateverIsBatchedBeside()
    {
        var m = Setup("same-tokenizer");
        var request = new SearchRequest { Prompt = Prompt, MaxNewTokens = 15, Seed = 5, ChunkLength = 5, BeamWidth = 2, Successors = 3 };
        var first = await Run(m, request);
        var second = await Run(m, request);
        Assert.Equal(first.Tokens, second.Tokens);
        Assert.Equal(first.Score, second.Score);
        var other = await Run(m, request with { Seed = 6 });
        Assert.NotEqual(first.Tokens, other.Tokens);

        var three = await Run(m, new SearchRequest { Prompt = Prompt, Method = SearchMethodKind.BestOfN, N = 3, MaxNewTokens = 10, Seed = 9, Trace = true });
        var six = await Run(m, new SearchRequest { Prompt = Prompt, Method = SearchMethodKind.BestOfN, N = 6, MaxNewTokens = 10, Seed = 9, Trace = true });
        Assert.Equal(three.Trace![0].Candidates.Select(c => c.Tokens), six.Trace![0].Candidates.Take(3).Select(c => c.Tokens));
    }

    [Fact]
    public async Task SmallModelsFeedThePromptOnceAndPerChunkOnlyEachCandidatesNewTokens()
    {
        var m = Setup("same-tokenizer");
        const int W = 2, K = 2, L = 3, MaxNew = 12, Chunks = MaxNew / L;
        // No EOS: every candidate samples exactly L tokens per chunk and ends by length in the last one.
        var request = new SearchRequest { Prompt = Prompt, BeamWidth = W, Successors = K, ChunkLength = L, MaxNewTokens = MaxNew, EosTokenIds = [], Seed = 1 };
        int P = m.Tuned.Tokenizer.Encode(Prompt).Count;
        long tunedBefore = m.Tuned.Transformer.TokensProcessed, untunedBefore = m.Untuned.Transformer.TokensProcessed;
        long largeCallsBefore = m.Large.Transformer.ForwardCalls;

        var cached = await Run(m, request);

        // The prompt once; then each candidate's new tokens: L−1 in the first chunk (the first response token is
        // read off the prompt's last position), L in the next, L+1 in the last (its EOS): W·K·MaxNew in all.
        Assert.Equal(P + W * K * MaxNew, cached.Stats.TunedTokensScored);
        Assert.Equal(P + W * K * MaxNew, cached.Stats.UntunedTokensScored);
        Assert.Equal(cached.Stats.TunedTokensScored, m.Tuned.Transformer.TokensProcessed - tunedBefore);
        Assert.Equal(cached.Stats.UntunedTokensScored, m.Untuned.Transformer.TokensProcessed - untunedBefore);
        Assert.Equal(W * K * MaxNew, cached.Stats.LargeTokensSampled);
        Assert.Equal(Chunks, cached.Stats.Chunks);
        // Large: the prompt, then one call per step. Each small model: the prompt, then one call per chunk.
        Assert.Equal(1 + MaxNew, m.Large.Transformer.ForwardCalls - largeCallsBefore);
        Assert.Equal(1 + MaxNew + 2 * (1 + Chunks), cached.Stats.ForwardCalls);

        var uncached = await Run(m, request with { CacheMode = ScoringCacheMode.None });
        // The reference: every chunk, every candidate over prompt + response (all positions but the last).
        long expected = 0;
        for (int c = 1; c <= Chunks; c++) expected += W * K * (P + c * L - 1);
        expected += W * K; // the EOS appended in the last chunk
        Assert.Equal(expected, uncached.Stats.TunedTokensScored);
        Assert.Equal(cached.Tokens, uncached.Tokens);
        Assert.True(Math.Abs(cached.Score - uncached.Score) <= 1e-4, $"cached {cached.Score}, uncached {uncached.Score}");
        AssertAllKvReleased();
    }

    [Fact]
    public async Task CrossTokenizerCacheGivesTheSameResultsAsRescoringEverything()
    {
        var m = Setup("cross-tokenizer");
        var request = new SearchRequest { Prompt = Prompt, BeamWidth = 2, Successors = 2, ChunkLength = 4, MaxNewTokens = 24, EosTokenIds = [], Seed = 4, Trace = true };
        var cached = await Run(m, request);
        var uncached = await Run(m, request with { CacheMode = ScoringCacheMode.None });

        Assert.Equal(cached.Text, uncached.Text);
        var a = cached.Trace!.SelectMany(c => c.Candidates).ToList();
        var b = uncached.Trace!.SelectMany(c => c.Candidates).ToList();
        Assert.Equal(a.Select(c => c.Text), b.Select(c => c.Text));
        for (int i = 0; i < a.Count; i++) Assert.True(Math.Abs(a[i].Score - b[i].Score) <= 1e-4, $"candidate {i}: cached {a[i].Score}, uncached {b[i].Score}");
        // Re-tokenising the text changes at most a short tail, so the cache still saves most of the work.
        Assert.True(cached.Stats.TunedTokensScored * 2 < uncached.Stats.TunedTokensScored,
            $"cached {cached.Stats.TunedTokensScored} tokens, uncached {uncached.Stats.TunedTokensScored}");
        AssertAllKvReleased();
    }

    [Fact]
    public async Task DedupeLetsOnlyOneOfIdenticalCandidatesCompete()
    {
        var m = Setup("same-tokenizer");
        var request = new SearchRequest
        {
            Prompt = Prompt, BeamWidth = 2, Successors = 3, ChunkLength = 2, MaxNewTokens = 16,
            EosTokenIds = ManyEos(m.Large), Seed = 8, Trace = true,
        };
        var plain = await Run(m, request);
        var deduped = await Run(m, request with { Dedupe = true });

        // A finished survivor is forked K times like any other, so without dedupe its copies compete again.
        Assert.Contains(plain.Trace!, c => c.Candidates.Where(x => x.Finish != FinishReason.None).GroupBy(x => x.Text).Any(g => g.Count() > 1));
        Assert.Contains(deduped.Trace!, c => c.Candidates.Any(x => x.Dropped));
        foreach (var chunk in deduped.Trace!)
        {
            var competing = chunk.Candidates.Where(x => !x.Dropped).Select(x => (x.Finish != FinishReason.None, x.Text)).ToList();
            Assert.Equal(competing.Count, competing.Distinct().Count());
            Assert.DoesNotContain(chunk.Selected, i => chunk.Candidates[i].Dropped);
        }
        AssertAllKvReleased();
    }

    [Fact]
    public async Task StopStringEndsTheResponseAndStaysAtTheEndOfItsText()
    {
        var m = Setup("same-tokenizer");
        var request = new SearchRequest { Prompt = Prompt, BeamWidth = 2, Successors = 2, ChunkLength = 4, MaxNewTokens = 40, StopStrings = ["e"], EosTokenIds = [], Seed = 2, Trace = true };
        var result = await Run(m, request);

        Assert.Equal(FinishReason.StopString, result.Finish);
        Assert.EndsWith("e", result.Text);
        Assert.Equal(result.Text.Length - 1, result.Text.IndexOf('e'));
        double expected = IndependentScore.Score(m.Large, m.Tuned, m.Untuned, Prompt, result.Text, TokensIfExact(m.Large, result.Text, result.Tokens), finished: true);
        Assert.True(Math.Abs(result.Score - expected) <= ScoreTolerance, $"reported {result.Score}, recomputed {expected}");
        AssertAllKvReleased();
    }

    [Fact]
    public async Task MaxNewTokensBoundsEveryCandidate()
    {
        var m = Setup("same-tokenizer");
        var result = await Run(m, new SearchRequest { Prompt = Prompt, MaxNewTokens = 7, ChunkLength = 5, EosTokenIds = [], Trace = true });
        Assert.Equal(7, result.Tokens.Count);
        Assert.Equal(FinishReason.Length, result.Finish);
        Assert.All(result.Trace!.SelectMany(c => c.Candidates), c => Assert.True(c.Tokens.Count <= 7));
        Assert.Equal(2, result.Stats.Chunks);
    }

    [Fact]
    public async Task WallTimeSplitsIntoLargeModelSamplingAndSmallModelScoring()
    {
        var m = Setup("same-tokenizer");
        const int W = 2, K = 2, L = 3, MaxNew = 12;
        var floor = TimeSpan.FromMilliseconds(15);
        using var large = new SlowLargeModel(new LocalLargeModel(m.Large), floor);
        var request = new SearchRequest { Prompt = Prompt, BeamWidth = W, Successors = K, ChunkLength = L, MaxNewTokens = MaxNew, EosTokenIds = [], Seed = 3 };
        int P = m.Tuned.Tokenizer.Encode(Prompt).Count;

        var s = (await ChunkBeamSearch.Instance.RunAsync(new SearchContext(large, m.Tuned, m.Untuned), request)).Stats;

        // The prompt, then one call per chunk: every one of them is sampling time, none of it scoring time.
        Assert.Equal(1 + MaxNew / L, large.Calls);
        Assert.True(s.SamplingMs >= large.Calls * floor.TotalMilliseconds, $"sampling {s.SamplingMs} ms, but the large model alone waited {large.Calls} × {floor.TotalMilliseconds} ms");
        Assert.True(s.ScoringMs > 0, $"scoring {s.ScoringMs} ms");
        Assert.True(s.SamplingMs + s.ScoringMs <= s.WallMs, $"sampling {s.SamplingMs} + scoring {s.ScoringMs} ms exceed the wall time {s.WallMs} ms");
        Assert.Equal(W * K * MaxNew, s.LargeTokensSampled);
        Assert.Equal(2 * (P + W * K * MaxNew), s.SmallTokensScored);
        AssertAllKvReleased();
    }

    [Theory]
    [InlineData(2, 2, 1, 12)]
    [InlineData(2, 3, 4, 12)]
    [InlineData(4, 4, 5, 15)]
    public async Task ForksOfOneSurvivorShareTheirFirstRowAndDrawWhatTheyWouldAlone(int w, int k, int l, int maxNew)
    {
        var m = Setup("same-tokenizer");
        var request = new SearchRequest { Prompt = Prompt, BeamWidth = w, Successors = k, ChunkLength = l, MaxNewTokens = maxNew, EosTokenIds = [], Seed = 8, Trace = true };
        var t = m.Large.Transformer;

        long before = t.TokensProcessed;
        var shared = await ChunkBeamSearch.Instance.RunAsync(models.Context(m.Large, m.Tuned, m.Untuned), request);
        long sharedRows = t.TokensProcessed - before;
        before = t.TokensProcessed;
        using var oneByOne = new OneCandidatePerCallLargeModel(new LocalLargeModel(m.Large));
        var reference = await ChunkBeamSearch.Instance.RunAsync(new SearchContext(oneByOne, m.Tuned, m.Untuned), request);
        long referenceRows = t.TokensProcessed - before;

        Assert.Equal(reference.Tokens, shared.Tokens);
        Assert.Equal(reference.Score, shared.Score);
        Assert.Equal(reference.Trace!.SelectMany(c => c.Candidates).Select(c => c.Tokens), shared.Trace!.SelectMany(c => c.Candidates).Select(c => c.Tokens));
        Assert.Equal(reference.Stats.LargeTokensSampled, shared.Stats.LargeTokensSampled);
        // Candidates with the same tokens so far feed one row between them: at the start of a chunk a survivor's K
        // children (the first chunk's W·K forks of the prompt), and later any of them that drew the same tokens.
        long saved = 0;
        foreach (var chunk in shared.Trace!)
        {
            int start = chunk.Candidates[0].Tokens.Count - chunk.Candidates[0].NewTokens;
            for (int step = 0; step < chunk.Candidates[0].NewTokens; step++)
                saved += chunk.Candidates.Count - chunk.Candidates.Select(c => string.Join(',', c.Tokens.Take(start + step))).Distinct().Count();
        }
        int chunks = (maxNew + l - 1) / l;
        Assert.True(saved >= (w * k - 1) + (long)(chunks - 1) * (w * k - w), $"saved {saved} rows");
        Assert.Equal(saved, referenceRows - sharedRows);
        Assert.Equal(sharedRows, shared.Stats.LargeTokensFed);
        Assert.Equal(referenceRows, reference.Stats.LargeTokensFed);
        AssertAllKvReleased();
    }

    [Fact]
    public async Task CandidatesThatDrawAlikeAreFedOnceByEveryModel()
    {
        var m = Setup("same-tokenizer");
        const int W = 2, K = 2, L = 3, MaxNew = 12;
        // Greedy: every candidate draws the same tokens, so the W·K of each chunk are one candidate four times.
        var request = new SearchRequest { Prompt = Prompt, BeamWidth = W, Successors = K, ChunkLength = L, MaxNewTokens = MaxNew, EosTokenIds = [], Temperature = 0f, Seed = 2 };
        int p = m.Tuned.Tokenizer.Encode(Prompt).Count, largePrompt = m.Large.Tokenizer.Encode(Prompt).Count;
        long tunedBefore = m.Tuned.Transformer.TokensProcessed;

        var result = await Run(m, request);

        Assert.Equal(m.Large.Model!.Generate(m.Large.Tokenizer.Encode(Prompt), MaxNew, new SamplingSettings(0f, 50, 1f, 2)), result.Tokens);
        Assert.Equal(W * K * MaxNew, result.Stats.LargeTokensSampled);
        Assert.Equal(largePrompt - 1 + MaxNew, result.Stats.LargeTokensFed); // the prompt, then one row per step
        Assert.Equal(p + MaxNew, result.Stats.TunedTokensScored);            // the prompt, then one candidate's tokens
        Assert.Equal(p + MaxNew, result.Stats.UntunedTokensScored);
        Assert.Equal(result.Stats.TunedTokensScored, m.Tuned.Transformer.TokensProcessed - tunedBefore);
        double expected = IndependentScore.Score(m.Large, m.Tuned, m.Untuned, Prompt, result.Text, result.Tokens, result.Finish != FinishReason.None);
        Assert.True(Math.Abs(result.Score - expected) <= ScoreTolerance, $"reported {result.Score}, recomputed {expected}");
        AssertAllKvReleased();
    }

    /// <summary>Extends each candidate in a call of its own, so no two of them can share a row.</summary>
    private sealed class OneCandidatePerCallLargeModel(ILargeModel inner) : ILargeModel
    {
        public string Name => inner.Name;

        public TextTokenizer? Tokenizer => inner.Tokenizer;

        public bool SingleStepsAreCheap => inner.SingleStepsAreCheap;

        public Task<LargeCandidate> StartAsync(string prompt, GenerationSettings settings, SearchCounters counters, CancellationToken cancellationToken = default) =>
            inner.StartAsync(prompt, settings, counters, cancellationToken);

        public async Task ExtendAsync(IReadOnlyList<LargeCandidate> candidates, int maxTokens, SearchCounters counters, CancellationToken cancellationToken = default)
        {
            for (int step = 0; step < maxTokens; step++)
                foreach (var c in candidates) await inner.ExtendAsync([c], 1, counters, cancellationToken);
        }

        public void Dispose() => inner.Dispose();
    }

    /// <summary>A large model that spends at least <c>floor</c> in every call on top of the model it wraps.</summary>
    private sealed class SlowLargeModel(ILargeModel inner, TimeSpan floor) : ILargeModel
    {
        public int Calls { get; private set; }

        public string Name => inner.Name;

        public TextTokenizer? Tokenizer => inner.Tokenizer;

        public bool SingleStepsAreCheap => inner.SingleStepsAreCheap;

        public async Task<LargeCandidate> StartAsync(string prompt, GenerationSettings settings, SearchCounters counters, CancellationToken cancellationToken = default)
        {
            await Wait(cancellationToken);
            return await inner.StartAsync(prompt, settings, counters, cancellationToken);
        }

        public async Task ExtendAsync(IReadOnlyList<LargeCandidate> candidates, int maxTokens, SearchCounters counters, CancellationToken cancellationToken = default)
        {
            await Wait(cancellationToken);
            await inner.ExtendAsync(candidates, maxTokens, counters, cancellationToken);
        }

        /// <summary>Measured on the stopwatch the search reads: a timer alone may wake a little early.</summary>
        private async Task Wait(CancellationToken cancellationToken)
        {
            Calls++;
            long start = Stopwatch.GetTimestamp();
            while (Stopwatch.GetElapsedTime(start) < floor) await Task.Delay(1, cancellationToken);
        }

        public void Dispose() => inner.Dispose();
    }
}
