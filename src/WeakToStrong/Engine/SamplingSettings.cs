using WeakToStrong.Search;

namespace WeakToStrong.Engine;

/// <summary>How the next token is drawn from the logits.</summary>
/// <param name="Temperature">0 means greedy (argmax).</param>
/// <param name="TopK">Keep the K most likely tokens; 0 keeps all.</param>
/// <param name="TopP">Keep the smallest most-likely set with probability ≥ P; 1 keeps all.</param>
/// <param name="Seed">Seed of the counter-based RNG (with the sequence key and the position).</param>
public sealed record SamplingSettings(float Temperature = 1f, int TopK = 0, float TopP = 1f, ulong Seed = 0)
{
    public static SamplingSettings Greedy { get; } = new(0f);

    /// <summary>
    /// Throws <see cref="RequestValidationException"/> blaming the setting that is out of range. These are a search
    /// request's sampling fields, so they are blamed by the request's <see cref="SearchField"/>s, which every front
    /// end already names (also when it samples one model without a search, as <c>w2s generate</c> does).
    /// </summary>
    public SamplingSettings Validate()
    {
        if (!(Temperature >= 0) || float.IsInfinity(Temperature)) throw new RequestValidationException(SearchField.Temperature, "temperature must be a finite number ≥ 0");
        if (TopK < 0) throw new RequestValidationException(SearchField.TopK, "top-k must be ≥ 0 (0 keeps all tokens)");
        if (!(TopP > 0 && TopP <= 1)) throw new RequestValidationException(SearchField.TopP, "top-p must be in (0, 1]");
        return this;
    }
}
