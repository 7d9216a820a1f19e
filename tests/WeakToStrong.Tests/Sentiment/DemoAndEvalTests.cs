using System.Text.Json;
using WeakToStrong.Cli.Commands;
using WeakToStrong.Cli.Rewards;
using WeakToStrong.Engine;
using WeakToStrong.Search;
using WeakToStrong.Tests.Cli;

namespace WeakToStrong.Tests.Sentiment;

/// <summary><c>w2s demo</c> and the bundled models as the default of <c>w2s search</c> / <c>w2s eval --reward</c>.</summary>
[Trait("Category", "Integration")]
public class DemoAndEvalTests
{
    [Fact]
    public void DemoJsonHasBaseAndCbsPerPromptWithTheirGoldRewards()
    {
        var result = CliRunner.Run("demo", "--json");
        Assert.True(result.ExitCode == 0, result.Stderr);
        var root = JsonDocument.Parse(result.Stdout).RootElement;
        Assert.Equal("sample", root.GetProperty("base_method").GetString());
        Assert.Equal("cbs(4,4,5)", root.GetProperty("cbs_method").GetString());
        Assert.Equal("vader-sentiment-1.1.3", root.GetProperty("reward").GetString());
        var rows = root.GetProperty("rows").EnumerateArray().ToList();
        Assert.Equal(DemoCommand.DefaultPrompts, rows.Count);
        var prompts = File.ReadLines(Path.Combine(AppContext.BaseDirectory, "models", "sentiment", "prompts.jsonl")).Take(rows.Count)
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("prompt").GetString()).ToList();
        double baseSum = 0, cbsSum = 0, wallSum = 0;
        int wins = 0;
        for (int i = 0; i < rows.Count; i++)
        {
            Assert.Equal(prompts[i], rows[i].GetProperty("prompt").GetString());
            foreach (string method in new[] { "base", "cbs" })
            {
                var x = rows[i].GetProperty(method);
                string text = x.GetProperty("text").GetString()!;
                Assert.False(string.IsNullOrWhiteSpace(text));
                Assert.Equal(VaderSentiment.Default.Compound(text), x.GetProperty("reward").GetDouble());
                Assert.Equal(Fluency.Measure(text).Max3GramCount, x.GetProperty("max_3gram_count").GetInt32());
                double wall = x.GetProperty("wall_ms").GetDouble();
                Assert.True(wall > 0, $"{method} wall_ms {wall}");
                wallSum += wall;
                Assert.InRange(x.GetProperty("large_tokens_sampled").GetInt64(), 1, method == "base" ? 50 : 16 * 50);
            }
            Assert.True(rows[i].GetProperty("cbs").GetProperty("small_tokens_scored").GetInt64() > rows[i].GetProperty("base").GetProperty("small_tokens_scored").GetInt64());
            baseSum += rows[i].GetProperty("base").GetProperty("reward").GetDouble();
            cbsSum += rows[i].GetProperty("cbs").GetProperty("reward").GetDouble();
            if (rows[i].GetProperty("cbs").GetProperty("reward").GetDouble() > rows[i].GetProperty("base").GetProperty("reward").GetDouble()) wins++;
        }
        Assert.Equal(baseSum / rows.Count, root.GetProperty("mean_base_reward").GetDouble(), 9);
        Assert.Equal(cbsSum / rows.Count, root.GetProperty("mean_cbs_reward").GetDouble(), 9);
        Assert.Equal(wins, root.GetProperty("cbs_wins").GetInt32());
        // The searches ran one after another after loading and warm-up, inside the command's own clock: their wall
        // times add up to no more than total − load (each figure is rounded to 0.1 ms, hence the slack).
        double loadMs = root.GetProperty("load_ms").GetDouble(), totalMs = root.GetProperty("total_ms").GetDouble();
        Assert.True(loadMs > 0 && wallSum <= totalMs - loadMs + 0.05 * (2 * rows.Count + 2), $"searches {wallSum} ms, total {totalMs} ms, load {loadMs} ms");
    }

    [Fact]
    public void DemoTablePrintsBothColumnsAndTheMeans()
    {
        var result = CliRunner.Run("demo", "--prompts", "1");
        Assert.True(result.ExitCode == 0, result.Stderr);
        Assert.Contains("Base: sampling", result.Stdout);
        Assert.Contains("CBS (W,K,L = 4,4,5)", result.Stdout);
        Assert.Contains("mean gold reward", result.Stdout);
        Assert.Matches(@"CBS scored higher than Base on [01] of 1 prompts", result.Stdout);
        Assert.Contains("models loaded and warmed up in", result.Stdout);
    }

    [Fact]
    public void DemoRefusesAZeroPromptCount()
    {
        var result = CliRunner.Run("demo", "--prompts", "0");
        Assert.Equal(2, result.ExitCode);
        Assert.Equal("error: --prompts: 0 must be at least 1", result.Stderr.Trim());
    }

    [Fact]
    public void SearchWithoutModelFoldersUsesTheBundledModels()
    {
        var result = CliRunner.Run("search", "--prompt", "The day was", "--max-new-tokens", "10", "--seed", "3", "--json");
        Assert.True(result.ExitCode == 0, result.Stderr);
        var root = JsonDocument.Parse(result.Stdout).RootElement;
        Assert.InRange(root.GetProperty("tokens").GetArrayLength(), 1, 10);

        var half = CliRunner.Run("search", "--prompt", "x", "--large", "/tmp", "--tuned", "/tmp");
        Assert.Equal(2, half.ExitCode);
        Assert.Equal("error: give both --tuned and --untuned (or none of --large/--tuned/--untuned for the bundled sentiment models)", half.Stderr.Trim());
    }

    [Fact]
    public async Task EvalWithRewardAddsGoldRewardAndFluencyPerLineAndInTheSummary()
    {
        using var dir = TestPaths.Temp();
        string prompts = dir.File_("p.jsonl"), output = dir.File_("out.jsonl");
        File.WriteAllLines(prompts, ["{\"id\": \"a\", \"prompt\": \"It was a\"}", "{\"id\": \"b\", \"prompt\": \"The old man\"}"]);
        var result = CliRunner.Run("eval", "--prompts", prompts, "--out", output, "--method", "sample", "--seeds", "1,2", "--max-new-tokens", "12", "--reward", "vader", "--json");
        Assert.True(result.ExitCode == 0, result.Stderr);
        var lines = File.ReadAllLines(output).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(4, lines.Count);

        // Fluency recomputed apart from the CLI: the same request in this process gives the response's large-model
        // tokens (its text must be the line's), and the bundled large model, loaded on its own, scores them after
        // the prompt's tokens (BOS first, as tokenizer_config.json asks): their mean log-prob per token. The same
        // weights and tokens through the same CPU forward give the same floats, so the bound is only for the mean.
        string root = Path.Combine(AppContext.BaseDirectory, "models", "sentiment");
        using var search = WeakToStrongSearch.Load(new SearchModelOptions
        {
            LargeDirectory = Path.Combine(root, "large"),
            TunedDirectory = Path.Combine(root, "tuned"),
            UntunedDirectory = Path.Combine(root, "untuned"),
            Model = new ModelOptions(),
        });
        using var large = LanguageModel.Load(Path.Combine(root, "large"));
        var prompt = new Dictionary<string, string> { ["a"] = "It was a", ["b"] = "The old man" };

        var rewards = new List<(string Id, double Reward)>();
        foreach (var line in lines)
        {
            double reward = line.GetProperty("reward").GetDouble();
            string text = line.GetProperty("text").GetString()!;
            Assert.Equal(VaderSentiment.Default.Compound(text), reward);
            Assert.Equal("vader-sentiment-1.1.3", line.GetProperty("reward_name").GetString());
            var measures = Fluency.Measure(text);
            Assert.Equal(measures.Distinct1, line.GetProperty("distinct_1").GetDouble());
            Assert.Equal(measures.Distinct2, line.GetProperty("distinct_2").GetDouble());
            Assert.Equal(measures.Repeated3GramShare, line.GetProperty("repeated_3gram_share").GetDouble());
            string id = line.GetProperty("id").GetString()!;
            var again = await search.RunAsync(new SearchRequest { Prompt = prompt[id], Method = SearchMethodKind.Sample, Seed = line.GetProperty("seed").GetUInt64(), MaxNewTokens = 12 });
            Assert.Equal(text, again.Text);
            float[] logprobs = large.Score(large.Tokenizer.Encode(prompt[id], addBos: true), again.Tokens);
            Assert.Equal(again.Tokens.Count, logprobs.Length);
            new Tolerance(1e-9, 1e-9).AssertClose(logprobs.Average(x => (double)x), line.GetProperty("large_logprob_per_token").GetDouble(), $"{id} fluency");
            rewards.Add((id, reward));
        }
        var summary = JsonDocument.Parse(result.Stdout).RootElement.GetProperty("summary")[0];
        Assert.Equal(rewards.Average(r => r.Reward), summary.GetProperty("mean_reward").GetDouble(), 9);
        // Standard error over the two prompts' means (seeds averaged first).
        var perPrompt = rewards.GroupBy(r => r.Id).Select(g => g.Average(r => r.Reward)).ToArray();
        double m = perPrompt.Average();
        double se = Math.Sqrt(perPrompt.Sum(x => (x - m) * (x - m)) / 1 / 2);
        Assert.Equal(se, summary.GetProperty("reward_std_err").GetDouble(), 9);
        Assert.Equal(lines.Average(l => l.GetProperty("large_logprob_per_token").GetDouble()), summary.GetProperty("mean_large_logprob_per_token").GetDouble(), 9);
        Assert.Equal(lines.Average(l => l.GetProperty("distinct_2").GetDouble()), summary.GetProperty("mean_distinct_2").GetDouble(), 9);
        Assert.Equal(lines.Average(l => l.GetProperty("repeated_3gram_share").GetDouble()), summary.GetProperty("mean_repeated_3gram_share").GetDouble(), 9);
    }

    [Fact]
    public void EvalRefusesAnUnknownReward()
    {
        using var dir = TestPaths.Temp();
        string prompts = dir.File_("p.jsonl");
        File.WriteAllLines(prompts, ["{\"prompt\": \"It was a\"}"]);
        var result = CliRunner.Run("eval", "--prompts", prompts, "--out", dir.File_("o.jsonl"), "--reward", "lexicon:/no/such.tsv");
        Assert.Equal(2, result.ExitCode);
        Assert.Equal("error: --reward: /no/such.tsv: lexicon file not found", result.Stderr.Trim());
    }
}
