using System.Text.Json;

namespace WeakToStrong.Tokenization;

/// <summary>
/// The tokenizer of a Hugging Face model folder: text to token ids and back, with the folder's BOS convention.
/// Safe to use from several threads at once.
/// </summary>
/// <remarks>
/// <see cref="Load"/> looks for, in order: tokenizer.json (byte-level BPE: GPT-2, Llama-3, Qwen2), vocab.json with
/// merges.txt (GPT-2's original files), and tokenizer.model (SentencePiece: Llama-1/2, Mistral). A tokenizer.json
/// that describes something else (for example a SentencePiece-style BPE with byte fallback) is passed over when one
/// of the other files is present. tokenizer_config.json, when present, supplies add_bos_token and the BOS/EOS
/// token strings.
/// </remarks>
public sealed class TextTokenizer
{
    /// <summary><see cref="Kind"/> of a tokenizer loaded from tokenizer.json.</summary>
    public const string TokenizerJsonKind = "byte-level BPE (tokenizer.json)";

    /// <summary><see cref="Kind"/> of a tokenizer loaded from vocab.json and merges.txt.</summary>
    public const string VocabMergesKind = "byte-level BPE (vocab.json+merges.txt)";

    /// <summary>
    /// <see cref="Kind"/> of a BPE tokenizer loaded from tokenizer.model; a Unigram model reports
    /// "SentencePiece Unigram (tokenizer.model)".
    /// </summary>
    public const string SentencePieceKind = "SentencePiece BPE (tokenizer.model)";

    private readonly ITokenizerModel _model;

    private TextTokenizer(ITokenizerModel model, string kind, int? bosTokenId, int? eosTokenId, bool addBosToken)
    {
        _model = model;
        Kind = kind;
        BosTokenId = bosTokenId;
        EosTokenId = eosTokenId;
        AddBosToken = addBosToken && bosTokenId is not null;
    }

    /// <summary>Which algorithm and which file the tokenizer came from, e.g. "byte-level BPE (tokenizer.json)".</summary>
    public string Kind { get; }

    /// <summary>One past the largest token id, added tokens included.</summary>
    public int VocabSize => _model.VocabSize;

    /// <summary>The beginning-of-sequence token, or null when the tokenizer has none.</summary>
    public int? BosTokenId { get; }

    /// <summary>The end-of-sequence token, or null when the tokenizer has none.</summary>
    public int? EosTokenId { get; }

    /// <summary>
    /// Whether the model expects BOS in front of a prompt (tokenizer_config.json's add_bos_token; when absent, true
    /// for SentencePiece, the post-processor's template for tokenizer.json, false for vocab.json+merges.txt).
    /// Always false when there is no BOS token.
    /// </summary>
    public bool AddBosToken { get; }

    /// <summary>
    /// Lower-case hex SHA-256 of the vocabulary and its rules (merges, pre-tokenizer, added and special tokens; for
    /// SentencePiece the model bytes). A byte-level BPE gets the same fingerprint from tokenizer.json as from
    /// vocab.json+merges.txt.
    /// </summary>
    public string Fingerprint => _model.Fingerprint;

    /// <summary>Loads the tokenizer of the Hugging Face model folder <paramref name="modelDirectory"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="modelDirectory"/> is null, empty or white space.</exception>
    /// <exception cref="TokenizerException">
    /// The folder does not exist or holds no tokenizer, or a tokenizer file is unreadable, corrupt or unsupported;
    /// the message names the file.
    /// </exception>
    public static TextTokenizer Load(string modelDirectory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(modelDirectory);
        if (!Directory.Exists(modelDirectory))
        {
            throw new TokenizerException($"model directory {modelDirectory} does not exist");
        }

        var configPath = Path.Combine(modelDirectory, TokenizerConfig.FileName);
        var config = File.Exists(configPath) ? ReadFile(configPath, TokenizerConfig.Parse) : TokenizerConfig.Empty;

        var tokenizerJson = Path.Combine(modelDirectory, HuggingFaceTokenizerJson.FileName);
        var vocab = Path.Combine(modelDirectory, VocabMergesFiles.VocabFileName);
        var merges = Path.Combine(modelDirectory, VocabMergesFiles.MergesFileName);
        var sentencePiece = Path.Combine(modelDirectory, SentencePieceModel.FileName);

        string? unsupported = null;
        if (File.Exists(tokenizerJson))
        {
            try
            {
                return FromTokenizerJson(tokenizerJson, config);
            }
            catch (NotSupportedException ex)
            {
                unsupported = ex.Message;
            }
        }

        if (File.Exists(vocab) && File.Exists(merges))
        {
            return FromVocabMerges(vocab, merges, config);
        }

        if (File.Exists(sentencePiece))
        {
            return FromSentencePiece(sentencePiece, config);
        }

        if (unsupported is not null)
        {
            throw new TokenizerException(
                $"{tokenizerJson}: unsupported tokenizer: {unsupported}; no vocab.json+merges.txt or tokenizer.model to use instead");
        }

        if (File.Exists(vocab) != File.Exists(merges))
        {
            var (present, missing) = File.Exists(vocab)
                ? (vocab, VocabMergesFiles.MergesFileName)
                : (merges, VocabMergesFiles.VocabFileName);
            throw new TokenizerException($"{present} has no {missing} beside it in {modelDirectory}; byte-level BPE needs both");
        }

        throw new TokenizerException(
            $"no tokenizer found in {modelDirectory}: expected tokenizer.json, vocab.json+merges.txt or tokenizer.model");
    }

