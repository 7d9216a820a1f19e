using System.Text.Json;

namespace WeakToStrong.Tests.Cli;

/// <summary><c>--weights int8</c> on the command line: <c>w2s compare</c> reports the error the issue bounds, and a
/// weight format the CLI does not know is one usage line.</summary>
[Trait("Category", "Integration")]
public class Int8CliTests
{
    private static readonly string Sentiment = Path.Combine(AppContext.BaseDirectory, "models", "sentiment");

    [Fact]
    public void CompareReportsInt8WithinTheTargetsOnTheBundledLargeModel()
    {
        var r = CliRunner.Run("compare", "--model", Path.Combine(Sentiment, "large"), "--weights", "int8", "--text", Path.Combine(Sentiment, "heldout.txt"), "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        var json = JsonDocument.Parse(r.Stdout).RootElement;
        Assert.Equal("int8", json.GetProperty("weights").GetString());
        Assert.Equal("BF16", json.GetProperty("stored_dtype").GetString());
        // The stored model's held-out perplexity is the one PyTorch measured at export (samples/sentiment/README.md: 269.9).
        Assert.Equal(269.9, json.GetProperty("stored_perplexity").GetDouble(), 0.05);
        Assert.True(json.GetProperty("mean_kl").GetDouble() <= 0.01, r.Stdout);
        Assert.True(json.GetProperty("top1_agreement").GetDouble() >= 0.97, r.Stdout);
        Assert.True(Math.Abs(json.GetProperty("perplexity_change").GetDouble()) <= 0.01, r.Stdout);
        Assert.True(json.GetProperty("weight_bytes").GetInt64() < 0.7 * json.GetProperty("stored_weight_bytes").GetInt64(), r.Stdout);
    }

    [Theory]
    [InlineData("generate", "--max-new-tokens", "2")]
    [InlineData("score", "--continuation", " good")]
    public void AnUnknownWeightFormatIsOneUsageLine(string command, string option, string value)
    {
        var r = CliRunner.Run(command, "--model", Path.Combine(Sentiment, "large"), "--prompt", "The movie", option, value, "--weights", "int4");
        Assert.Equal(2, r.ExitCode);
        Assert.Equal("error: --weights: 'int4' is not a weight format (stored, int8)", r.Stderr.Trim());
    }
}
