namespace WeakToStrong.Tests.Cli;

/// <summary>
/// Usage errors that the command-line parser finds (unknown option, a value of the wrong type, a missing value or
/// required option) are one line on stderr naming the option or token, exit code 2, for every command; --help still
/// prints the help and exits 0.
/// </summary>
[Trait("Category", "Integration")]
public class ParseErrorTests
{
    public static IEnumerable<object[]> ParseErrors()
    {
        foreach (string command in new[] { "search", "serve", "info", "generate", "score", "bench", "demo", "eval" })
        {
            yield return [command, "--bogus", new[] { command, "--bogus" }];
            yield return [command, "'-n'", new[] { command, "-n", "5" }];
        }
        yield return ["search", "'abc' for option '--beam-width'", new[] { "search", "--prompt", "hi", "--beam-width", "abc" }];
        yield return ["search", "'abc' for option '--beam-width'", new[] { "search", "--beam-width", "abc" }]; // before "--prompt is required"
        yield return ["serve", "'x' for option '--port'", new[] { "serve", "--port", "x" }];
        yield return ["generate", "'x' for option '--max-new-tokens'", new[] { "generate", "--model", "m", "--prompt-tokens", "1", "--max-new-tokens", "x" }];
        yield return ["info", "missing for option: '--model'", new[] { "info", "--model" }];
        yield return ["info", "'--model' is required", new[] { "info" }];
        yield return ["generate", "missing for option: '--max-new-tokens'", new[] { "generate", "--model", "m", "--max-new-tokens" }];
        yield return ["search", "missing for option: '--prompt'", new[] { "search", "--prompt" }];
        yield return ["serve", "missing for option: '--port'", new[] { "serve", "--port" }];
        yield return ["", "'nosuchcommand'", new[] { "nosuchcommand" }];
    }

    [Theory]
    [MemberData(nameof(ParseErrors))]
    public void ParseErrorsAreOneLineNamingTheTokenWithExitCode2(string command, string named, string[] args)
    {
        var r = CliRunner.Run(args);
        Assert.True(r.ExitCode == 2, $"exit {r.ExitCode}; stderr: {r.Stderr}");
        Assert.Equal("", r.Stdout);
        string[] lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        string line = Assert.Single(lines);
        Assert.StartsWith("error: ", line);
        Assert.Contains(named, line);
        Assert.EndsWith(command == "" ? "(see w2s --help)" : $"(see w2s {command} --help)", line);
    }

    [Theory]
    [InlineData("search")]
    [InlineData("serve")]
    [InlineData("info")]
    [InlineData("generate")]
    public void HelpStillPrintsTheHelpAndExits0(string command)
    {
        var r = CliRunner.Run(command, "--help");
        Assert.True(r.ExitCode == 0, r.Stderr);
        Assert.Equal("", r.Stderr);
        Assert.Contains("Usage:", r.Stdout);
        Assert.Contains($"w2s {command} [options]", r.Stdout);
    }
}
