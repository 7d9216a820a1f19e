using WeakToStrong.Cli.Rewards;
using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;

namespace WeakToStrong.Cli.Commands;

/// <summary>What <c>w2s eval --reward</c> adds to each result: the gold reward and the large model's fluency.</summary>
internal static class EvalMetrics
{
    /// <summary>The reward <c>--reward</c> names; a bad value or lexicon file is a usage error naming the option.</summary>
    public static GoldReward Reward(string spec)
    {
        try
        {
            return GoldReward.FromSpec(spec);
        }
        catch (ArgumentException)
        {
            throw new UsageException($"--reward: '{spec}' is not a reward (expected afinn or lexicon:PATH)");
        }
        catch (InvalidDataException e)
        {
            throw new UsageException($"--reward: {e.Message}");
        }
    }

    /// <summary>
    /// The large model's mean log-probability per response token, log π_large(response | prompt) / tokens, on the
    /// response's own large-model tokens (EOS included when it ended the response); null for a remote large model
    /// or an empty response.
    /// </summary>
    public static double? LargeLogProbPerToken(WeakToStrongSearch search, SearchRequest request, SearchResult result)
    {
        if (search.Context.Large is not LocalLargeModel local || local.Model.Model is not { } model || result.Tokens.Count == 0) return null;
        var prompt = local.Model.EncodePrompt(request.Prompt, request.Chat, request.SystemPrompt, request.History).Tokens;
        var logprobs = model.Score(prompt, result.Tokens);
        double sum = 0;
        foreach (float lp in logprobs) sum += lp;
        return sum / logprobs.Length;
    }

    /// <summary>The mean of the values that are there; null when none is.</summary>
    public static double? MeanOfPresent(IEnumerable<double?> values)
    {
        var present = values.Where(v => v is not null).Select(v => v!.Value).ToList();
        return present.Count == 0 ? null : present.Average();
    }

    /// <summary>
    /// Mean over all values, and its standard error over prompts: each prompt's values (one per seed) are averaged
    /// first, since runs of one prompt are not independent; null when there is no value.
    /// </summary>
    public static (double? Mean, double? StdErr) MeanAndStandardError(IReadOnlyList<(string Prompt, double Value)> values)
    {
        if (values.Count == 0) return (null, null);
        double mean = values.Average(v => v.Value);
        var perPrompt = values.GroupBy(v => v.Prompt).Select(g => g.Average(v => v.Value)).ToList();
        if (perPrompt.Count < 2) return (mean, null);
        double promptMean = perPrompt.Average();
        double variance = perPrompt.Sum(x => (x - promptMean) * (x - promptMean)) / (perPrompt.Count - 1);
        return (mean, Math.Sqrt(variance / perPrompt.Count));
    }
}
