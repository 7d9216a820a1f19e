using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace WeakToStrong.Tokenization;

/// <summary>
/// Byte-level BPE as in GPT-2, GPT-NeoX, Llama-3 and Qwen2: added tokens are cut out of the text first, the rest is
/// pre-tokenized into words, each word's UTF-8 bytes start as one symbol each, and the lowest-ranked adjacent pair is
/// merged until no ranked pair is left. Words are cached, since text repeats them heavily.
/// </summary>
internal sealed class ByteLevelBpe : ITokenizerModel
{
    // Enough for the distinct words of a long document; cleared wholesale when full, which is cheap and rare.
    // Words longer than CacheMaxWordLength (a CJK paragraph, a base64 blob) rarely repeat and are not kept.
    private const int CacheCapacity = 1 << 16;
    private const int CacheMaxWordLength = 256;

    private readonly Dictionary<string, int> _vocab;
    private readonly string?[] _tokens;                          // id → vocabulary entry, or added token content
    private readonly int[] _byteIds = new int[256];              // byte → id of its one-byte token
    private readonly Dictionary<long, (int Rank, int Merged)> _merges;
    private readonly Dictionary<int, AddedToken> _addedById = [];
    private readonly Dictionary<string, int> _addedByContent = new(StringComparer.Ordinal);
    private readonly Regex? _addedPattern;
    private readonly PreTokenizer _preTokenizer;
    private readonly bool _normalizeNfc;
    private readonly bool _ignoreMerges;
    private readonly ConcurrentDictionary<string, int[]> _cache = new(StringComparer.Ordinal);

    /// <summary>
    /// Builds the model. Throws <see cref="InvalidDataException"/> when the parts do not fit together (a merge of
    /// unknown tokens, a byte with no token).
    /// </summary>
    /// <param name="vocab">Vocabulary entries, written in <see cref="ByteLevelAlphabet"/> characters.</param>
    /// <param name="merges">Merge rules, highest priority first.</param>
    /// <param name="addedTokens">Tokens matched verbatim in the text; they need not be in <paramref name="vocab"/>.</param>
    /// <param name="preTokenizer">How text is cut into words.</param>
    /// <param name="normalizeNfc">Whether text is put in Unicode NFC first (Qwen2 asks for it).</param>
    /// <param name="ignoreMerges">
    /// Hugging Face's ignore_merges (Llama-3): a word that is itself a vocabulary entry becomes that token, even when
    /// the merges would have split it differently.
    /// </param>
    public ByteLevelBpe(
        Dictionary<string, int> vocab,
        IReadOnlyList<(string Left, string Right)> merges,
        IReadOnlyList<AddedToken> addedTokens,
        PreTokenizer preTokenizer,
        bool normalizeNfc,
        bool ignoreMerges)
    {
        _vocab = vocab;
        _preTokenizer = preTokenizer;
        _normalizeNfc = normalizeNfc;
        _ignoreMerges = ignoreMerges;

        _tokens = new string?[vocab.Values.Concat(addedTokens.Select(t => t.Id)).DefaultIfEmpty(-1).Max() + 1];
        foreach (var (token, id) in vocab)
        {
            _tokens[id] = token;
        }

        for (var b = 0; b < 256; b++)
        {
            var symbol = ByteLevelAlphabet.ToChar((byte)b).ToString();
            _byteIds[b] = vocab.TryGetValue(symbol, out var id)
                ? id
                : throw new InvalidDataException(
                    $"the vocabulary has no token for byte 0x{b:X2} (\"{symbol}\"), so it is not a byte-level BPE vocabulary");
        }

        _merges = new Dictionary<long, (int, int)>(merges.Count);
        for (var rank = 0; rank < merges.Count; rank++)
        {
            var (left, right) = merges[rank];
            var key = PairKey(IdOf(left, rank, merges[rank]), IdOf(right, rank, merges[rank]));
            var merged = IdOf(left + right, rank, merges[rank]);
            _merges.TryAdd(key, (rank, merged));
        }

        foreach (var token in addedTokens.Where(t => t.Content.Length > 0))
        {
            _tokens[token.Id] = token.Content;
            _addedById[token.Id] = token;
            _addedByContent[token.Content] = token.Id;
        }

        _addedPattern = BuildAddedTokenPattern(_addedById.Values);
        Fingerprint = ComputeFingerprint();
    }

    public int VocabSize => _tokens.Length;

    public string Fingerprint { get; }

    public void Encode(string text, List<int> ids)
    {
        if (_addedPattern is null)
        {
            EncodeOrdinary(text, ids);
            return;
        }

        var end = 0;
        for (var match = _addedPattern.Match(text); match.Success; match = match.NextMatch())
        {
            if (match.Index > end)
            {
                EncodeOrdinary(text[end..match.Index], ids);
            }

            ids.Add(_addedByContent[match.Groups["token"].Value]);
            end = match.Index + match.Length;
        }

        if (end < text.Length)
        {
            EncodeOrdinary(text[end..], ids);
        }
    }

