
namespace WeakToStrong.Cli.Rewards;

/// <summary>
/// The gold reward <c>w2s eval --reward</c> and <c>w2s demo</c> score responses with: VADER's compound score
/// (<c>vader</c>, in [−1, 1]; repetition cannot push it past 1), or a sum of lexicon valences (<c>afinn</c>, AFINN-165;
/// <c>lexicon:PATH</c>, a file of word&lt;TAB&gt;valence lines), which pays for every repetition of a rated word.
/// </summary>
internal sealed class GoldReward
{
    private readonly Func<string, double> _score;

    private GoldReward(string name, Func<string, double> score)
    {
        Name = name;
        _score = score;
    }

    /// <summary>"vader-sentiment-1.1.3", "afinn-165" or the lexicon file's path.</summary>
    public string Name { get; }

    /// <summary>The reward of one response.</summary>
    public double Score(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        return _score(text);
    }

    private static readonly Lazy<GoldReward> s_vader = new(() => new GoldReward("vader-sentiment-1.1.3", VaderSentiment.Default.Compound));

    /// <summary>VADER's compound score (the sentiment experiment's gold reward).</summary>
    public static GoldReward Vader => s_vader.Value;

    /// <summary>The reward a command-line value names: <c>vader</c>, <c>afinn</c> (or <c>afinn-165</c>), or <c>lexicon:PATH</c>.</summary>
    /// <exception cref="ArgumentException">The value names no reward.</exception>
    /// <exception cref="InvalidDataException">The lexicon file is missing or malformed.</exception>
    public static GoldReward FromSpec(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        string s = spec.Trim();
        if (s.Equals("vader", StringComparison.OrdinalIgnoreCase)) return Vader;
        bool lexicon = s.StartsWith("lexicon:", StringComparison.OrdinalIgnoreCase) && s.Length > "lexicon:".Length;
        if (!lexicon && !s.Equals("afinn", StringComparison.OrdinalIgnoreCase) && !s.Equals("afinn-165", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"'{spec}' is not a reward (expected vader, afinn or lexicon:PATH)", nameof(spec));
        var reward = LexiconReward.FromSpec(s);
        return new GoldReward(reward.Name, reward.Score);
    }
}
