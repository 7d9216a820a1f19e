using System.Text.Json;

namespace WeakToStrong.Tokenization;

/// <summary>
/// Reads a Hugging Face tokenizer.json that describes a byte-level BPE (GPT-2, Llama-3, Qwen2 style) into a
/// <see cref="ByteLevelBpe"/>. Structural damage throws <see cref="InvalidDataException"/> or
/// <see cref="JsonException"/>; a valid file describing something else (WordPiece, SentencePiece-style BPE with
/// byte fallback, an unknown normalizer) throws <see cref="NotSupportedException"/>, so the loader can fall back to
/// another file.
/// </summary>
internal static class HuggingFaceTokenizerJson
{
    public const string FileName = "tokenizer.json";

    /// <summary>The model, and the BOS token the post-processor's template puts in front, if any.</summary>
    public sealed record Result(ByteLevelBpe Model, string? TemplateBosToken);

    public static Result Parse(string path)
    {
        using var document = JsonFields.ParseFile(path);
        var root = JsonFields.Expect(document.RootElement, "(root)", JsonValueKind.Object);
        var model = JsonFields.Required(root, "model", JsonValueKind.Object);

        var type = JsonFields.OptionalString(model, "type") ?? "BPE";
        if (type != "BPE")
        {
            throw new NotSupportedException($"model type \"{type}\" (only byte-level BPE is implemented)");
        }

        if (JsonFields.OptionalBool(model, "byte_fallback") == true)
        {
            throw new NotSupportedException("BPE with byte_fallback (a SentencePiece-style model, not byte-level BPE)");
        }

        foreach (var affix in (string[])["continuing_subword_prefix", "end_of_word_suffix"])
        {
            if (!string.IsNullOrEmpty(JsonFields.OptionalString(model, affix)))
            {
                throw new NotSupportedException($"BPE with {affix}");
            }
        }

        if (JsonFields.Optional(model, "dropout") is { ValueKind: JsonValueKind.Number } dropout && dropout.GetDouble() > 0)
        {
            throw new NotSupportedException("BPE dropout");
        }

        var normalizeNfc = ReadNormalizer(JsonFields.Optional(root, "normalizer"));
        var preTokenizer = ReadPreTokenizer(JsonFields.Optional(root, "pre_tokenizer"));
        CheckDecoder(JsonFields.Optional(root, "decoder"));

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in JsonFields.Required(model, "vocab", JsonValueKind.Object).EnumerateObject())
        {
            vocab[entry.Name] = JsonFields.ReadId(entry.Value, $"vocab.{entry.Name}");
        }

        var merges = new List<(string, string)>();
        foreach (var merge in JsonFields.Required(model, "merges", JsonValueKind.Array).EnumerateArray())
        {
            merges.Add(ReadMerge(merge, merges.Count));
        }

        var added = new List<AddedToken>();
        if (JsonFields.Optional(root, "added_tokens") is { } addedTokens)
        {
            foreach (var token in JsonFields.Expect(addedTokens, "added_tokens", JsonValueKind.Array).EnumerateArray())
            {
                JsonFields.Expect(token, "added_tokens[]", JsonValueKind.Object);
                added.Add(new AddedToken(
                    JsonFields.ReadId(JsonFields.Required(token, "id", JsonValueKind.Number), "added_tokens[].id"),
                    JsonFields.Required(token, "content", JsonValueKind.String).GetString()!,
                    JsonFields.OptionalBool(token, "special") ?? false,
                    JsonFields.OptionalBool(token, "lstrip") ?? false,
                    JsonFields.OptionalBool(token, "rstrip") ?? false));
            }
        }

