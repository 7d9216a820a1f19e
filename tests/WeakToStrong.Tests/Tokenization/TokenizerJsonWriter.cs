using System.Text;
using System.Text.Json;

namespace WeakToStrong.Tests.Tokenization;

/// <summary>
/// Writes tokenizer.json files in Hugging Face's format (as tokenizers 0.19 saves them), for tests that need a
/// tokenizer.json whose contents they control.
/// </summary>
internal static class TokenizerJsonWriter
{
    /// <summary>Llama-3's pre-tokenizer pattern, as its tokenizer.json writes it.</summary>
    public const string Llama3Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    public sealed record Added(int Id, string Content, bool Special);

    public static void Write(
        string path,
        IEnumerable<KeyValuePair<string, int>> vocab,
        IEnumerable<(string Left, string Right)> merges,
        IEnumerable<Added> addedTokens,
        string? splitPattern,
        bool ignoreMerges = false,
        bool mergesAsPairs = false,
        string? templateBos = null)
    {
        using var stream = File.Create(path);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("version", "1.0");
        json.WriteNull("truncation");
        json.WriteNull("padding");

        json.WriteStartArray("added_tokens");
        foreach (var token in addedTokens)
        {
            json.WriteStartObject();
            json.WriteNumber("id", token.Id);
            json.WriteString("content", token.Content);
            json.WriteBoolean("single_word", false);
            json.WriteBoolean("lstrip", false);
            json.WriteBoolean("rstrip", false);
            json.WriteBoolean("normalized", false);
            json.WriteBoolean("special", token.Special);
            json.WriteEndObject();
        }

        json.WriteEndArray();
        json.WriteNull("normalizer");

        json.WritePropertyName("pre_tokenizer");
        if (splitPattern is null)
        {
            WriteByteLevel(json, useRegex: true);
        }
        else
        {
            json.WriteStartObject();
            json.WriteString("type", "Sequence");
            json.WriteStartArray("pretokenizers");
            json.WriteStartObject();
            json.WriteString("type", "Split");
            json.WriteStartObject("pattern");
            json.WriteString("Regex", splitPattern);
            json.WriteEndObject();
            json.WriteString("behavior", "Isolated");
            json.WriteBoolean("invert", false);
            json.WriteEndObject();
            WriteByteLevel(json, useRegex: false);
            json.WriteEndArray();
            json.WriteEndObject();
        }

        json.WritePropertyName("post_processor");
        if (templateBos is null)
        {
            WriteByteLevel(json, useRegex: true);
        }
        else
        {
            json.WriteStartObject();
            json.WriteString("type", "Sequence");
            json.WriteStartArray("processors");
            WriteByteLevel(json, useRegex: true);
            json.WriteStartObject();
            json.WriteString("type", "TemplateProcessing");
            json.WriteStartArray("single");
            json.WriteStartObject();
            json.WriteStartObject("SpecialToken");
            json.WriteString("id", templateBos);
            json.WriteNumber("type_id", 0);
            json.WriteEndObject();
            json.WriteEndObject();
            json.WriteStartObject();
            json.WriteStartObject("Sequence");
            json.WriteString("id", "A");
            json.WriteNumber("type_id", 0);
            json.WriteEndObject();
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteEndObject();
            json.WriteEndArray();
            json.WriteEndObject();
        }

        json.WritePropertyName("decoder");
        WriteByteLevel(json, useRegex: true);

        json.WriteStartObject("model");
        json.WriteString("type", "BPE");
        json.WriteNull("dropout");
        json.WriteNull("unk_token");
        json.WriteString("continuing_subword_prefix", "");
        json.WriteString("end_of_word_suffix", "");
        json.WriteBoolean("fuse_unk", false);
        json.WriteBoolean("byte_fallback", false);
        json.WriteBoolean("ignore_merges", ignoreMerges);
        json.WriteStartObject("vocab");
        foreach (var (token, id) in vocab)
        {
            json.WriteNumber(token, id);
        }

        json.WriteEndObject();
        json.WriteStartArray("merges");
        foreach (var (left, right) in merges)
        {
            if (mergesAsPairs)
            {
                json.WriteStartArray();
                json.WriteStringValue(left);
                json.WriteStringValue(right);
                json.WriteEndArray();
            }
            else
            {
                json.WriteStringValue(left + " " + right);
            }
        }

        json.WriteEndArray();
        json.WriteEndObject();
        json.WriteEndObject();
    }

    /// <summary>GPT-2's vocab.json, in file order.</summary>
    public static List<KeyValuePair<string, int>> ReadVocabJson(string folder)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(folder, "vocab.json")));
        return document.RootElement.EnumerateObject().Select(p => KeyValuePair.Create(p.Name, p.Value.GetInt32())).ToList();
    }

    /// <summary>GPT-2's merges.txt rules, in rank order.</summary>
    public static List<(string, string)> ReadMergesTxt(string folder) =>
        File.ReadLines(Path.Combine(folder, "merges.txt"), Encoding.UTF8)
            .Where(line => line.Length > 0 && !line.StartsWith("#version", StringComparison.Ordinal))
            .Select(line => line.Split(' '))
            .Select(parts => (parts[0], parts[1]))
            .ToList();

    private static void WriteByteLevel(Utf8JsonWriter json, bool useRegex)
    {
        json.WriteStartObject();
        json.WriteString("type", "ByteLevel");
        json.WriteBoolean("add_prefix_space", false);
        json.WriteBoolean("trim_offsets", true);
        json.WriteBoolean("use_regex", useRegex);
        json.WriteEndObject();
    }
}
