using System.Globalization;
using System.Text.Json;

namespace WeakToStrong.Tokenization;

/// <summary>
/// The parts of Hugging Face's tokenizer_config.json that change how ids are produced: whether BOS is prepended,
/// which strings are the BOS/EOS tokens, and which tokens are special.
/// </summary>
/// <param name="AddBosToken">"add_bos_token", or null when the file does not say.</param>
/// <param name="BosToken">"bos_token", or null.</param>
/// <param name="EosToken">"eos_token", or null.</param>
/// <param name="SpecialTokens">bos/eos/unk/pad tokens and "additional_special_tokens".</param>
/// <param name="AddedTokens">"added_tokens_decoder", which newer files write instead of added_tokens.json.</param>
/// <param name="AddPrefixSpace">"add_prefix_space", or null.</param>
internal sealed record TokenizerConfig(
    bool? AddBosToken,
    string? BosToken,
    string? EosToken,
    IReadOnlyList<string> SpecialTokens,
    IReadOnlyList<AddedToken> AddedTokens,
    bool? AddPrefixSpace)
{
    public const string FileName = "tokenizer_config.json";

    public static TokenizerConfig Empty { get; } = new(null, null, null, [], [], null);

    public static TokenizerConfig Parse(string path)
    {
        using var document = JsonFields.ParseFile(path);
        var root = JsonFields.Expect(document.RootElement, "(root)", JsonValueKind.Object);

        var special = new List<string>();
        foreach (var name in (string[])["bos_token", "eos_token", "unk_token", "pad_token"])
        {
            if (JsonFields.OptionalTokenContent(root, name) is { } token)
            {
                special.Add(token);
            }
        }

        if (JsonFields.Optional(root, "additional_special_tokens") is { } additional)
        {
            foreach (var item in JsonFields.Expect(additional, "additional_special_tokens", JsonValueKind.Array).EnumerateArray())
            {
                special.Add(item.ValueKind == JsonValueKind.Object
                    ? JsonFields.Required(item, "content", JsonValueKind.String).GetString()!
                    : JsonFields.Expect(item, "additional_special_tokens[]", JsonValueKind.String).GetString()!);
            }
        }

        var added = new List<AddedToken>();
        if (JsonFields.Optional(root, "added_tokens_decoder") is { } decoder)
        {
            foreach (var entry in JsonFields.Expect(decoder, "added_tokens_decoder", JsonValueKind.Object).EnumerateObject())
            {
                if (!int.TryParse(entry.Name, NumberStyles.None, CultureInfo.InvariantCulture, out var id))
                {
                    throw new InvalidDataException($"added_tokens_decoder key \"{entry.Name}\" is not a token id");
                }

                var token = JsonFields.Expect(entry.Value, $"added_tokens_decoder.{entry.Name}", JsonValueKind.Object);
                added.Add(new AddedToken(
                    id,
                    JsonFields.Required(token, "content", JsonValueKind.String).GetString()!,
                    JsonFields.OptionalBool(token, "special") ?? false,
                    JsonFields.OptionalBool(token, "lstrip") ?? false,
                    JsonFields.OptionalBool(token, "rstrip") ?? false));
            }
        }

        return new TokenizerConfig(
            JsonFields.OptionalBool(root, "add_bos_token"),
            JsonFields.OptionalTokenContent(root, "bos_token"),
            JsonFields.OptionalTokenContent(root, "eos_token"),
            special,
            added,
            JsonFields.OptionalBool(root, "add_prefix_space"));
    }
}
