using System.Globalization;
using System.Text;

namespace WeakToStrong.Cli.Rewards;

/// <summary>
/// VADER (Hutto &amp; Gilbert, ICWSM 2014): a lexicon of 7,503 tokens rated for sentiment, and rules for what
/// changes a rating in context — boosters and dampeners ("very", "slightly"), negation ("not", "n't", "never"),
/// a contrastive "but", ALL CAPS emphasis, exclamation and question marks, and a few idioms. Its
/// <see cref="VaderScores.Compound"/> score saturates in [−1, 1], so repeating a positive word earns less each time.
/// This follows the npm package vader-sentiment 1.1.3 (a JavaScript port, Apache-2.0, © 2018 Comcast Cable
/// Communications Management, LLC) rule for rule, including its quirks, and is tested against that package's own
/// scores on a few hundred sentences (tools/vader-fixture). The lexicon is the package's, embedded as
/// <c>vader-lexicon.tsv</c> (its licence and notice are beside it).
/// </summary>
public sealed class VaderSentiment
{
    // The package's empirically derived constants.
    private const double BoosterIncrement = 0.293;
    private const double CapsIncrement = 0.733;
    private const double NegationScalar = -0.74;
    private const double ExclamationIncrement = 0.292;
    private const int MaxExclamations = 4;
    private const double QuestionIncrement = 0.18;
    private const double ManyQuestionsIncrement = 0.96;
    private const double NormalizationAlpha = 15;

    private static readonly HashSet<string> s_negations = new(StringComparer.Ordinal)
    {
        "aint", "arent", "cannot", "cant", "couldnt", "darent", "didnt", "doesnt", "ain't", "aren't", "can't",
        "couldn't", "daren't", "didn't", "doesn't", "dont", "hadnt", "hasnt", "havent", "isnt", "mightnt", "mustnt",
        "neither", "don't", "hadn't", "hasn't", "haven't", "isn't", "mightn't", "mustn't", "neednt", "needn't", "never",
        "none", "nope", "nor", "not", "nothing", "nowhere", "oughtnt", "shant", "shouldnt", "uhuh", "wasnt", "werent",
        "oughtn't", "shan't", "shouldn't", "uh-uh", "wasn't", "weren't", "without", "wont", "wouldnt", "won't",
        "wouldn't", "rarely", "seldom", "despite",
    };

    private static readonly Dictionary<string, double> s_boosters = BuildBoosters();

    private static Dictionary<string, double> BuildBoosters()
    {
        var boosters = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (string word in new[]
        {
            "absolutely", "amazingly", "awfully", "completely", "considerably", "decidedly", "deeply", "effing", "enormously",
            "entirely", "especially", "exceptionally", "extremely", "fabulously", "flipping", "flippin", "fricking", "frickin",
            "frigging", "friggin", "fully", "fucking", "greatly", "hella", "highly", "hugely", "incredibly", "intensely",
            "majorly", "more", "most", "particularly", "purely", "quite", "really", "remarkably", "so", "substantially",
            "thoroughly", "totally", "tremendously", "uber", "unbelievably", "unusually", "utterly", "very",
        })
            boosters.Add(word, BoosterIncrement);
        foreach (string word in new[]
        {
            "almost", "barely", "hardly", "just enough", "kind of", "kinda", "kindof", "kind-of", "less", "little",
            "marginally", "occasionally", "partly", "scarcely", "slightly", "somewhat", "sort of", "sorta", "sortof", "sort-of",
        })
            boosters.Add(word, -BoosterIncrement);
        return boosters;
    }

    private static readonly Dictionary<string, double> s_idioms = new(StringComparer.Ordinal)
    {
        ["the shit"] = 3, ["the bomb"] = 3, ["bad ass"] = 1.5, ["yeah right"] = -2, ["cut the mustard"] = 2,
        ["kiss of death"] = -1.5, ["hand to mouth"] = -2,
    };

