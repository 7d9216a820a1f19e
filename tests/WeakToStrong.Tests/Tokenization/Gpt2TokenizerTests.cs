using WeakToStrong.Tokenization;
using Xunit;

namespace WeakToStrong.Tests.Tokenization;

/// <summary>GPT-2's vocab.json+merges.txt against ids from OpenAI's original encoder.</summary>
[Trait("Category", "Unit")]
public sealed class Gpt2TokenizerTests
{
    private static readonly TextTokenizer s_tokenizer = TextTokenizer.Load(TokenizerTestData.Gpt2Tiny);

    [Theory]
    [MemberData(nameof(TokenizerTestData.Gpt2CaseIndices), MemberType = typeof(TokenizerTestData))]
    public void Encodes_like_the_OpenAI_encoder(int index)
    {
        var (text, ids) = TokenizerTestData.Gpt2Cases[index];

        Assert.Equal(ids, s_tokenizer.Encode(text));
    }

    [Theory]
    [MemberData(nameof(TokenizerTestData.Gpt2CaseIndices), MemberType = typeof(TokenizerTestData))]
    public void Decodes_back_to_the_text(int index)
    {
        var (text, ids) = TokenizerTestData.Gpt2Cases[index];

        Assert.Equal(text, s_tokenizer.Decode(ids));
    }

    [Fact]
    public void Reports_the_gpt2_vocabulary_and_its_special_token()
    {
        Assert.Equal(TextTokenizer.VocabMergesKind, s_tokenizer.Kind);
        Assert.Equal(50257, s_tokenizer.VocabSize);
        Assert.Equal(50256, s_tokenizer.BosTokenId);
        Assert.Equal(50256, s_tokenizer.EosTokenId);
        Assert.False(s_tokenizer.AddBosToken);
        Assert.True(s_tokenizer.IsSpecial(50256));
        Assert.False(s_tokenizer.IsSpecial(262));
        Assert.Equal(262, s_tokenizer.TokenToId("Ġthe"));
        Assert.Equal(50256, s_tokenizer.TokenToId("<|endoftext|>"));
        Assert.Null(s_tokenizer.TokenToId("no such token"));
        Assert.Equal(64, s_tokenizer.Fingerprint.Length);
    }

    [Fact]
    public void Add_bos_does_nothing_because_gpt2_does_not_ask_for_it()
    {
        Assert.Equal([15496, 995], s_tokenizer.Encode("Hello world", addBos: true));
    }

    [Fact]
    public void Endoftext_in_the_text_is_the_special_token_and_decoding_can_keep_or_skip_it()
    {
        var ids = s_tokenizer.Encode("Hello<|endoftext|> world");

        Assert.Equal([15496, 50256, 995], ids);
        Assert.Equal("Hello world", s_tokenizer.Decode(ids));
        Assert.Equal("Hello<|endoftext|> world", s_tokenizer.Decode(ids, skipSpecialTokens: false));
    }

    [Fact]
    public void A_character_split_across_tokens_decodes_whole_only_when_all_its_bytes_are_there()
    {
        // "🤖" is 4 UTF-8 bytes spread over ids 12520, 97, 244 (case "emoji 🤖🚀 end").
        Assert.Equal(" 🤖", s_tokenizer.Decode([12520, 97, 244]));
        Assert.Equal(" \uFFFD", s_tokenizer.Decode([12520, 97]));
    }

    [Fact]
    public void Guard_clauses_name_the_argument()
    {
        Assert.Equal("text", Assert.Throws<ArgumentNullException>(() => s_tokenizer.Encode(null!)).ParamName);
        Assert.Equal("ids", Assert.Throws<ArgumentNullException>(() => s_tokenizer.Decode(null!)).ParamName);
        Assert.Equal("ids", Assert.Throws<ArgumentOutOfRangeException>(() => s_tokenizer.Decode([15496, 50257])).ParamName);
        Assert.Equal("ids", Assert.Throws<ArgumentOutOfRangeException>(() => s_tokenizer.Decode([-1])).ParamName);
        Assert.Equal("token", Assert.Throws<ArgumentNullException>(() => s_tokenizer.TokenToId(null!)).ParamName);
        Assert.Equal("other", Assert.Throws<ArgumentNullException>(() => s_tokenizer.HasSameVocabulary(null!)).ParamName);
        Assert.Equal("modelDirectory", Assert.Throws<ArgumentNullException>(() => TextTokenizer.Load(null!)).ParamName);
        Assert.Equal("modelDirectory", Assert.Throws<ArgumentException>(() => TextTokenizer.Load(" ")).ParamName);
    }
}
