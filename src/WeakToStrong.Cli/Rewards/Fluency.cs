
namespace WeakToStrong.Cli.Rewards;

/// <summary>
/// Degeneration measures of one response, on its words as the gold rewards see them (whitespace pieces with
/// non-alphanumeric ends stripped, lower-cased; <see cref="LexiconReward.Words"/>): distinct-n, the share of unique
/// word n-grams among all of them (Li et al. 2016), and rep-3, the share of word 3-grams that repeat an earlier one
/// in the same response, 1 − distinct-3 (Welleck et al. 2020). A response too short to have an n-gram has no value.
/// </summary>
internal static class Fluency
{
    /// <summary>distinct-1, distinct-2, rep-3 and the largest number of times one 3-gram occurs.</summary>
    public static FluencyScores Measure(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var words = LexiconReward.Words(text).ToList();
        double? distinct3 = Distinct(words, 3);
        return new FluencyScores(Distinct(words, 1), Distinct(words, 2), 1 - distinct3, MaxCount(words, 3));
    }

    /// <summary>Unique n-grams / n-grams; null when there are fewer than n words.</summary>
    public static double? Distinct(IReadOnlyList<string> words, int n)
    {
        ArgumentNullException.ThrowIfNull(words);
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        int total = words.Count - n + 1;
        if (total <= 0) return null;
        return (double)NGrams(words, n).Distinct().Count() / total;
    }

    /// <summary>How many times the most frequent n-gram occurs (0 when there are fewer than n words).</summary>
    public static int MaxCount(IReadOnlyList<string> words, int n)
    {
        ArgumentNullException.ThrowIfNull(words);
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        return NGrams(words, n).CountBy(g => g).Select(x => x.Value).DefaultIfEmpty(0).Max();
    }

    // An n-gram as one string: words never contain whitespace, so a space joins them unambiguously.
    private static IEnumerable<string> NGrams(IReadOnlyList<string> words, int n)
    {
        for (int i = 0; i + n <= words.Count; i++) yield return string.Join(' ', Enumerable.Range(i, n).Select(k => words[k]));
    }
}

/// <summary>Degeneration measures of one response (see <see cref="Fluency"/>).</summary>
/// <param name="Distinct1">Unique words / words; null without a word.</param>
/// <param name="Distinct2">Unique word 2-grams / 2-grams; null with fewer than 2 words.</param>
/// <param name="Repeated3GramShare">rep-3: 1 − unique 3-grams / 3-grams; null with fewer than 3 words.</param>
/// <param name="Max3GramCount">Occurrences of the most frequent 3-gram; 0 with fewer than 3 words.</param>
internal readonly record struct FluencyScores(double? Distinct1, double? Distinct2, double? Repeated3GramShare, int Max3GramCount);