    // What the package strips from a word's ends: one of these, before or after a word that has no ASCII punctuation.
    private static readonly string[] s_edgePunctuation =
        [".", "!", "?", ",", ";", ":", "-", "'", "\"", "!!", "!!!", "??", "???", "?!?", "!?!", "?!?!", "!?!?"];

    private readonly Dictionary<string, double> _lexicon;

    private VaderSentiment(Dictionary<string, double> lexicon) => _lexicon = lexicon;

    private static readonly Lazy<VaderSentiment> s_default = new(() =>
    {
        using var stream = typeof(VaderSentiment).Assembly.GetManifestResourceStream("rewards/vader-lexicon.tsv")
            ?? throw new InvalidOperationException("the embedded VADER lexicon is missing from the assembly");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return new VaderSentiment(ParseLexicon(reader));
    });

    /// <summary>VADER with its own lexicon (vader-sentiment 1.1.3's, 7,503 tokens).</summary>
    public static VaderSentiment Default => s_default.Value;

    /// <summary>Tokens in the lexicon.</summary>
    public int Count => _lexicon.Count;

    private static Dictionary<string, double> ParseLexicon(TextReader reader)
    {
        var lexicon = new Dictionary<string, double>(StringComparer.Ordinal);
        int number = 0;
        while (reader.ReadLine() is { } line)
        {
            number++;
            int tab = line.IndexOf('\t');
            if (tab <= 0 || !double.TryParse(line.AsSpan(tab + 1), NumberStyles.Float, CultureInfo.InvariantCulture, out double valence)
                || !lexicon.TryAdd(line[..tab], valence))
                throw new InvalidDataException($"vader-lexicon.tsv:{number}: expected a new 'token<TAB>valence', got '{line}'");
        }
        return lexicon;
    }

    /// <summary>The compound score of a text: the sum of its words' context-adjusted valences, normalised to [−1, 1].</summary>
    public double Compound(string text) => Score(text).Compound;

    /// <summary>
    /// VADER's four scores for a text. Unlike the package, the scores are not rounded (it rounds the compound to 4
    /// decimals and the proportions to 3 when it reports them).
    /// </summary>
    public VaderScores Score(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var words = WordsAndEmoticons(text);
        bool capsDiffer = SomeButNotAllCaps(words);
        var sentiments = new double[words.Count];
        for (int i = 0; i < words.Count; i++)
        {
            string lower = words[i].ToLowerInvariant();
            // A booster, or "kind" of "kind of", carries no valence of its own: it changes the word after it.
            bool kindOf = lower == "kind" && i < words.Count - 1 && words[i + 1].ToLowerInvariant() == "of";
            sentiments[i] = kindOf || s_boosters.ContainsKey(lower) ? 0 : Valence(words, i, capsDiffer);
        }
        ButCheck(words, sentiments);
        return Summarise(sentiments, text);
    }

    /// <summary>
    /// The words as VADER sees them: the text split at each whitespace character (JavaScript's <c>\s</c>), pieces of
    /// one UTF-16 unit dropped, and one punctuation mark or run of marks from <c>s_edgePunctuation</c> stripped from
    /// one end of a piece when what remains has no ASCII punctuation ("good," → "good"; "don't," and "(good)" stay).
    /// Case is kept: the rules read it.
    /// </summary>
    internal static List<string> WordsAndEmoticons(string text)
    {
        var words = new List<string>();
        int start = 0;
        for (int i = 0; i <= text.Length; i++)
        {
            if (i < text.Length && !IsJavaScriptWhiteSpace(text[i])) continue;
            if (i - start > 1) words.Add(StripEdgePunctuation(text[start..i]));
            start = i + 1;
        }
        return words;
    }

    private static string StripEdgePunctuation(string token)
    {
        foreach (string mark in s_edgePunctuation)
        {
            if (token.StartsWith(mark, StringComparison.Ordinal) && IsBareWord(token.AsSpan(mark.Length))) return token[mark.Length..];
            if (token.EndsWith(mark, StringComparison.Ordinal) && IsBareWord(token.AsSpan(0, token.Length - mark.Length))) return token[..^mark.Length];
        }
        return token;
    }

