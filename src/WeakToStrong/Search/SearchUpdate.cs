namespace WeakToStrong.Search;

/// <summary>
/// One step of a streamed search (<see cref="WeakToStrongSearch.StreamAsync"/>). The deltas of all updates,
/// concatenated, are exactly the final <see cref="SearchResult.Text"/>; a delta is never taken back.
/// </summary>
/// <param name="TextDelta">
/// Response text that has just become final: for chunk-level search the growth of the longest common prefix of
/// every live candidate's text (every later candidate descends from them), for EFT and single-candidate sampling
/// the text of each token as it is drawn. A delta never ends inside a character: bytes of an incomplete UTF-8
/// sequence (U+FFFD while undecoded) and a lone high surrogate are held back until complete.
/// </param>
/// <param name="Result">The search's outcome, set on the last update only (which also carries the rest of the text).</param>
public sealed record SearchUpdate(string TextDelta, SearchResult? Result = null);