        var ignoreMerges = JsonFields.OptionalBool(model, "ignore_merges") ?? false;
        var bpe = new ByteLevelBpe(vocab, merges, added, preTokenizer, normalizeNfc, ignoreMerges);
        return new Result(bpe, ReadTemplateBosToken(JsonFields.Optional(root, "post_processor")));
    }

    private static (string, string) ReadMerge(JsonElement merge, int index)
    {
        // Older files write "left right"; newer ones write ["left", "right"] so that tokens may contain spaces.
        if (merge.ValueKind == JsonValueKind.String)
        {
            var text = merge.GetString()!;
            var space = text.IndexOf(' ');
            return space > 0 && space == text.LastIndexOf(' ') && space < text.Length - 1
                ? (text[..space], text[(space + 1)..])
                : throw new InvalidDataException($"merges[{index}] \"{text}\" is not two tokens separated by one space");
        }

        if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2
            && merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String)
        {
            return (merge[0].GetString()!, merge[1].GetString()!);
        }

        throw new InvalidDataException($"merges[{index}] should be \"left right\" or [\"left\", \"right\"], not {merge.GetRawText()}");
    }

    private static bool ReadNormalizer(JsonElement? normalizer)
    {
        if (normalizer is not { } element)
        {
            return false;
        }

        var type = JsonFields.Required(element, "type", JsonValueKind.String).GetString();
        if (type == "Sequence" && JsonFields.Required(element, "normalizers", JsonValueKind.Array).GetArrayLength() == 0)
        {
            return false;
        }

        // .NET only normalises non-ASCII text when globalization data is present; under InvariantGlobalization
        // string.Normalize returns the text unchanged, so decomposed input may then tokenize differently.
        return type == "NFC" ? true : throw new NotSupportedException($"normalizer \"{type}\"");
    }

    private static PreTokenizer ReadPreTokenizer(JsonElement? preTokenizer)
    {
        if (preTokenizer is not { } element)
        {
            throw new NotSupportedException("no pre_tokenizer (byte-level BPE needs a ByteLevel pre-tokenizer)");
        }

        var steps = JsonFields.Required(element, "type", JsonValueKind.String).GetString() == "Sequence"
            ? JsonFields.Required(element, "pretokenizers", JsonValueKind.Array).EnumerateArray().ToList()
            : [element];

        var builder = new PreTokenizer.Builder();
        for (var i = 0; i < steps.Count; i++)
        {
            var type = JsonFields.Required(steps[i], "type", JsonValueKind.String).GetString();
            switch (type)
            {
                case "Split":
                    AddSplit(builder, steps[i]);
                    break;
                case "ByteLevel" when i == steps.Count - 1:
                    return builder.AddByteLevel(
                        JsonFields.OptionalBool(steps[i], "add_prefix_space") ?? true,
                        JsonFields.OptionalBool(steps[i], "use_regex") ?? true).Build();
                case "ByteLevel":
                    throw new NotSupportedException("pre-tokenizer steps after ByteLevel");
                default:
                    throw new NotSupportedException($"pre-tokenizer \"{type}\"");
            }
        }

        throw new NotSupportedException("no ByteLevel pre-tokenizer (not a byte-level BPE)");
    }

    private static void AddSplit(PreTokenizer.Builder builder, JsonElement split)
    {
        var behavior = JsonFields.OptionalString(split, "behavior");
        var invert = JsonFields.OptionalBool(split, "invert") ?? false;
        if (behavior != "Isolated" || invert)
        {
            throw new NotSupportedException($"Split pre-tokenizer with behavior \"{behavior}\"{(invert ? ", inverted" : "")}");
        }

        var pattern = JsonFields.Required(split, "pattern", JsonValueKind.Object);
        if (JsonFields.OptionalString(pattern, "Regex") is { } regex)
        {
            builder.AddSplit(regex);
        }
        else if (JsonFields.OptionalString(pattern, "String") is { } literal)
        {
            builder.AddSplit(System.Text.RegularExpressions.Regex.Escape(literal));
        }
        else
        {
            throw new InvalidDataException("Split pre-tokenizer pattern has neither \"Regex\" nor \"String\"");
        }
    }

    private static void CheckDecoder(JsonElement? decoder)
    {
        var type = decoder is { } element ? JsonFields.Required(element, "type", JsonValueKind.String).GetString() : "ByteLevel";
        if (type != "ByteLevel")
        {
            throw new NotSupportedException($"decoder \"{type}\" (byte-level BPE decodes with ByteLevel)");
        }
    }

    private static string? ReadTemplateBosToken(JsonElement? postProcessor)
    {
        if (postProcessor is not { } element)
        {
            return null;
        }

        var processors = JsonFields.OptionalString(element, "type") == "Sequence"
            ? JsonFields.Required(element, "processors", JsonValueKind.Array).EnumerateArray().ToList()
            : [element];
        var template = processors.FirstOrDefault(p => JsonFields.OptionalString(p, "type") == "TemplateProcessing");
        if (template.ValueKind != JsonValueKind.Object
            || JsonFields.Optional(template, "single") is not { ValueKind: JsonValueKind.Array } single
            || single.GetArrayLength() == 0)
        {
            return null;
        }

        return JsonFields.Optional(single[0], "SpecialToken") is { } special
            ? JsonFields.Required(special, "id", JsonValueKind.String).GetString()
            : null;
    }
}
