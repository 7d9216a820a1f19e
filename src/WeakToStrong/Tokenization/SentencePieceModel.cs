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

    private SentencePieceModel(SentencePieceTokenizer tokenizer, string algorithm, string fingerprint)
    {
        _tokenizer = tokenizer;
        Algorithm = algorithm;
        Fingerprint = fingerprint;
        VocabSize = tokenizer.Vocabulary.Count == 0 ? 0 : tokenizer.Vocabulary.Values.Max() + 1;
        _special = new[] { tokenizer.UnknownId, tokenizer.BeginningOfSentenceId, tokenizer.EndOfSentenceId }
            .Where(id => id >= 0)
            .ToHashSet();
    }

    public int VocabSize { get; }

    /// <summary>"BPE" (Llama, Mistral) or "Unigram" (T5 and others): the model's trainer_spec.model_type.</summary>
    public string Algorithm { get; }

    public string Fingerprint { get; }

    public int BeginningOfSentenceId => _tokenizer.BeginningOfSentenceId;

    public int EndOfSentenceId => _tokenizer.EndOfSentenceId;

    public static SentencePieceModel Load(string path)
    {
        var bytes = File.ReadAllBytes(path);
        SentencePieceTokenizer tokenizer;
        try
        {
            using var stream = new MemoryStream(bytes, writable: false);
            tokenizer = SentencePieceTokenizer.Create(stream, addBeginningOfSentence: false, addEndOfSentence: false);
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
        return new SentencePieceModel(tokenizer, ReadAlgorithm(bytes), fingerprint);
    }

    public void Encode(string text, List<int> ids) =>
        ids.AddRange(_tokenizer.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false));

    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens) =>
        _tokenizer.Decode(ids, considerSpecialTokens: !skipSpecialTokens);

    public bool IsSpecial(int id) => _special.Contains(id);

    public int? TokenToId(string token) => _tokenizer.Vocabulary.TryGetValue(token, out var id) ? id : null;

    /// <summary>
    /// ModelProto.trainer_spec (field 2) .model_type (field 3), which Microsoft.ML.Tokenizers does not expose;
    /// protobuf leaves a field out when it holds the default, UNIGRAM.
    /// </summary>
    private static string ReadAlgorithm(ReadOnlySpan<byte> model)
    {
        var modelType = 1UL;
        if (TryFindField(model, 2, out _, out var trainerSpec) && TryFindField(trainerSpec, 3, out var value, out _))
        {
            modelType = value;
        }

        return modelType switch
        {
            1 => "Unigram",
            2 => "BPE",
            3 => "word",
            4 => "char",
            _ => throw new InvalidDataException($"unknown SentencePiece model_type {modelType}"),
        };
    }

    /// <summary>Finds field <paramref name="wanted"/> in a protobuf message: its varint or its length-delimited bytes.</summary>
    private static bool TryFindField(ReadOnlySpan<byte> message, int wanted, out ulong varint, out ReadOnlySpan<byte> payload)
    {
        var position = 0;
        while (position < message.Length)
        {
            var key = ReadVarint(message, ref position);
            varint = 0;
            payload = default;
            switch (key & 7)
            {
                case 0:
                    varint = ReadVarint(message, ref position);
                    break;
                case 1:
                    position += 8;
                    break;
                case 2:
                    var length = ReadVarint(message, ref position);
                    if (length > (ulong)(message.Length - position))
                    {
                        throw new InvalidDataException("a protobuf field runs past the end of the SentencePiece model");
                    }

                    payload = message.Slice(position, (int)length);
                    position += (int)length;
                    break;
                case 5:
                    position += 4;
                    break;
                default:
                    throw new InvalidDataException($"protobuf wire type {key & 7} in the SentencePiece model");
            }

            if (key >> 3 == (ulong)wanted)
            {
                return true;
            }
        }

        varint = 0;
        payload = default;
        return false;
    }

    private static ulong ReadVarint(ReadOnlySpan<byte> message, ref int position)
    {
        var value = 0UL;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (position >= message.Length)
            {
                throw new InvalidDataException("a protobuf varint runs past the end of the SentencePiece model");
            }

            var b = message[position++];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return value;
            }
        }

        throw new InvalidDataException("a protobuf varint is longer than 10 bytes in the SentencePiece model");
    }
}