    /// <summary>
    /// The ids of <paramref name="text"/>. Byte-level tokenizers recognise added and special tokens written in the
    /// text (e.g. "&lt;|eot_id|&gt;"); SentencePiece encodes the text literally, as the SentencePiece library does.
    /// </summary>
    /// <param name="text">The text to encode.</param>
    /// <param name="addBos">Put BOS in front, if <see cref="AddBosToken"/> says the model expects it.</param>
    /// <exception cref="ArgumentNullException"><paramref name="text"/> is null.</exception>
    public IReadOnlyList<int> Encode(string text, bool addBos = false)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 3 + 2);
        if (addBos && AddBosToken && BosTokenId is { } bos)
        {
            ids.Add(bos);
        }

        _model.Encode(text, ids);
        return ids;
    }

    /// <summary>
    /// The text of <paramref name="ids"/>. Bytes of a character split across tokens are joined; an incomplete
    /// character decodes to U+FFFD.
    /// </summary>
    /// <param name="ids">Token ids, each in [0, <see cref="VocabSize"/>).</param>
    /// <param name="skipSpecialTokens">Leave out special tokens such as BOS and EOS.</param>
    /// <exception cref="ArgumentNullException"><paramref name="ids"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException">An id lies outside the vocabulary.</exception>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var list = ids as IReadOnlyList<int> ?? ids.ToList();
        foreach (var id in list)
        {
            if ((uint)id >= (uint)VocabSize)
            {
                throw new ArgumentOutOfRangeException(nameof(ids), id, $"token id {id} is outside the vocabulary [0, {VocabSize})");
            }
        }

        return _model.Decode(list, skipSpecialTokens);
    }

    /// <summary>Whether <paramref name="id"/> is a special token (BOS, EOS, chat markers, ...).</summary>
    public bool IsSpecial(int id) => _model.IsSpecial(id);

    /// <summary>
    /// The id of a token as the vocabulary writes it (byte-level: "Ġthe"; SentencePiece: "▁the"; special tokens
    /// by their content), or null when there is no such token.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="token"/> is null.</exception>
    public int? TokenToId(string token)
    {
        ArgumentNullException.ThrowIfNull(token);
        return _model.TokenToId(token);
    }

    /// <summary>Whether <paramref name="other"/> turns text into the same ids (same <see cref="Fingerprint"/>).</summary>
    /// <exception cref="ArgumentNullException"><paramref name="other"/> is null.</exception>
    public bool HasSameVocabulary(TextTokenizer other)
    {
        ArgumentNullException.ThrowIfNull(other);
        return Fingerprint == other.Fingerprint;
    }

    private static TextTokenizer FromTokenizerJson(string path, TokenizerConfig config)
    {
        var (model, templateBos) = ReadFile(path, HuggingFaceTokenizerJson.Parse);
        var bos = Resolve(model, config.BosToken ?? templateBos);
        return new TextTokenizer(
            model,
            TokenizerJsonKind,
            bos,
            Resolve(model, config.EosToken),
            config.AddBosToken ?? templateBos is not null);
    }

    private static TextTokenizer FromVocabMerges(string vocabPath, string mergesPath, TokenizerConfig config)
    {
        var vocab = ReadFile(vocabPath, VocabMergesFiles.ReadVocab);
        var merges = ReadFile(mergesPath, VocabMergesFiles.ReadMerges);
        var model = ReadFile($"{vocabPath} with {mergesPath}", _ => new ByteLevelBpe(
            vocab,
            merges,
            VocabMergesFiles.AddedTokens(vocab, config),
            PreTokenizer.Gpt2(config.AddPrefixSpace ?? false),
            normalizeNfc: false,
            ignoreMerges: false));
        return new TextTokenizer(
            model,
            VocabMergesKind,
            Resolve(model, config.BosToken),
            Resolve(model, config.EosToken),
            config.AddBosToken ?? false);
    }

    private static TextTokenizer FromSentencePiece(string path, TokenizerConfig config)
    {
        var model = ReadFile(path, SentencePieceModel.Load);
        int? Own(int id) => id >= 0 ? id : null;
        return new TextTokenizer(
            model,
            $"SentencePiece {model.Algorithm} (tokenizer.model)",
            config.BosToken is { } bos ? model.TokenToId(bos) : Own(model.BeginningOfSentenceId),
            config.EosToken is { } eos ? model.TokenToId(eos) : Own(model.EndOfSentenceId),
            config.AddBosToken ?? true);
    }

    private static int? Resolve(ITokenizerModel model, string? token) => token is null ? null : model.TokenToId(token);

    /// <summary>
    /// Runs <paramref name="read"/> on <paramref name="path"/>, turning every way reading or parsing can fail into a
    /// message that starts with the path.
    /// </summary>
    private static T ReadFile<T>(string path, Func<string, T> read)
    {
        try
        {
            return read(path);
        }
        catch (JsonException ex)
        {
            throw new TokenizerException($"{path}: invalid JSON: {ex.Message}", ex);
        }
        catch (InvalidDataException ex)
        {
            throw new TokenizerException($"{path}: {ex.Message}", ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new TokenizerException($"{path}: cannot be read: {ex.Message}", ex);
        }
    }
}
