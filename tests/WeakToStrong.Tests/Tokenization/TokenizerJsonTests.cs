using WeakToStrong.Tokenization;
using Xunit;
using static WeakToStrong.Tests.Tokenization.TokenizerJsonWriter;

namespace WeakToStrong.Tests.Tokenization;

/// <summary>Hugging Face tokenizer.json files: GPT-2's, rebuilt from its original files, and a Llama-3-style one.</summary>
[Trait("Category", "Unit")]
public sealed class TokenizerJsonTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Gpt2_as_tokenizer_json_gives_the_same_ids_as_vocab_json_and_merges_txt(bool mergesAsPairs)
    {
        using var folder = new TempDirectory();
        WriteGpt2TokenizerJson(folder.File("tokenizer.json"), mergesAsPairs);
        folder.CopyFrom(TokenizerTestData.Gpt2Tiny, "tokenizer_config.json");

        var fromJson = TextTokenizer.Load(folder.Path);
        var fromVocabMerges = TextTokenizer.Load(TokenizerTestData.Gpt2Tiny);

        Assert.Equal(TextTokenizer.TokenizerJsonKind, fromJson.Kind);
        Assert.Equal(50257, fromJson.VocabSize);
        Assert.Equal(50256, fromJson.BosTokenId);
        Assert.True(fromJson.IsSpecial(50256));
        foreach (var (text, ids) in TokenizerTestData.Gpt2Cases)
        {
            Assert.Equal(ids, fromJson.Encode(text));
            Assert.Equal(text, fromJson.Decode(ids));
        }

        Assert.True(fromJson.HasSameVocabulary(fromVocabMerges));
        Assert.Equal(fromVocabMerges.Fingerprint, fromJson.Fingerprint);
    }

    [Fact]
    public void Tokenizer_json_is_preferred_over_vocab_json_and_merges_txt()
    {
        using var folder = new TempDirectory();
        WriteGpt2TokenizerJson(folder.File("tokenizer.json"), mergesAsPairs: false);
        folder.CopyFrom(TokenizerTestData.Gpt2Tiny, "vocab.json");
        folder.CopyFrom(TokenizerTestData.Gpt2Tiny, "merges.txt");

        var tokenizer = TextTokenizer.Load(folder.Path);

        Assert.Equal(TextTokenizer.TokenizerJsonKind, tokenizer.Kind);
        Assert.Null(tokenizer.BosTokenId);
        Assert.False(tokenizer.AddBosToken);
    }

    [Fact]
    public void Llama3_style_tokenizer_reports_its_special_tokens_and_template_bos()
    {
        using var folder = new TempDirectory();
        Llama3Style.Write(folder.File("tokenizer.json"));

        var tokenizer = TextTokenizer.Load(folder.Path);

        Assert.Equal(TextTokenizer.TokenizerJsonKind, tokenizer.Kind);
        Assert.Equal(272, tokenizer.VocabSize);
        Assert.Equal(Llama3Style.BeginOfText, tokenizer.BosTokenId);
        Assert.True(tokenizer.AddBosToken);
        Assert.Null(tokenizer.EosTokenId);
        Assert.True(tokenizer.IsSpecial(Llama3Style.BeginOfText));
        Assert.True(tokenizer.IsSpecial(Llama3Style.EotId));
        Assert.False(tokenizer.IsSpecial(Llama3Style.Tool));
        Assert.False(tokenizer.IsSpecial(Llama3Style.Hello));
        Assert.Equal(Llama3Style.EotId, tokenizer.TokenToId("<|eot_id|>"));
        Assert.Equal(Llama3Style.The, tokenizer.TokenToId("Ġthe"));
    }

    [Fact]
    public void Llama3_style_recognises_special_tokens_in_text_and_skips_them_on_decode()
    {
        using var folder = new TempDirectory();
        Llama3Style.Write(folder.File("tokenizer.json"));
        var tokenizer = TextTokenizer.Load(folder.Path);
        const string text = "<|begin_of_text|>Hello the world<|eot_id|><tool>";

        var ids = tokenizer.Encode(text);

        Assert.Equal([Llama3Style.BeginOfText, Llama3Style.Hello, Llama3Style.The, Llama3Style.World, Llama3Style.EotId, Llama3Style.Tool], ids);
        Assert.Equal("Hello the world<tool>", tokenizer.Decode(ids));
        Assert.Equal(text, tokenizer.Decode(ids, skipSpecialTokens: false));
        Assert.Equal([Llama3Style.BeginOfText, Llama3Style.Hello], tokenizer.Encode("Hello", addBos: true));
    }

    [Fact]
    public void Llama3_style_uses_the_pattern_from_the_file()
    {
        using var llama3 = new TempDirectory();
        using var gpt2Pattern = new TempDirectory();
        Llama3Style.Write(llama3.File("tokenizer.json"));
        Llama3Style.Write(gpt2Pattern.File("tokenizer.json"), splitPattern: null);

        // Llama-3's pattern cuts digits into groups of three ("123" "45"); GPT-2's keeps "12345" whole, where the
        // top-ranked merge "3 4" wins and leaves [12, 34, 5].
        Assert.Equal([Llama3Style.OneTwoThree, Llama3Style.FourFive], TextTokenizer.Load(llama3.Path).Encode("12345"));
        Assert.Equal([Llama3Style.OneTwo, Llama3Style.ThreeFour, Llama3Style.Byte('5')], TextTokenizer.Load(gpt2Pattern.Path).Encode("12345"));
        Assert.False(TextTokenizer.Load(llama3.Path).HasSameVocabulary(TextTokenizer.Load(gpt2Pattern.Path)));
    }

    [Fact]
    public void Ignore_merges_takes_a_whole_word_from_the_vocabulary()
    {
        using var ignoring = new TempDirectory();
        using var merging = new TempDirectory();
        Llama3Style.Write(ignoring.File("tokenizer.json"));
        Llama3Style.Write(merging.File("tokenizer.json"), ignoreMerges: false);

        // "Ġworld" is in the vocabulary but no merges build it.
        Assert.Equal([Llama3Style.World], TextTokenizer.Load(ignoring.Path).Encode(" world"));
        Assert.Equal("Ġworld".Select(Llama3Style.Byte), TextTokenizer.Load(merging.Path).Encode(" world"));
    }

    [Fact]
    public void Config_bos_and_add_bos_token_override_the_template()
    {
        using var folder = new TempDirectory();
        Llama3Style.Write(folder.File("tokenizer.json"));
        File.WriteAllText(folder.File("tokenizer_config.json"),
            """{"add_bos_token": false, "bos_token": {"content": "<|end_of_text|>", "special": true}, "eos_token": "<|eot_id|>"}""");

        var tokenizer = TextTokenizer.Load(folder.Path);

        Assert.Equal(Llama3Style.EndOfText, tokenizer.BosTokenId);
        Assert.Equal(Llama3Style.EotId, tokenizer.EosTokenId);
        Assert.False(tokenizer.AddBosToken);
        Assert.Equal([Llama3Style.Hello], tokenizer.Encode("Hello", addBos: true));
    }

    private static void WriteGpt2TokenizerJson(string path, bool mergesAsPairs) =>
        Write(
            path,
            ReadVocabJson(TokenizerTestData.Gpt2Tiny),
            ReadMergesTxt(TokenizerTestData.Gpt2Tiny),
            [new Added(50256, "<|endoftext|>", Special: true)],
            splitPattern: null,
            mergesAsPairs: mergesAsPairs);

    /// <summary>
    /// A tiny hand-made tokenizer in Llama-3's layout: the 256 byte tokens (GPT-2's ids 0-255), eleven merges, a
    /// word reachable only through ignore_merges, and special tokens kept out of the BPE vocabulary.
    /// </summary>
    private static class Llama3Style
    {
        public const int ThreeFour = 256, OneTwo = 257, OneTwoThree = 258, FourFive = 259, Hello = 263, The = 266, World = 267;
        public const int BeginOfText = 268, EndOfText = 269, EotId = 270, Tool = 271;

        private static readonly (string, string)[] s_merges =
        [
            ("3", "4"), ("1", "2"), ("12", "3"), ("4", "5"),
            ("H", "e"), ("l", "l"), ("He", "ll"), ("Hell", "o"),
            ("Ġ", "t"), ("h", "e"), ("Ġt", "he"),
        ];

        private static readonly List<KeyValuePair<string, int>> s_bytes =
            ReadVocabJson(TokenizerTestData.Gpt2Tiny).Where(e => e.Value < 256).ToList();

        public static int Byte(char symbol) => s_bytes.Single(e => e.Key == symbol.ToString()).Value;

        public static void Write(string path, string? splitPattern = Llama3Pattern, bool ignoreMerges = true)
        {
            var vocab = s_bytes.ToList();
            foreach (var (left, right) in s_merges)
            {
                vocab.Add(KeyValuePair.Create(left + right, vocab.Count));
            }

            vocab.Add(KeyValuePair.Create("Ġworld", vocab.Count));
            TokenizerJsonWriter.Write(
                path,
                vocab,
                s_merges,
                [
                    new Added(BeginOfText, "<|begin_of_text|>", Special: true),
                    new Added(EndOfText, "<|end_of_text|>", Special: true),
                    new Added(EotId, "<|eot_id|>", Special: true),
                    new Added(Tool, "<tool>", Special: false),
                ],
                splitPattern,
                ignoreMerges,
                templateBos: "<|begin_of_text|>");
        }
    }
}
