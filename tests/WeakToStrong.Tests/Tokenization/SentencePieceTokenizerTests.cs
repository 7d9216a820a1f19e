using WeakToStrong.Tokenization;
using Xunit;

namespace WeakToStrong.Tests.Tokenization;

/// <summary>llama-tiny's tokenizer.model against ids, pieces and text from the SentencePiece library.</summary>
[Trait("Category", "Unit")]
public sealed class SentencePieceTokenizerTests
{
    private static readonly TextTokenizer s_tokenizer = TextTokenizer.Load(TokenizerTestData.LlamaTiny);

    [Theory]
    [MemberData(nameof(TokenizerTestData.LlamaCaseIndices), MemberType = typeof(TokenizerTestData))]
    public void Encodes_like_the_SentencePiece_library(int index)
    {
        var c = TokenizerTestData.LlamaCases[index];

        Assert.Equal(c.Ids, s_tokenizer.Encode(c.Text));
    }

    [Theory]
    [MemberData(nameof(TokenizerTestData.LlamaCaseIndices), MemberType = typeof(TokenizerTestData))]
    public void Puts_bos_1_in_front_when_asked(int index)
    {
        var c = TokenizerTestData.LlamaCases[index];

        Assert.Equal([1, .. c.Ids], s_tokenizer.Encode(c.Text, addBos: true));
    }

    [Theory]
    [MemberData(nameof(TokenizerTestData.LlamaCaseIndices), MemberType = typeof(TokenizerTestData))]
    public void Decodes_like_the_SentencePiece_library_and_skips_bos(int index)
    {
        var c = TokenizerTestData.LlamaCases[index];

        Assert.Equal(c.Decoded, s_tokenizer.Decode(c.Ids));
        Assert.Equal(c.Decoded, s_tokenizer.Decode([1, .. c.Ids]));
    }

    [Theory]
    [MemberData(nameof(TokenizerTestData.LlamaCaseIndices), MemberType = typeof(TokenizerTestData))]
    public void Pieces_map_to_their_ids(int index)
    {
        var c = TokenizerTestData.LlamaCases[index];

        Assert.Equal(c.Ids, c.Pieces.Select(p => s_tokenizer.TokenToId(p) ?? -1));
    }

    [Fact]
    public void Reports_the_model_and_the_llama_bos_convention()
    {
        Assert.Equal(TextTokenizer.SentencePieceKind, s_tokenizer.Kind);
        Assert.Equal(512, s_tokenizer.VocabSize);
        Assert.Equal(1, s_tokenizer.BosTokenId);
        Assert.Equal(2, s_tokenizer.EosTokenId);
        Assert.True(s_tokenizer.AddBosToken);
        Assert.True(s_tokenizer.IsSpecial(1));
        Assert.True(s_tokenizer.IsSpecial(2));
        Assert.False(s_tokenizer.IsSpecial(430));
        Assert.Equal(1, s_tokenizer.TokenToId("<s>"));
    }

    [Fact]
    public void Keeps_special_tokens_on_decode_when_asked()
    {
        Assert.Equal("<s>Hello world</s>", s_tokenizer.Decode([1, .. TokenizerTestData.LlamaCases[0].Ids, 2], skipSpecialTokens: false));
    }

    [Fact]
    public void Reads_a_tokenizer_config_written_with_a_byte_order_mark()
    {
        using var folder = new TempDirectory();
        folder.CopyFrom(TokenizerTestData.LlamaTiny, "tokenizer.model");
        File.WriteAllText(folder.File("tokenizer_config.json"), """{"add_bos_token": false}""", new System.Text.UTF8Encoding(encoderShouldEmitUTF8Identifier: true));

        var tokenizer = TextTokenizer.Load(folder.Path);

        Assert.False(tokenizer.AddBosToken);
        Assert.Equal(1, tokenizer.BosTokenId);
        Assert.Equal(TokenizerTestData.LlamaCases[0].Ids, tokenizer.Encode(TokenizerTestData.LlamaCases[0].Text, addBos: true));
    }

    [Fact]
    public void Is_a_different_vocabulary_from_gpt2()
    {
        var gpt2 = TextTokenizer.Load(TokenizerTestData.Gpt2Tiny);

        Assert.False(s_tokenizer.HasSameVocabulary(gpt2));
        Assert.True(s_tokenizer.HasSameVocabulary(TextTokenizer.Load(TokenizerTestData.LlamaTiny)));
    }
}