    private static bool IsBareWord(ReadOnlySpan<char> word)
    {
        if (word.Length <= 1) return false;
        foreach (char c in word)
            if (IsAsciiPunctuation(c)) return false;
        return true;
    }

    private static bool IsAsciiPunctuation(char c) => c is (>= '!' and <= '/') or (>= ':' and <= '@') or (>= '[' and <= '`') or (>= '{' and <= '~');

    private static bool IsJavaScriptWhiteSpace(char c) => c is '\t' or '\n' or '\v' or '\f' or '\r' or ' ' or '\u00a0' or '\u1680'
        or (>= '\u2000' and <= '\u200a') or '\u2028' or '\u2029' or '\u202f' or '\u205f' or '\u3000' or '\ufeff';

    /// <summary>Python's <c>str.isupper</c> as the package reads it: an ASCII capital and no ASCII small letter.</summary>
    internal static bool IsAllCaps(string word)
    {
        bool capital = false;
        foreach (char c in word)
        {
            if (c is >= 'a' and <= 'z') return false;
            capital |= c is >= 'A' and <= 'Z';
        }
        return capital;
    }

    // Caps emphasis counts only when the text mixes all-caps words with others (a shouted text stresses nothing).
    private static bool SomeButNotAllCaps(List<string> words)
    {
        int caps = words.Count(IsAllCaps);
        return caps > 0 && caps < words.Count;
    }

    private double Valence(List<string> words, int i, bool capsDiffer)
    {
        string item = words[i];
        if (!_lexicon.TryGetValue(item.ToLowerInvariant(), out double valence)) return 0;
        if (capsDiffer && IsAllCaps(item)) valence += valence > 0 ? CapsIncrement : -CapsIncrement;
        for (int back = 0; back < 3; back++)
        {
            // Only a preceding word the lexicon does not rate can boost, dampen or negate this one.
            if (i <= back || _lexicon.ContainsKey(words[i - back - 1].ToLowerInvariant())) continue;
            double scalar = BoosterScalar(words[i - back - 1], valence, capsDiffer);
            if (back == 1) scalar *= 0.95;
            else if (back == 2) scalar *= 0.9;
            valence += scalar;
            valence = NegationCheck(valence, words, back, i);
            if (back == 2) valence = IdiomsCheck(valence, words, i);
        }
        return LeastCheck(valence, words, i);
    }

    private static double BoosterScalar(string word, double valence, bool capsDiffer)
    {
        if (!s_boosters.TryGetValue(word.ToLowerInvariant(), out double scalar)) return 0;
        if (valence < 0) scalar = -scalar;
        if (capsDiffer && IsAllCaps(word)) scalar += valence > 0 ? CapsIncrement : -CapsIncrement;
        return scalar;
    }

    // The package compares these words as written (case-sensitive), unlike the lexicon look-ups.
    private static bool IsNegation(string word) => s_negations.Contains(word) || word.Contains("n't", StringComparison.Ordinal);

    private static bool IsSoOrThis(string word) => word is "so" or "this";

    private static double NegationCheck(double valence, List<string> words, int back, int i)
    {
        switch (back)
        {
            case 0:
                return IsNegation(words[i - 1]) ? valence * NegationScalar : valence;
            case 1:
                if (words[i - 2] == "never" && IsSoOrThis(words[i - 1])) return valence * 1.5;
                return IsNegation(words[i - 2]) ? valence * NegationScalar : valence;
            default:
                // As in the package (and the original VADER): the 1.25 also applies whenever the word just before is
                // "so" or "this", with no "never" in sight.
                if ((words[i - 3] == "never" && IsSoOrThis(words[i - 2])) || IsSoOrThis(words[i - 1])) return valence * 1.25;
                return IsNegation(words[i - 3]) ? valence * NegationScalar : valence;
        }
    }

