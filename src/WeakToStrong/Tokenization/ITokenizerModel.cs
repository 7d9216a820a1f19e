namespace WeakToStrong.Tokenization;

/// <summary>What <see cref="TextTokenizer"/> needs from a tokenization algorithm; BOS handling stays in the facade.</summary>
internal interface ITokenizerModel
{
    /// <summary>One past the largest token id.</summary>
    int VocabSize { get; }

    /// <summary>Lower-case hex SHA-256 of a canonical form of the vocabulary and its rules.</summary>
    string Fingerprint { get; }

    /// <summary>Appends the ids of <paramref name="text"/> (no BOS) to <paramref name="ids"/>.</summary>
    void Encode(string text, List<int> ids);

    /// <summary>The text of <paramref name="ids"/>; each id is already known to lie in [0, VocabSize).</summary>
    string Decode(IReadOnlyList<int> ids, bool skipSpecialTokens);

    bool IsSpecial(int id);

    int? TokenToId(string token);
}
