using System.Security.Cryptography;
using Microsoft.ML.Tokenizers;

namespace WeakToStrong.Tokenization;

/// <summary>
/// A SentencePiece tokenizer.model (Llama-1/2, Mistral), run by Microsoft.ML.Tokenizers, which reproduces the
/// SentencePiece library's ids. Text is encoded literally, as that library does: "&lt;s&gt;" in the input is not BOS.
/// </summary>
internal sealed class SentencePieceModel : ITokenizerModel
{
    public const string FileName = "tokenizer.model";

    private readonly SentencePieceTokenizer _tokenizer;
    private readonly HashSet<int> _special;

    private SentencePieceModel(SentencePieceTokenizer tokenizer, string fingerprint)
    {
        _tokenizer = tokenizer;
        Fingerprint = fingerprint;
        VocabSize = tokenizer.Vocabulary.Count == 0 ? 0 : tokenizer.Vocabulary.Values.Max() + 1;
        _special = new[] { tokenizer.UnknownId, tokenizer.BeginningOfSentenceId, tokenizer.EndOfSentenceId }
            .Where(id => id >= 0)
            .ToHashSet();
    }

    public int VocabSize { get; }

    public string Fingerprint { get; }

    public int BeginningOfSentenceId => _tokenizer.BeginningOfSentenceId;

    public int EndOfSentenceId => _tokenizer.EndOfSentenceId;

    public static SentencePieceModel Load(string path)
    {
        var bytes = File.ReadAllBytes(path);
        SentencePieceTokenizer tokenizer;
        try
        {
            tokenizer = SentencePieceTokenizer.Create(new MemoryStream(bytes, writable: false), addBeginningOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception ex)
        {
            // The library reports a damaged protobuf as anything from InvalidProtocolBufferException to
            // NullReferenceException; all of them mean the same thing here.
            throw new InvalidDataException($"not a readable SentencePiece model ({ex.GetType().Name}: {ex.Message})", ex);
        }

        if (tokenizer.Vocabulary.Count == 0)
        {
            throw new InvalidDataException("the SentencePiece model has no pieces");
        }

        var fingerprint = Convert.ToHexStringLower(SHA256.HashData([.. "sentencepiece\n"u8, .. bytes]));
        return new SentencePieceModel(tokenizer, fingerprint);
    }

    public void Encode(string text, List<int> ids) =>
        ids.AddRange(_tokenizer.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false));

    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens) =>
        _tokenizer.Decode(ids, considerSpecialTokens: !skipSpecialTokens);

    public bool IsSpecial(int id) => _special.Contains(id);

    public int? TokenToId(string token) => _tokenizer.Vocabulary.TryGetValue(token, out var id) ? id : null;
}