    private static double IdiomsCheck(double valence, List<string> words, int i)
    {
        string oneZero = $"{words[i - 1]} {words[i]}";
        string twoOneZero = $"{words[i - 2]} {words[i - 1]} {words[i]}";
        string twoOne = $"{words[i - 2]} {words[i - 1]}";
        string threeTwoOne = $"{words[i - 3]} {words[i - 2]} {words[i - 1]}";
        string threeTwo = $"{words[i - 3]} {words[i - 2]}";
        foreach (string sequence in new[] { oneZero, twoOneZero, twoOne, threeTwoOne, threeTwo })
            if (s_idioms.TryGetValue(sequence, out double idiom))
            {
                valence = idiom;
                break;
            }
        if (words.Count - 1 > i && s_idioms.TryGetValue($"{words[i]} {words[i + 1]}", out double after)) valence = after;
        if (words.Count - 1 > i + 1 && s_idioms.TryGetValue($"{words[i]} {words[i + 1]} {words[i + 2]}", out double after2)) valence = after2;
        // A two-word dampener ("sort of", "kind of") before the word: always the dampener's step, whatever the sign.
        if (s_boosters.ContainsKey(threeTwo) || s_boosters.ContainsKey(twoOne)) valence -= BoosterIncrement;
        return valence;
    }

    private double LeastCheck(double valence, List<string> words, int i)
    {
        if (i == 0 || words[i - 1].ToLowerInvariant() != "least" || _lexicon.ContainsKey("least")) return valence;
        if (i == 1) return valence * NegationScalar;
        string before = words[i - 2].ToLowerInvariant();
        return before is "at" or "very" ? valence : valence * NegationScalar;
    }

    // "but" (as written, or "BUT" when there is no "but"): what comes before it counts half, what follows 1.5 times.
    private static void ButCheck(List<string> words, double[] sentiments)
    {
        int but = words.IndexOf("but");
        if (but < 0) but = words.IndexOf("BUT");
        if (but < 0) return;
        for (int i = 0; i < sentiments.Length; i++)
        {
            if (i < but) sentiments[i] *= 0.5;
            else if (i > but) sentiments[i] *= 1.5;
        }
    }

    private static VaderScores Summarise(double[] sentiments, string text)
    {
        if (sentiments.Length == 0) return new VaderScores(0, 0, 0, 0);
        double sum = 0;
        foreach (double s in sentiments) sum += s;
        double emphasis = PunctuationEmphasis(text);
        if (sum > 0) sum += emphasis;
        else if (sum < 0) sum -= emphasis;
        double compound = Math.Clamp(sum / Math.Sqrt(sum * sum + NormalizationAlpha), -1, 1);

        // Each rated word counts its valence plus 1 (an unrated word counts 1 toward the neutral share).
        double positive = 0, negative = 0;
        int neutral = 0;
        foreach (double s in sentiments)
        {
            if (s > 0) positive += s + 1;
            else if (s < 0) negative += s - 1;
            else neutral++;
        }
        if (positive > Math.Abs(negative)) positive += emphasis;
        else if (positive < Math.Abs(negative)) negative -= emphasis;
        double total = positive + Math.Abs(negative) + neutral;
        return new VaderScores(compound, Math.Abs(positive / total), Math.Abs(neutral / total), Math.Abs(negative / total));
    }

    private static double PunctuationEmphasis(string text)
    {
        int exclamations = 0, questions = 0;
        foreach (char c in text)
        {
            if (c == '!') exclamations++;
            else if (c == '?') questions++;
        }
        double emphasis = Math.Min(exclamations, MaxExclamations) * ExclamationIncrement;
        if (questions > 1) emphasis += questions <= 3 ? questions * QuestionIncrement : ManyQuestionsIncrement;
        return emphasis;
    }
}

/// <summary>VADER's scores of one text.</summary>
/// <param name="Compound">The normalised sum of valences, in [−1, 1]; ≥ 0.05 is usually read as positive, ≤ −0.05 as negative.</param>
/// <param name="Positive">The share of the text's weight that is positive.</param>
/// <param name="Neutral">The share that is neutral.</param>
/// <param name="Negative">The share that is negative.</param>
public readonly record struct VaderScores(double Compound, double Positive, double Neutral, double Negative);
