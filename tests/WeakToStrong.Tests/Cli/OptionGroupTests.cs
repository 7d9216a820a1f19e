using System.CommandLine;
using WeakToStrong.Cli.Commands;
using WeakToStrong.Engine;
using WeakToStrong.Engine.KvCache;
using WeakToStrong.Search;

namespace WeakToStrong.Tests.Cli;

/// <summary>
/// The option groups declared once (sampling, text-or-tokens, models, KV) reach every command that takes them with
/// that command's documented defaults, and a setting the library refuses is named by its option from one table.
/// </summary>
[Trait("Category", "Unit")]
public class OptionGroupTests
{
    private static ParseResult Parse(Command command, params string[] args) => command.Parse(args);

    private static HashSet<string> Options(Command command) => command.Options.Select(o => o.Name).ToHashSet();

    [Fact]
    public void EveryFieldTheLibraryCanBlameIsNamedByAnOptionOfSearch()
    {
        var search = Options(SearchCommand.Create());
        foreach (var field in Enum.GetValues<SearchField>())
        {
            Assert.True(OptionNames.Fields.TryGetValue(field, out string? option), $"SearchField.{field} has no entry in the CLI's table");
            if (field == SearchField.Prompt) Assert.Null(option); // from --prompt, --messages or a prompt file: the reason says "the prompt"
            else Assert.Contains(option!, search);
        }
        Assert.Contains(OptionNames.KvMemory, search);
    }

    [Fact]
    public void RefusalsAreWrittenUnderTheirOption()
    {
        Assert.Equal("--top-p: top-p must be in (0, 1]", OptionNames.Describe(new RequestValidationException(SearchField.TopP, "top-p must be in (0, 1]")));
        Assert.Equal("--messages: tiny: turns must alternate", OptionNames.Describe(new RequestValidationException(SearchField.History, "tiny: turns must alternate")));
        Assert.Equal("tiny: the prompt is 300 tokens", OptionNames.Describe(new RequestValidationException(SearchField.Prompt, "tiny: the prompt is 300 tokens")));
        Assert.Equal("--kv-memory: the KV budget is too small", OptionNames.Describe(new InvalidSettingException("the KV budget is too small", nameof(KvBudget.Bytes))));
        Assert.Equal("W2S_CPU_ISA=x is not a CPU path", OptionNames.Describe(new InvalidSettingException("W2S_CPU_ISA=x is not a CPU path", "W2S_CPU_ISA")));
    }

    /// <summary>The README's defaults: search samples as the published settings; generate the full distribution and needs a length.</summary>
    [Fact]
    public void SamplingDefaultsAreEachCommandsOwn()
    {
        var search = Parse(SearchCommand.Create(), "--prompt", "x");
        Assert.Empty(search.Errors);
        Assert.Equal((0.7f, 50, 1f, 0UL, 50),
            (search.GetValue<float>("--temperature"), search.GetValue<int>("--top-k"), search.GetValue<float>("--top-p"), search.GetValue<ulong>("--seed"), search.GetValue<int>("--max-new-tokens")));
        var eval = Parse(EvalCommand.Create(), "--prompts", "p.jsonl", "--out", "o.jsonl");
        Assert.Empty(eval.Errors);
        Assert.Equal((0.7f, 50, 1f, 50), (eval.GetValue<float>("--temperature"), eval.GetValue<int>("--top-k"), eval.GetValue<float>("--top-p"), eval.GetValue<int>("--max-new-tokens")));

        var generate = Parse(GenerateCommand.Create(), "--model", "m", "--prompt-tokens", "1", "--max-new-tokens", "3");
        Assert.Empty(generate.Errors);
        Assert.Equal((1f, 0, 1f, 0UL, 3),
            (generate.GetValue<float>("--temperature"), generate.GetValue<int>("--top-k"), generate.GetValue<float>("--top-p"), generate.GetValue<ulong>("--seed"), generate.GetValue<int>("--max-new-tokens")));
        Assert.Contains(Parse(GenerateCommand.Create(), "--model", "m", "--prompt-tokens", "1").Errors, e => e.Message.Contains("--max-new-tokens"));
    }

    [Fact]
    public void EachCommandTakesTheGroupsItNeeds()
    {
        string[] sampling = ["--temperature", "--top-k", "--top-p", "--seed", "--max-new-tokens"];
        string[] models = ["--large", "--large-url", "--large-api-model", "--api-key-env", "--no-top-k-param", "--tuned", "--untuned", "--large-template", "--tuned-template", "--untuned-template", "--device"];
        string[] kv = ["--kv-memory", "--kv-blocks"];
        var search = Options(SearchCommand.Create());
        var eval = Options(EvalCommand.Create());
        var serve = Options(ServeCommand.Create());
        var generate = Options(GenerateCommand.Create());
        var score = Options(ScoreCommand.Create());
        Has(search, [.. sampling, .. models, .. kv]);
        Has(eval, [.. sampling, .. models, .. kv]);
        Has(serve, [.. models, .. kv]);
        Assert.DoesNotContain("--temperature", serve); // a request carries its own sampling
        Has(generate, [.. sampling, "--prompt", "--prompt-tokens"]);
        Has(score, ["--prompt", "--prompt-tokens", "--continuation", "--continuation-tokens"]);
        Assert.DoesNotContain("--temperature", score);

        static void Has(HashSet<string> options, string[] names) => Assert.Superset(names.ToHashSet(), options);
    }
}
