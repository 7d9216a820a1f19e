using System.Text;
using Microsoft.ML.Tokenizers;
using WeakToStrong.Tokenization;
using Xunit;

namespace WeakToStrong.Tests.Tokenization;

/// <summary>
/// Our GPT-2 loader against an independent implementation, Microsoft.ML.Tokenizers' tiktoken "gpt2" encoding, on
/// seeded random mixes of the things byte-level BPE is fussy about: runs of whitespace, contractions, digits,
/// punctuation, accents, CJK and astral-plane emoji.
/// </summary>
[Trait("Category", "Unit")]
public sealed class TiktokenCrossCheckTests
{
    private static readonly string[] s_fragments =
    [
        " ", "  ", "   ", "\t", "\n", "\n\n", "\r\n", "\u00A0", "\u3000", " \n ",
        "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'",
        "the", "The", " quick", "brown", "FOX", "jumps", "over", "lazy", "dog", "a", "I",
        "0", "7", "42", "2024", "3.14159", "1,000,000", "-5", "1e-9",
        ".", ",", "!", "?", ";", ":", "...", "--", "()", "[]", "{}", "<|", "|>", "#", "@", "$", "%", "&", "*", "\"", "`", "~", "\\", "/",
        "naïve", "café", "Zürich", "résumé", "Ωμέγα", "Привет", "مرحبا", "שלום", "नमस्ते",
        "日本語", "のテキスト", "中文", "한국어",
        "🤖", "🚀", "👍🏽", "🇯🇵", "😀😀", "\u200B", "\u00AD", "x\u0301",
    ];

    public static TheoryData<int> Seeds => [1, 2, 3];

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Ids_match_tiktoken_gpt2_on_random_text(int seed)
    {
        var ours = TextTokenizer.Load(TokenizerTestData.Gpt2Tiny);
        var reference = TiktokenTokenizer.CreateForModel("gpt2");
        var random = new Random(seed);

        for (var sample = 0; sample < 100; sample++)
        {
            var text = RandomText(random);

            var expected = reference.EncodeToIds(text);
            var actual = ours.Encode(text);

            Assert.True(expected.SequenceEqual(actual), $"seed {seed} sample {sample}: {Escape(text)}\n tiktoken {string.Join(",", expected)}\n ours     {string.Join(",", actual)}");
            Assert.Equal(text, ours.Decode(actual));
        }
    }

    [Fact]
    public void Ids_match_tiktoken_gpt2_on_long_words_without_spaces()
    {
        var ours = TextTokenizer.Load(TokenizerTestData.Gpt2Tiny);
        var reference = TiktokenTokenizer.CreateForModel("gpt2");
        var random = new Random(7);
        var cjk = new string(Enumerable.Range(0, 3000).Select(_ => (char)random.Next(0x4E00, 0xA000)).ToArray());
        var letters = new string(Enumerable.Range(0, 3000).Select(_ => (char)random.Next('a', 'e')).ToArray());

        foreach (var text in new[] { cjk, letters, new string('a', 5000) })
        {
            var expected = reference.EncodeToIds(text);
            var actual = ours.Encode(text);

            Assert.Equal(expected, actual);
            Assert.Equal(text, ours.Decode(actual));
        }
    }

    private static string RandomText(Random random)
    {
        var text = new StringBuilder();
        var count = random.Next(1, 40);
        for (var i = 0; i < count; i++)
        {
            text.Append(s_fragments[random.Next(s_fragments.Length)]);
        }

        return text.ToString();
    }

    private static string Escape(string text) =>
        string.Concat(text.Select(c => c is < ' ' or > '~' ? $"\\u{(int)c:X4}" : c.ToString()));
}
