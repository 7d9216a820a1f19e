using WeakToStrong.Engine;
using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;

namespace WeakToStrong.Tests.Search;

[Trait("Category", "Unit")]
public class StreamingTests(SearchModelsFixture models) : IClassFixture<SearchModelsFixture>
{
    private const string Prompt = "I watched this movie last night and";

    /// <summary>Accented letters, an emoji (4 UTF-8 bytes, a surrogate pair) and a CJK character.</summary>
    private const string UnicodePrompt = "Café naïve — 😀 über 日本";

    private (ChatModel Large, ChatModel Tuned, ChatModel Untuned) Setup(string name) => name switch
    {
        "same-tokenizer" => (models.Large, models.Tuned, models.Untuned),
        "cross-tokenizer" => (models.Llama, models.Tuned, models.Untuned),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    private SearchContext Context((ChatModel Large, ChatModel Tuned, ChatModel Untuned) m) => models.Context(m.Large, m.Tuned, m.Untuned);

    private static SearchRequest Request(SearchMethodKind method, string prompt, ulong seed, int maxNewTokens = 20) => new()
    {
        Prompt = prompt, Method = method, BeamWidth = 2, Successors = 2, ChunkLength = 3, N = 4, MaxNewTokens = maxNewTokens, Seed = seed,
    };

    /// <summary>Every update of a stream, checking that only the last one carries the result.</summary>
    private static async Task<(List<string> Deltas, SearchResult Result)> Collect(IAsyncEnumerable<SearchUpdate> stream)
    {
        var updates = new List<SearchUpdate>();
        await foreach (var update in stream) updates.Add(update);
        Assert.NotEmpty(updates);
        Assert.All(updates.SkipLast(1), u => Assert.Null(u.Result));
        var result = updates[^1].Result;
        Assert.NotNull(result);
        return (updates.Select(u => u.TextDelta).ToList(), result);
    }

    /// <summary>The emitted text after each update but the last.</summary>
    private static List<string> Cumulative(List<string> deltas)
    {
        var texts = new List<string>();
        string text = "";
        foreach (var d in deltas.SkipLast(1)) texts.Add(text += d);
        return texts;
    }

    /// <summary>Written out here rather than shared with the library: text up to any trailing U+FFFD or high surrogate.</summary>
    private static string Stable(string text)
    {
        int n = text.Length;
        while (n > 0 && text[n - 1] == '\uFFFD') n--;
        if (n > 0 && char.IsHighSurrogate(text[n - 1])) n--;
        return text[..n];
    }

    private void AssertAllKvReleased()
    {
        foreach (var m in new[] { models.Large, models.Tuned, models.Untuned, models.Llama })
            Assert.Equal(m.Transformer.Cache.TotalBlocks, m.Transformer.Cache.FreeBlocks);
    }

    /// <summary>Deltas are never empty, never end inside a character, and concatenate to the final text.</summary>
    private static void AssertWellFormed(List<string> deltas, SearchResult result)
    {
        Assert.Equal(result.Text, string.Concat(deltas));
        foreach (var text in Cumulative(deltas))
        {
            Assert.NotEqual("", text);
            Assert.Equal(Stable(text), text);
        }
        Assert.All(deltas.SkipLast(1), d => Assert.NotEqual("", d));
    }

    [Theory]
    [InlineData(SearchMethodKind.ChunkBeamSearch, "same-tokenizer")]
    [InlineData(SearchMethodKind.ChunkBeamSearch, "cross-tokenizer")]
    [InlineData(SearchMethodKind.BestOfN, "same-tokenizer")]
    [InlineData(SearchMethodKind.BestOfN, "cross-tokenizer")]
    [InlineData(SearchMethodKind.EmulatedFineTuning, "same-tokenizer")]
    [InlineData(SearchMethodKind.Sample, "same-tokenizer")]
    [InlineData(SearchMethodKind.Sample, "cross-tokenizer")]
    public async Task ConcatenatedDeltasAreTheTextRunAsyncReturnsForTheSameSeed(SearchMethodKind method, string setup)
    {
        var m = Setup(setup);
        foreach (string prompt in new[] { Prompt, UnicodePrompt })
        {
            var request = Request(method, prompt, seed: 5);
            var run = await SearchMethods.For(method).RunAsync(Context(m), request);
            var (deltas, streamed) = await Collect(SearchMethods.For(method).StreamAsync(Context(m), request));

            AssertWellFormed(deltas, streamed);
            Assert.Equal(run.Text, streamed.Text);
            Assert.Equal(run.Tokens, streamed.Tokens);
            Assert.Equal(run.Score, streamed.Score);
            Assert.Equal(run.Finish, streamed.Finish);
            AssertAllKvReleased();
        }
    }

    [Theory]
    [InlineData("same-tokenizer")]
    [InlineData("cross-tokenizer")]
    public async Task ChunkBeamSearchStreamsTheLongestCommonPrefixOfTheLiveCandidates(string setup)
    {
        var m = Setup(setup);
        // W = 1: after every selection the one survivor's text is final, so each chunk's survivor must have been
        // streamed before the search ends.
        var single = new SearchRequest { Prompt = Prompt, BeamWidth = 1, Successors = 3, ChunkLength = 4, MaxNewTokens = 20, EosTokenIds = [], Seed = 9, Trace = true };
        var (deltas, result) = await Collect(SearchMethods.For(single.Method).StreamAsync(Context(m), single));
        AssertWellFormed(deltas, result);
        string beforeEnd = string.Concat(deltas.SkipLast(1));
        Assert.Equal(5, result.Trace!.Count);
        foreach (var chunk in result.Trace.SkipLast(1))
        {
            string survivor = Stable(chunk.Candidates[chunk.Selected[0]].Text);
            Assert.StartsWith(survivor, beforeEnd, StringComparison.Ordinal);
        }
        Assert.True(beforeEnd.Length > 0, "text should stream before the end");

        // W = 2: before the last update exactly the common prefix of the last chunk's candidates has been streamed
        // (every earlier candidate is an ancestor of all of them), and none of it more.
        var wide = single with { BeamWidth = 2, Successors = 2, Seed = 4 };
        (deltas, result) = await Collect(SearchMethods.For(wide.Method).StreamAsync(Context(m), wide));
        AssertWellFormed(deltas, result);
        var last = result.Trace![^1].Candidates.Select(c => c.Text).ToList();
        int common = last.Select(Stable).Aggregate((a, b) => a[..a.Zip(b).TakeWhile(p => p.First == p.Second).Count()]).Length;
        Assert.Equal(Stable(last[0][..common]), string.Concat(deltas.SkipLast(1)));
        AssertAllKvReleased();
    }

    /// <summary>
    /// A large model that draws only pieces of "é" (C3 A9) and "😀" (F0 9F 98 | 80), each byte alone or as GPT-2
    /// merges them, and "a": its responses split characters across tokens and hold invalid sequences too.
    /// </summary>
    private ChatModel ByteSplittingModel()
    {
        var tokenizer = models.Large.Tokenizer;
        var tokens = new HashSet<int>(tokenizer.Encode("😀").Concat(tokenizer.Encode("é")).Concat(tokenizer.Encode("a")));
        foreach (string single in new[] { "Ã", "©", "ð" }) tokens.Add(tokenizer.TokenToId(single)!.Value);
        string name = $"bytes-{Guid.NewGuid():N}";
        string dir = SearchTestModels.WriteGpt2(models.Folder, name, seed: 44, onlyTokens: tokens);
        return ChatModel.Load(dir, new ModelOptions { KvBlocks = 256 });
    }

    [Theory]
    [InlineData(SearchMethodKind.Sample)]
    [InlineData(SearchMethodKind.EmulatedFineTuning)]
    public async Task SingleCandidateMethodsStreamEachTokenAsItIsDrawn(SearchMethodKind method)
    {
        using var large = ByteSplittingModel();
        var request = Request(method, UnicodePrompt, seed: 21, maxNewTokens: 40) with { EosTokenIds = [] };
        var (deltas, result) = await Collect(SearchMethods.For(method).StreamAsync(models.Context(large, models.Tuned, models.Untuned), request));

        // What was final after each token, by the tokenizer alone.
        var expected = new List<string>();
        for (int i = 1; i <= result.Tokens.Count; i++)
        {
            string text = Stable(large.Tokenizer.Decode(result.Tokens.Take(i)));
            if (text.Length > (expected.Count == 0 ? 0 : expected[^1].Length)) expected.Add(text);
        }
        if (expected.Count > 0 && expected[^1] == result.Text) expected.RemoveAt(expected.Count - 1);
        Assert.Equal(expected, Cumulative(deltas));
        Assert.True(expected.Count >= 10, $"only {expected.Count} updates for {result.Tokens.Count} tokens");
        AssertWellFormed(deltas, result);
    }

    [Theory]
    [InlineData(SearchMethodKind.Sample)]
    [InlineData(SearchMethodKind.EmulatedFineTuning)]
    [InlineData(SearchMethodKind.ChunkBeamSearch)]
    [InlineData(SearchMethodKind.BestOfN)]
    public async Task ACharacterSplitAcrossTokensIsHeldBackUntilItsLastByte(SearchMethodKind method)
    {
        using var large = ByteSplittingModel();
        var context = models.Context(large, models.Tuned, models.Untuned);
        var request = Request(method, UnicodePrompt, seed: 8, maxNewTokens: 40) with { EosTokenIds = [] };
        var run = await SearchMethods.For(method).RunAsync(context, request);
        var (deltas, result) = await Collect(SearchMethods.For(method).StreamAsync(context, request));
        AssertWellFormed(deltas, result);
        Assert.Equal(run.Text, result.Text);

        // The response must really split a character: after some token the text ends in an incomplete sequence
        // that a later token completes (é, or the emoji's surrogate pair).
        Assert.Contains(Enumerable.Range(1, result.Tokens.Count - 1), i =>
        {
            string partial = large.Tokenizer.Decode(result.Tokens.Take(i));
            int stable = Stable(partial).Length;
            return stable < partial.Length && result.Text[stable] is 'é' or '\uD83D';
        });
        Assert.Contains("é", result.Text);
        Assert.Contains('\uFFFD', result.Text); // invalid sequences stay in the final text, U+FFFD each
        AssertAllKvReleased();
    }

    [Fact]
    public async Task CancellingBetweenStepsFreesEveryKvBlockAndTheSearch()
    {
        using var search = WeakToStrongSearch.Load(new SearchModelOptions
        {
            LargeDirectory = models.LargeDirectory, TunedDirectory = models.TunedDirectory, UntunedDirectory = models.UntunedDirectory,
            Model = new ModelOptions { KvBlocks = 256 },
        });
        var caches = new[] { ((LocalLargeModel)search.Context.Large).Model, search.Context.Tuned, search.Context.Untuned }.Select(x => x.Transformer.Cache).ToList();
        var request = new SearchRequest { Prompt = Prompt, BeamWidth = 2, Successors = 2, ChunkLength = 4, MaxNewTokens = 60, EosTokenIds = [], Seed = 3 };

        using var cancel = new CancellationTokenSource();
        int received = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var update in search.StreamAsync(request, cancel.Token))
            {
                Assert.Null(update.Result);
                Assert.Contains(caches, c => c.UsedBlocks > 0);
                if (++received == 2) cancel.Cancel();
            }
        });
        Assert.Equal(2, received);
        Assert.All(caches, c => Assert.Equal(c.TotalBlocks, c.FreeBlocks));

        // Leaving the enumeration early frees them too, and the search takes the next request.
        await foreach (var update in search.StreamAsync(request with { Method = SearchMethodKind.Sample }))
            break;
        Assert.All(caches, c => Assert.Equal(c.TotalBlocks, c.FreeBlocks));
        var after = await search.RunAsync(request with { MaxNewTokens = 8 });
        Assert.Equal(8, after.Tokens.Count);
        Assert.All(caches, c => Assert.Equal(c.TotalBlocks, c.FreeBlocks));
    }
}
