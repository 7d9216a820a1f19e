using System.Text.Json;

namespace WeakToStrong.Tokenization;

/// <summary>
/// Reads GPT-2's original pair of files: vocab.json (token → id, tokens in <see cref="ByteLevelAlphabet"/>
/// characters) and merges.txt (one "left right" rule a line, highest priority first, after an optional
/// "#version" line).
/// </summary>
internal static class VocabMergesFiles
{
    public const string VocabFileName = "vocab.json";
    public const string MergesFileName = "merges.txt";

    public static Dictionary<string, int> ReadVocab(string path)
    {
        using var document = JsonFields.ParseFile(path);
        var root = JsonFields.Expect(document.RootElement, "(root)", JsonValueKind.Object);
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in root.EnumerateObject())
        {
            vocab[entry.Name] = JsonFields.ReadId(entry.Value, entry.Name);
        }

        return vocab.Count > 0 ? vocab : throw new InvalidDataException("the vocabulary is empty");
    }

    public static List<(string Left, string Right)> ReadMerges(string path)
    {
        var merges = new List<(string, string)>();
        var lineNumber = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNumber++;
            if (line.Length == 0 || (lineNumber == 1 && line.StartsWith("#version", StringComparison.Ordinal)))
            {
                continue;
            }

            var parts = line.Split(' ');
            merges.Add(parts.Length == 2 && parts[0].Length > 0 && parts[1].Length > 0
                ? (parts[0], parts[1])
                : throw new InvalidDataException($"line {lineNumber} \"{line}\" is not two tokens separated by one space"));
        }

        return merges;
    }

    /// <summary>
    /// The tokens that tokenizer_config.json marks special (and that exist in the vocabulary), plus its
    /// added_tokens_decoder entries: the tokens Hugging Face's GPT2Tokenizer matches verbatim in text.
    /// </summary>
    public static List<AddedToken> AddedTokens(Dictionary<string, int> vocab, TokenizerConfig config)
    {
        var added = config.AddedTokens.ToList();
        foreach (var content in config.SpecialTokens.Distinct(StringComparer.Ordinal))
        {
            if (vocab.TryGetValue(content, out var id) && !added.Any(t => t.Content == content))
            {
                added.Add(new AddedToken(id, content, Special: true));
            }
        }

        return added;
    }
}
