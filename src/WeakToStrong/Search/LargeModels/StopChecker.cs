using WeakToStrong.Tokenization;

namespace WeakToStrong.Search.LargeModels;

/// <summary>Decides after each sampled token whether a response has ended, and what its text is.</summary>
internal sealed class StopChecker
{
    private readonly TextTokenizer _tokenizer;
    private readonly HashSet<int> _eos;
    private readonly string[] _stops;
    private readonly int _window;

    /// <param name="tokenizer">Decodes the response for stop strings.</param>
    /// <param name="eosTokenIds">Tokens that end a response.</param>
    /// <param name="stopStrings">Strings that end a response.</param>
    /// <param name="maxNewTokens">Largest response.</param>
    public StopChecker(TextTokenizer tokenizer, IEnumerable<int> eosTokenIds, IReadOnlyList<string> stopStrings, int maxNewTokens)
    {
        _tokenizer = tokenizer;
        _eos = [.. eosTokenIds];
        _stops = [.. stopStrings];
        MaxNewTokens = maxNewTokens;
        // Every token carries at least one byte and a character at most four, so a stop string always lies
        // within the last 4·length tokens (+1 for a character split at the window's start).
        _window = _stops.Length == 0 ? 0 : 4 * _stops.Max(s => s.Length) + 1;
    }

    public int MaxNewTokens { get; }

    public IReadOnlyCollection<int> EosTokenIds => _eos;

    /// <summary>Whether the response ends with its last token.</summary>
    public FinishReason Check(IReadOnlyList<int> response)
    {
        if (response.Count == 0) return MaxNewTokens == 0 ? FinishReason.Length : FinishReason.None;
        if (_eos.Contains(response[^1])) return FinishReason.Eos;
        if (_stops.Length > 0)
        {
            int from = Math.Max(0, response.Count - _window);
            string tail = _tokenizer.Decode(Range(response, from));
            foreach (string stop in _stops)
                if (tail.Contains(stop, StringComparison.Ordinal)) return FinishReason.StopString;
        }
        return response.Count >= MaxNewTokens ? FinishReason.Length : FinishReason.None;
    }

    /// <summary>The response's text; after a stop string, cut right after its first occurrence (the reference keeps it).</summary>
    public string Text(IReadOnlyList<int> response, FinishReason finish)
    {
        string text = _tokenizer.Decode(response);
        return finish == FinishReason.StopString ? CutAfterStop(text, _stops) : text;
    }

    /// <summary>The text up to the end of the earliest-ending first occurrence of a stop string.</summary>
    public static string CutAfterStop(string text, IReadOnlyList<string> stops)
    {
        int end = text.Length;
        foreach (string stop in stops)
        {
            int i = text.IndexOf(stop, StringComparison.Ordinal);
            if (i >= 0) end = Math.Min(end, i + stop.Length);
        }
        return text[..end];
    }

    private static IEnumerable<int> Range(IReadOnlyList<int> list, int from)
    {
        for (int i = from; i < list.Count; i++) yield return list[i];
    }
}
