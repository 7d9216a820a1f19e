using System.Text.Json;

namespace WeakToStrong.Tests.Cli;

/// <summary>The w2s commands against the golden fixtures, and their behaviour on bad input.</summary>
[Trait("Category", "Integration")]
public class CliTests
{
    private static string Ids(IEnumerable<int> ids) => string.Join(",", ids);

    [Theory]
    [MemberData(nameof(TestPaths.FixtureNames), MemberType = typeof(TestPaths))]
    public void ScoreJsonMatchesTransformers(string fixture)
    {
        var c = GoldenCase.Load(fixture)[1];
        var r = CliRunner.Run("score", "--model", TestPaths.Fixture(fixture), "--prompt-tokens", Ids(c.PromptTokens), "--continuation-tokens", Ids(c.ContinuationTokens), "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        Assert.Equal(c.PromptTokens, root.GetProperty("prompt_tokens").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(c.ContinuationTokens, root.GetProperty("continuation_tokens").EnumerateArray().Select(e => e.GetInt32()));
        var logprobs = root.GetProperty("logprobs").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        for (int i = 0; i < logprobs.Length; i++) Assert.True(Math.Abs(logprobs[i] - c.ContinuationLogprobs[i]) <= 2e-4, $"token {i}");
        Assert.Equal(c.ContinuationLogprobs.Sum(), root.GetProperty("total").GetDouble(), 3);
    }

    [Theory]
    [MemberData(nameof(TestPaths.FixtureNames), MemberType = typeof(TestPaths))]
    public void GenerateGreedyMatchesTransformers(string fixture)
    {
        var c = GoldenCase.Load(fixture)[0];
        var r = CliRunner.Run("generate", "--model", TestPaths.Fixture(fixture), "--prompt-tokens", Ids(c.PromptTokens), "--max-new-tokens", c.GreedyTokens.Length.ToString(), "--temperature", "0", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        Assert.Equal(c.GreedyTokens, doc.RootElement.GetProperty("tokens").EnumerateArray().Select(e => e.GetInt32()));
    }

    [Fact]
    public void TextPromptsAreTokenizedWithTheModelsTokenizer()
    {
        // "Hello world" is [15496, 995] in GPT-2 (tokenization.json); scoring the text must equal scoring the ids.
        var text = CliRunner.Run("score", "--model", TestPaths.Fixture("gpt2-tiny"), "--prompt", "Hello", "--continuation", " world", "--json");
        var ids = CliRunner.Run("score", "--model", TestPaths.Fixture("gpt2-tiny"), "--prompt-tokens", "15496", "--continuation-tokens", "995", "--json");
        Assert.True(text.ExitCode == 0, text.Stderr);
        Assert.Equal(ids.Stdout, text.Stdout);
        var info = CliRunner.Run("info", "--model", TestPaths.Fixture("llama-tiny"), "--json");
        using var doc = JsonDocument.Parse(info.Stdout);
        Assert.Equal("llama", doc.RootElement.GetProperty("family").GetString());
        Assert.Equal([2], doc.RootElement.GetProperty("eos_token_ids").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Contains("SentencePiece", doc.RootElement.GetProperty("tokenizer").GetString());
    }

    public static IEnumerable<object[]> BadInputs()
    {
        string gpt2 = TestPaths.Fixture("gpt2-tiny");
        yield return ["model folder not found", new[] { "score", "--model", "/no/such/folder", "--prompt-tokens", "1", "--continuation-tokens", "2" }];
        yield return ["outside the vocabulary", new[] { "score", "--model", gpt2, "--prompt-tokens", "1", "--continuation-tokens", "50257" }];
        yield return ["not a token id", new[] { "score", "--model", gpt2, "--prompt-tokens", "1,x", "--continuation-tokens", "2" }];
        yield return ["context", new[] { "generate", "--model", gpt2, "--prompt-tokens", string.Join(",", Enumerable.Repeat(5, 129)), "--max-new-tokens", "2" }];
        yield return ["no tokenizer found", new[] { "score", "--model", TestPaths.Fixture("qwen2-small"), "--prompt", "hi", "--continuation-tokens", "2" }];
        yield return ["top-p", new[] { "generate", "--model", gpt2, "--prompt-tokens", "1", "--max-new-tokens", "2", "--top-p", "0" }];
        yield return ["exactly one of --prompt and --prompt-tokens", new[] { "score", "--model", gpt2, "--continuation-tokens", "2" }];
    }

    [Theory]
    [MemberData(nameof(BadInputs))]
    public void BadInputGivesOneClearLineAndANonZeroExit(string expected, string[] args)
    {
        var r = CliRunner.Run(args);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains(expected, r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.Single(r.Stderr.Trim().Split('\n'));
    }

    /// <summary>
    /// The peak resident set that the CLI limit tests assert on is w2s's own, even for a run that ends in
    /// milliseconds: never missing (a run that ended before a poll read it) and never the test host's (a child
    /// spawned from the host inherits the host's high-water mark as its own until it execs).
    /// </summary>
    [Fact]
    public void TheMeasuredPeakOfAShortRunIsW2sOwn()
    {
        for (int run = 0; run < 5; run++)
        {
            var (r, _, peak) = CliRunner.RunMeasured("generate", "--model", TestPaths.Fixture("gpt2-tiny"), "--prompt-tokens", "1", "--top-p", "0");
            Assert.Equal(2, r.ExitCode);
            long host = System.Diagnostics.Process.GetCurrentProcess().PeakWorkingSet64;
            Assert.True(peak > 1 << 20, $"run {run}: peak {peak} bytes");
            Assert.True(peak < host, $"run {run}: w2s's peak {peak} bytes is not below the test host's {host}: the host's was measured");
        }
    }

    [Fact]
    public void CorruptCheckpointIsNamedNotAStackTrace()
    {
        using var dir = TestPaths.Temp().WithFixture("llama-tiny");
        var path = dir.File_("model.safetensors");
        var bytes = File.ReadAllBytes(path);
        BitConverter.GetBytes(1UL << 60).CopyTo(bytes, 0);
        File.WriteAllBytes(path, bytes);
        var r = CliRunner.Run("info", "--model", dir.Path);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("model.safetensors", r.Stderr);
        Assert.Contains("header length", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    /// <summary>
    /// Spectre.Console trusts TERM even when stdout is a pipe, so tables, markup and progress wrote escape codes into
    /// redirected output (files, logs, other programs). Every command that prints a table or markup must not.
    /// </summary>
    [Theory]
    [InlineData("demo", "--prompts", "1")]
    [InlineData("info", "--model", "FIXTURE")]
    [InlineData("ops", "--device", "cpu", "--op", "embed", "--shapes", "small")]
    public void RedirectedOutputHasNoEscapeCodesWhateverTermSays(params string[] args)
    {
        var start = CliRunner.StartInfo([.. args.Select(a => a == "FIXTURE" ? TestPaths.Fixture("gpt2-tiny") : a)]);
        start.Environment.Remove("NO_COLOR");
        start.Environment["TERM"] = "xterm-256color";
        var r = CliRunner.Run(start);
        Assert.Equal(0, r.ExitCode);
        Assert.NotEmpty(r.Stdout.Trim());
        Assert.DoesNotContain('\u001b', r.Stdout);
        Assert.DoesNotContain('\u001b', r.Stderr);
    }
}