    public string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens)
    {
        var text = new StringBuilder();
        var pending = new List<byte>();
        foreach (var id in ids)
        {
            if (_addedById.TryGetValue(id, out var added))
            {
                if (!(skipSpecialTokens && added.Special))
                {
                    FlushUtf8(pending, text);
                    text.Append(added.Content);
                }

                continue;
            }

            foreach (var c in _tokens[id] ?? "")
            {
                if (ByteLevelAlphabet.TryGetByte(c, out var b))
                {
                    pending.Add(b);
                }
                else
                {
                    pending.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
                }
            }
        }

        FlushUtf8(pending, text);
        return text.ToString();
    }

    public bool IsSpecial(int id) => _addedById.TryGetValue(id, out var token) && token.Special;

    public int? TokenToId(string token) =>
        _addedByContent.TryGetValue(token, out var added) ? added
        : _vocab.TryGetValue(token, out var id) ? id
        : null;

    private static long PairKey(int left, int right) => ((long)left << 32) | (uint)right;

    private static Regex? BuildAddedTokenPattern(IEnumerable<AddedToken> tokens)
    {
        // Longest first, so that at any position the alternation takes the longest token (Hugging Face matches
        // leftmost-longest).
        var alternatives = tokens
            .OrderByDescending(t => t.Content.Length)
            .ThenBy(t => t.Content, StringComparer.Ordinal)
            .Select(t => (t.LStrip ? @"\s*" : "") + "(?<token>" + Regex.Escape(t.Content) + ")" + (t.RStrip ? @"\s*" : ""))
            .ToList();
        return alternatives.Count == 0 ? null : new Regex(string.Join("|", alternatives), RegexOptions.CultureInvariant);
    }

    private static void FlushUtf8(List<byte> pending, StringBuilder text)
    {
        // Invalid sequences (a token boundary inside a character) decode to U+FFFD, as Hugging Face's errors="replace".
        text.Append(Encoding.UTF8.GetString(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(pending)));
        pending.Clear();
    }

    private int IdOf(string token, int rank, (string Left, string Right) merge) =>
        _vocab.TryGetValue(token, out var id)
            ? id
            : throw new InvalidDataException(
                $"merge {rank + 1} (\"{merge.Left} {merge.Right}\") needs \"{token}\", which is not in the vocabulary");

    private void EncodeOrdinary(string text, List<int> ids)
    {
        if (_normalizeNfc)
        {
            text = text.Normalize(NormalizationForm.FormC);
        }

        foreach (var word in _preTokenizer.Split(text))
        {
            ids.AddRange(EncodeWord(word));
        }
    }

    private int[] EncodeWord(string word)
    {
        if (_cache.TryGetValue(word, out var cached))
        {
            return cached;
        }

        var ids = _ignoreMerges && _vocab.TryGetValue(ByteLevelAlphabet.Encode(word), out var whole)
            ? [whole]
            : Merge(Encoding.UTF8.GetBytes(word));

        if (word.Length <= CacheMaxWordLength)
        {
            if (_cache.Count >= CacheCapacity)
            {
                _cache.Clear();
            }

            _cache[word] = ids;
        }

        return ids;
    }

    /// <summary>
    /// Merges the word's byte symbols, always taking the lowest-ranked adjacent pair and, among equal ranks, the
    /// leftmost (Hugging Face's order; for merges learned in order it equals GPT-2's pass-per-rank loop). Symbols
    /// form a linked list over the byte positions and candidate pairs wait in a heap, so a long word without
    /// spaces (CJK text, base64) costs O(n log n) rather than O(n²).
    /// </summary>
    private int[] Merge(byte[] bytes)
    {
        var n = bytes.Length;
        var ids = new int[n];     // symbol starting at byte i, or -1 once merged into the symbol on its left
        var next = new int[n];    // byte position of the next live symbol; n at the end
        var prev = new int[n];    // byte position of the previous live symbol; -1 at the start
        for (var i = 0; i < n; i++)
        {
            ids[i] = _byteIds[bytes[i]];
            next[i] = i + 1;
            prev[i] = i - 1;
        }

        var candidates = new PriorityQueue<int, (int Rank, int Position)>();
        void Consider(int left)
        {
            var right = next[left];
            if (right < n && _merges.TryGetValue(PairKey(ids[left], ids[right]), out var merge))
            {
                candidates.Enqueue(left, (merge.Rank, left));
            }
        }

        for (var i = 0; i + 1 < n; i++)
        {
            Consider(i);
        }

        while (candidates.TryDequeue(out var left, out var priority))
        {
            // A candidate is stale once either symbol has merged with something else; ranks identify pairs.
            var right = next[left];
            if (ids[left] < 0 || right >= n
                || !_merges.TryGetValue(PairKey(ids[left], ids[right]), out var merge) || merge.Rank != priority.Rank)
            {
                continue;
            }

            ids[left] = merge.Merged;
            ids[right] = -1;
            next[left] = next[right];
            if (next[right] < n)
            {
                prev[next[right]] = left;
            }

            if (prev[left] >= 0)
            {
                Consider(prev[left]);
            }

            Consider(left);
        }

        var result = new List<int>();
        for (var i = 0; i < n; i = next[i])
        {
            result.Add(ids[i]);
        }

        return result.ToArray();
    }

    private string ComputeFingerprint()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Line(string line) => hash.AppendData(Encoding.UTF8.GetBytes(line + "\n"));

        Line("byte-level-bpe");
        Line(_normalizeNfc ? "nfc" : "no-normalizer");
        Line(_ignoreMerges ? "ignore-merges" : "apply-merges");
        Line(_preTokenizer.Description);
        for (var id = 0; id < _tokens.Length; id++)
        {
            Line($"{id}\t{_tokens[id]}");
        }

        foreach (var (key, merge) in _merges.OrderBy(m => m.Value.Rank))
        {
            Line($"merge {(int)(key >> 32)} {(int)key} {merge.Merged}");
        }

        foreach (var token in _addedById.Values.OrderBy(t => t.Id))
        {
            Line($"added {token.Id} {token.Special} {token.LStrip} {token.RStrip}");
        }

        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }
}
