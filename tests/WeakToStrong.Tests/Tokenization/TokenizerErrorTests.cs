using System.Text.Json;
using WeakToStrong.Tokenization;
using Xunit;

namespace WeakToStrong.Tests.Tokenization;

/// <summary>Every way a tokenizer folder can be broken ends in a <see cref="TokenizerException"/> naming the file.</summary>
[Trait("Category", "Unit")]
public sealed class TokenizerErrorTests
{
    [Fact]
    public void Empty_folder()
    {
        using var folder = new TempDirectory();

        var error = Assert.Throws<TokenizerException>(() => TextTokenizer.Load(folder.Path));

        Assert.Equal($"no tokenizer found in {folder.Path}: expected tokenizer.json, vocab.json+merges.txt or tokenizer.model", error.Message);
    }

    [Fact]
    public void Missing_folder()
    {
        var missing = Path.Combine(Path.GetTempPath(), "w2s-no-such-folder-" + Guid.NewGuid().ToString("N"));

        var error = Assert.Throws<TokenizerException>(() => TextTokenizer.Load(missing));

        Assert.Equal($"model directory {missing} does not exist", error.Message);
    }

    [Fact]
    public void Corrupt_vocab_json()
    {
        using var folder = new TempDirectory();
        File.WriteAllText(folder.File("vocab.json"), """{"!": 0, "\"": 1, """);
        folder.CopyFrom(TokenizerTestData.Gpt2Tiny, "merges.txt");

        var error = Assert.Throws<TokenizerException>(() => TextTokenizer.Load(folder.Path));

        Assert.StartsWith($"{folder.File("vocab.json")}: invalid JSON:", error.Message);
        Assert.IsAssignableFrom<JsonException>(error.InnerException);
    }

    [Fact]
    public void Vocab_json_of_the_wrong_shape()
    {
        using var folder = new TempDirectory();
        File.WriteAllText(folder.File("vocab.json"), """{"a": "zero"}""");
        folder.CopyFrom(TokenizerTestData.Gpt2Tiny, "merges.txt");

        var error = Assert.Throws<TokenizerException>(() => TextTokenizer.Load(folder.Path));

        Assert.Equal($"{folder.File("vocab.json")}: field \"a\" should be a non-negative 32-bit integer, not \"zero\"", error.Message);
    }

    [Fact]
    public void Merges_txt_naming_a_token_outside_the_vocabulary()
    {
        using var folder = new TempDirectory();
        folder.CopyFrom(TokenizerTestData.Gpt2Tiny, "vocab.json");
        File.WriteAllLines(folder.File("merges.txt"), ["#version: 0.2", "Ġ t", "Ġ zzzz"]);

        var error = Assert.Throws<TokenizerException>(() => TextTokenizer.Load(folder.Path));

        Assert.Contains(folder.File("merges.txt"), error.Message);
        Assert.EndsWith("merge 2 (\"Ġ zzzz\") needs \"zzzz\", which is not in the vocabulary", error.Message);
    }

    [Fact]
    public void Vocab_json_without_merges_txt()
    {
        using var folder = new TempDirectory();
        folder.CopyFrom(TokenizerTestData.Gpt2Tiny, "vocab.json");

        var error = Assert.Throws<TokenizerException>(() => TextTokenizer.Load(folder.Path));

        Assert.Equal($"{folder.File("vocab.json")} has no merges.txt beside it in {folder.Path}; byte-level BPE needs both", error.Message);
    }

    [Fact]
    public void Corrupt_tokenizer_json()
    {
        using var folder = new TempDirectory();
        File.WriteAllText(folder.File("tokenizer.json"), """{"model": {"type": "BPE", "vocab": {"a": 0""");

        var error = Assert.Throws<TokenizerException>(() => TextTokenizer.Load(folder.Path));

        Assert.StartsWith($"{folder.File("tokenizer.json")}: invalid JSON:", error.Message);
    }

    [Fact]
    public void Tokenizer_json_without_a_model()
    {
        using var folder = new TempDirectory();
        File.WriteAllText(folder.File("tokenizer.json"), """{"version": "1.0", "added_tokens": []}""");

        var error = Assert.Throws<TokenizerException>(() => TextTokenizer.Load(folder.Path));

        Assert.Equal($"{folder.File("tokenizer.json")}: field \"model\" is missing", error.Message);
    }

    [Fact]
    public void Unsupported_tokenizer_json_with_nothing_to_fall_back_on()
    {
        using var folder = new TempDirectory();
        File.WriteAllText(folder.File("tokenizer.json"), """{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}}}""");

        var error = Assert.Throws<TokenizerException>(() => TextTokenizer.Load(folder.Path));

        Assert.Equal(
            $"{folder.File("tokenizer.json")}: unsupported tokenizer: model type \"WordPiece\" (only byte-level BPE is implemented); " +
            "no vocab.json+merges.txt or tokenizer.model to use instead",
            error.Message);
    }

    [Fact]
    public void Unsupported_tokenizer_json_gives_way_to_tokenizer_model()
    {
        using var folder = new TempDirectory();
        File.WriteAllText(folder.File("tokenizer.json"), """{"model": {"type": "BPE", "byte_fallback": true, "vocab": {}, "merges": []}}""");
        folder.CopyFrom(TokenizerTestData.LlamaTiny, "tokenizer.model");

        var tokenizer = TextTokenizer.Load(folder.Path);

        Assert.Equal(TextTokenizer.SentencePieceKind, tokenizer.Kind);
        Assert.Equal(TokenizerTestData.LlamaCases[0].Ids, tokenizer.Encode(TokenizerTestData.LlamaCases[0].Text));
    }

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.0)]
    public void Truncated_tokenizer_model(double keptFraction)
    {
        using var folder = new TempDirectory();
        var bytes = File.ReadAllBytes(Path.Combine(TokenizerTestData.LlamaTiny, "tokenizer.model"));
        File.WriteAllBytes(folder.File("tokenizer.model"), bytes[..(int)(bytes.Length * keptFraction)]);

        var error = Assert.Throws<TokenizerException>(() => TextTokenizer.Load(folder.Path));

        Assert.StartsWith($"{folder.File("tokenizer.model")}: not a readable SentencePiece model", error.Message);
    }

    [Fact]
    public void Corrupt_tokenizer_config_json()
    {
        using var folder = new TempDirectory();
        folder.CopyFrom(TokenizerTestData.LlamaTiny, "tokenizer.model");
        File.WriteAllText(folder.File("tokenizer_config.json"), """{"add_bos_token": "yes"}""");

        var error = Assert.Throws<TokenizerException>(() => TextTokenizer.Load(folder.Path));

        Assert.Equal($"{folder.File("tokenizer_config.json")}: field \"add_bos_token\" should be true or false, not a string", error.Message);
    }
}
