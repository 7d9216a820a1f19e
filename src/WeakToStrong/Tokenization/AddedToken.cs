namespace WeakToStrong.Tokenization;

/// <summary>
/// A token matched verbatim in the input before pre-tokenization (Hugging Face's "added token"): special tokens such
/// as &lt;|endoftext|&gt; and any user tokens. <paramref name="LStrip"/>/<paramref name="RStrip"/> let the match
/// swallow whitespace on that side.
/// </summary>
internal sealed record AddedToken(int Id, string Content, bool Special, bool LStrip = false, bool RStrip = false);
