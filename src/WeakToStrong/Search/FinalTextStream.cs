namespace WeakToStrong.Search;

/// <summary>
/// The streamed part of a response: grows as text becomes final, never shrinks, and ends as the result's text.
/// </summary>
internal sealed class FinalTextStream
{
    private string _emitted = "";

    /// <summary>Text emitted so far.</summary>
    public string Emitted => _emitted;

    /// <summary>
    /// The new final text past what was emitted, given text known to be final up to its stable length, or null
    /// when nothing new is final.
    /// </summary>
    /// <exception cref="InvalidOperationException">The text does not extend what was emitted (a search bug: streamed
    /// text cannot be taken back).</exception>
    public string? Advance(string final)
    {
        int end = StableLength(final);
        if (end <= _emitted.Length) return null;
        RequireExtends(final);
        string delta = final[_emitted.Length..end];
        _emitted = final[..end];
        return delta;
    }

    /// <summary>The rest of the response: everything of <paramref name="text"/> not emitted yet.</summary>
    public string Finish(string text)
    {
        RequireExtends(text);
        string rest = text[_emitted.Length..];
        _emitted = text;
        return rest;
    }

    /// <summary>
    /// Length of the part of <paramref name="text"/> that more bytes cannot change: without trailing U+FFFD (an
    /// incomplete UTF-8 sequence decodes to it until its last byte arrives) and without a trailing high surrogate.
    /// </summary>
    public static int StableLength(ReadOnlySpan<char> text)
    {
        int n = text.Length;
        while (n > 0 && text[n - 1] == '\uFFFD') n--;
        if (n > 0 && char.IsHighSurrogate(text[n - 1])) n--;
        return n;
    }

    /// <summary>The longest common prefix of the stable parts of <paramref name="texts"/> (empty for none).</summary>
    public static string CommonStablePrefix(IEnumerable<string> texts)
    {
        string? prefix = null;
        int length = 0;
        foreach (string text in texts)
        {
            int stable = StableLength(text);
            if (prefix is null)
            {
                prefix = text;
                length = stable;
                continue;
            }
            length = Math.Min(length, stable);
            length = prefix.AsSpan(0, length).CommonPrefixLength(text.AsSpan(0, length));
            if (length == 0) break;
        }
        return prefix is null ? "" : prefix[..StableLength(prefix.AsSpan(0, length))];
    }

    private void RequireExtends(string text)
    {
        if (!text.StartsWith(_emitted, StringComparison.Ordinal))
            throw new InvalidOperationException(
                $"streamed text cannot be taken back: '{_emitted}' was emitted, and the response now reads '{text}'");
    }
}
