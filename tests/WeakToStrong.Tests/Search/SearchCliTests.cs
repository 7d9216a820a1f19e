using System.Globalization;
using System.Text.Json;
using WeakToStrong.Tests.Cli;

namespace WeakToStrong.Tests.Search;

/// <summary><c>w2s search</c> and <c>w2s eval</c> through the real executable.</summary>
[Trait("Category", "Integration")]
public class SearchCliTests(SearchModelsFixture models) : IClassFixture<SearchModelsFixture>
{
    private const string Prompt = "Once upon a time";

    private static string Ids(JsonElement array) => string.Join(",", array.EnumerateArray().Select(e => e.GetInt32()));

    private static double ScoreWithCli(string model, JsonElement scored)
    {
        var r = CliRunner.Run("score", "--model", model, "--prompt-tokens", Ids(scored.GetProperty("prompt_tokens")),
            "--continuation-tokens", Ids(scored.GetProperty("response_tokens")), "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        return doc.RootElement.GetProperty("total").GetDouble();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SearchScoreEqualsScoreCommandOnTunedMinusUntuned(bool crossTokenizer)
    {
        string large = crossTokenizer ? TestPaths.Fixture("llama-tiny") : models.LargeDirectory;
        var r = CliRunner.Run("search", "--large", large, "--tuned", models.TunedDirectory, "--untuned", models.UntunedDirectory,
            "--prompt", Prompt, "--beam-width", "2", "--successors", "2", "--chunk-length", "4", "--max-new-tokens", "12", "--seed", "3", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        double score = root.GetProperty("score").GetDouble();
        double tuned = ScoreWithCli(models.TunedDirectory, root.GetProperty("tuned"));
        double untuned = ScoreWithCli(models.UntunedDirectory, root.GetProperty("untuned"));
        Assert.True(Math.Abs(score - (tuned - untuned)) <= 1e-3, $"search {score}, w2s score {tuned} − {untuned}");
        var stats = root.GetProperty("stats");
        foreach (string key in new[] { "large_tokens_sampled", "small_tokens_scored", "forward_calls", "wall_ms" })
            Assert.True(stats.TryGetProperty(key, out _), key);
        double sampling = stats.GetProperty("sampling_ms").GetDouble(), scoring = stats.GetProperty("scoring_ms").GetDouble();
        Assert.True(sampling > 0 && scoring > 0 && sampling + scoring <= stats.GetProperty("wall_ms").GetDouble() + 0.002, $"sampling {sampling} + scoring {scoring} ms vs wall");
        Assert.False(root.TryGetProperty("trace", out _));
        Assert.NotEmpty(root.GetProperty("text").GetString()!);
    }

    [Fact]
    public void TraceListsEachChunksCandidatesAndSelection()
    {
        var r = CliRunner.Run("search", "--large", models.LargeDirectory, "--tuned", models.TunedDirectory, "--untuned", models.UntunedDirectory,
            "--prompt", Prompt, "--beam-width", "2", "--successors", "3", "--chunk-length", "3", "--max-new-tokens", "9", "--trace", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var trace = doc.RootElement.GetProperty("trace").EnumerateArray().ToList();
        Assert.Equal(3, trace.Count);
        foreach (var chunk in trace)
        {
            Assert.Equal(6, chunk.GetProperty("candidates").GetArrayLength());
            Assert.Equal(2, chunk.GetProperty("selected").GetArrayLength());
        }
        var last = trace[^1];
        int best = last.GetProperty("selected")[0].GetInt32();
        Assert.Equal(doc.RootElement.GetProperty("text").GetString(), last.GetProperty("candidates")[best].GetProperty("text").GetString());
    }

    [Fact]
    public void EftWithDifferentVocabulariesIsAUsageError()
    {
        var r = CliRunner.Run("search", "--large", TestPaths.Fixture("llama-tiny"), "--tuned", models.TunedDirectory, "--untuned", models.UntunedDirectory,
            "--prompt", Prompt, "--method", "eft");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("one vocabulary", r.Stderr);
        Assert.DoesNotContain("   at ", r.Stderr);
    }

    [Fact]
    public void EvalRunsEveryPromptAndSeedOnceResumesAndSummarisesPerMethod()
    {
        string prompts = Path.Combine(models.Folder, "prompts.jsonl");
        string output = Path.Combine(models.Folder, "eval", "out.jsonl");
        File.WriteAllLines(prompts, [
            """{"id": "a", "prompt": "The film was"}""",
            """{"id": 7, "instruction": "Write a line about rain."}""",
            """{"prompt": "I think"}""",
        ]);
        string[] Args(params string[] extra) => ["eval", "--large", models.LargeDirectory, "--tuned", models.TunedDirectory, "--untuned", models.UntunedDirectory,
            "--prompts", prompts, "--out", output, "--max-new-tokens", "6", "--beam-width", "2", "--successors", "2", "--chunk-length", "3", .. extra];

        var first = CliRunner.Run(Args("--seeds", "1,2", "--json"));
        Assert.True(first.ExitCode == 0, first.Stderr);
        using (var doc = JsonDocument.Parse(first.Stdout))
        {
            Assert.Equal(6, doc.RootElement.GetProperty("ran").GetInt32());
            Assert.Equal(0, doc.RootElement.GetProperty("skipped").GetInt32());
        }
        var lines = File.ReadAllLines(output);
        Assert.Equal(6, lines.Length);
        var ids = lines.Select(l => JsonDocument.Parse(l).RootElement.GetProperty("id").GetString()).ToHashSet();
        Assert.Equal(new HashSet<string?> { "a", "7", "3" }, ids);

        // Resume: a line cut short by an interrupted run is run again; complete ones are skipped.
        File.WriteAllLines(output, [.. lines[..5], lines[5][..20]]);
        var resumed = CliRunner.Run(Args("--seeds", "1,2", "--json"));
        Assert.True(resumed.ExitCode == 0, resumed.Stderr);
        using (var doc = JsonDocument.Parse(resumed.Stdout))
        {
            Assert.Equal(1, doc.RootElement.GetProperty("ran").GetInt32());
            Assert.Equal(5, doc.RootElement.GetProperty("skipped").GetInt32());
        }

        var bon = CliRunner.Run(Args("--seeds", "1", "--method", "bon", "--n", "2", "--json"));
        Assert.True(bon.ExitCode == 0, bon.Stderr);
        using (var doc = JsonDocument.Parse(bon.Stdout))
        {
            var summary = doc.RootElement.GetProperty("summary").EnumerateArray().ToDictionary(s => s.GetProperty("method").GetString()!);
            Assert.Equal(6, summary["cbs(2,2,3)"].GetProperty("runs").GetInt32());
            Assert.Equal(3, summary["bon(2)"].GetProperty("runs").GetInt32());
            var scores = File.ReadLines(output).Where(l => l.Contains("\"bon(2)\"")).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("score").GetDouble());
            Assert.Equal(scores.Average(), summary["bon(2)"].GetProperty("mean_score").GetDouble(), 9);
        }

        // Without --json: a summary table.
        var table = CliRunner.Run(Args("--seeds", "1,2"));
        Assert.True(table.ExitCode == 0, table.Stderr);
        Assert.Contains("mean score", table.Stdout);
        Assert.Contains("cbs(2,2,3)", table.Stdout);
        Assert.Contains("bon(2)", table.Stdout);
        Assert.Contains(6.ToString(CultureInfo.InvariantCulture), table.Stdout);
    }

    private const string Conversation = """[{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Tell me a story."}, {"role": "assistant", "content": [{"type": "text", "text": "Once"}]}, {"role": "user", "content": "Go on."}]""";

    private string[] SearchArgs(params string[] extra) => ["search", "--large", models.LargeDirectory, "--tuned", models.TunedDirectory, "--untuned", models.UntunedDirectory,
        "--beam-width", "2", "--successors", "2", "--chunk-length", "3", "--max-new-tokens", "9", "--seed", "4", "--json", .. extra];

    /// <summary>
    /// A conversation given with --messages reaches every model. These models have no chat template, so they read it
    /// as the system message and the turns joined by blank lines: the search must be exactly that one prompt's, with
    /// the same tokens scored by each small model.
    /// </summary>
    [Fact]
    public void AMessagesFileSearchesTheConversation()
    {
        string file = Path.Combine(models.Folder, "conversation.json");
        File.WriteAllText(file, Conversation);
        var conversation = CliRunner.Run(SearchArgs("--messages", file));
        var joined = CliRunner.Run(SearchArgs("--chat", "--system", "Be kind.", "--prompt", "Tell me a story.\n\nOnce\n\nGo on."));
        Assert.True(conversation.ExitCode == 0, conversation.Stderr);
        Assert.True(joined.ExitCode == 0, joined.Stderr);
        using var a = JsonDocument.Parse(conversation.Stdout);
        using var b = JsonDocument.Parse(joined.Stdout);
        Assert.Equal(b.RootElement.GetProperty("text").GetString(), a.RootElement.GetProperty("text").GetString());
        Assert.Equal(b.RootElement.GetProperty("score").GetDouble(), a.RootElement.GetProperty("score").GetDouble());
        foreach (string model in new[] { "tuned", "untuned" })
            Assert.Equal(Ids(b.RootElement.GetProperty(model).GetProperty("prompt_tokens")), Ids(a.RootElement.GetProperty(model).GetProperty("prompt_tokens")));

        // An eval prompt file takes the same conversation as a "messages" line.
        string prompts = Path.Combine(models.Folder, "conversations.jsonl"), output = Path.Combine(models.Folder, "conversations-out.jsonl");
        File.WriteAllLines(prompts, [$$"""{"id": "c", "messages": {{Conversation}}}"""]);
        File.Delete(output);
        var eval = CliRunner.Run("eval", "--large", models.LargeDirectory, "--tuned", models.TunedDirectory, "--untuned", models.UntunedDirectory, "--prompts", prompts, "--out", output,
            "--beam-width", "2", "--successors", "2", "--chunk-length", "3", "--max-new-tokens", "9", "--seeds", "4", "--json");
        Assert.True(eval.ExitCode == 0, eval.Stderr);
        using var line = JsonDocument.Parse(Assert.Single(File.ReadAllLines(output)));
        Assert.Equal("Go on.", line.RootElement.GetProperty("prompt").GetString());
        Assert.Equal(a.RootElement.GetProperty("text").GetString(), line.RootElement.GetProperty("text").GetString());
    }

    [Theory]
    [InlineData(null, "--prompt x --messages FILE", "error: give exactly one of --prompt and --messages")]
    [InlineData(null, "", "error: give exactly one of --prompt and --messages")]
    [InlineData(null, "--messages /nonexistent/conversation.json", "error: --messages: /nonexistent/conversation.json does not exist")]
    [InlineData("[{\"role\": \"user\"", "--messages FILE", "not JSON")]
    [InlineData("{\"role\": \"user\", \"content\": \"hi\"}", "--messages FILE", "'messages' must be an array (got an object).")]
    [InlineData("[{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", \"content\": \"yes\"}]", "--messages FILE", "the last message must be a user message (messages[1] is an assistant message)")]
    [InlineData("[{\"role\": \"tool\", \"content\": \"42\"}]", "--messages FILE", "'messages[0]': tool messages are not supported")]
    [InlineData("[{\"role\": \"user\", \"content\": [{\"type\": \"image_url\"}]}]", "--messages FILE", "'messages[0].content[0]': only text parts are supported.")]
    [InlineData("[{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"system\", \"content\": \"b\"}, {\"role\": \"user\", \"content\": \"c\"}]", "--messages FILE", "'messages[1]': system and developer messages must come before")]
    [InlineData(Conversation, "--messages FILE --system S", "error: --system: the conversation has its own system message")]
    public void BadMessagesAreOneLineNamingTheMessage(string? content, string arguments, string expected)
    {
        string file = Path.Combine(models.Folder, $"bad-{Guid.NewGuid():N}.json");
        if (content is not null) File.WriteAllText(file, content);
        var r = CliRunner.Run(SearchArgs([.. arguments.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(a => a == "FILE" ? file : a)]));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains(expected, Assert.Single(r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Assert.DoesNotContain("   at ", r.Stderr);
        Assert.Equal("", r.Stdout);
    }
}
