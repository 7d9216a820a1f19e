using WeakToStrong.Engine;

namespace WeakToStrong.Search;

/// <summary>
/// A search request the library refuses, blamed on one <see cref="SearchField"/>: a value out of range
/// (<see cref="SearchRequest.Validate"/>, <see cref="SamplingSettings.Validate"/>), a conversation a chat template
/// refuses, a prompt that does not fit a model, or a shape the KV pools cannot hold. Front ends write
/// <see cref="InvalidSettingException.Reason"/> under their own name for <see cref="Field"/>.
/// </summary>
public sealed class RequestValidationException : InvalidSettingException
{
    /// <param name="field">The field to blame; <see cref="ArgumentException.ParamName"/> is its name.</param>
    /// <param name="reason">Why, as a sentence that names the value in words, not by a front end's name for it.</param>
    /// <param name="innerException">The refusal this one explains, if any.</param>
    public RequestValidationException(SearchField field, string reason, Exception? innerException = null)
        : base(reason, Enum.IsDefined(field) ? field.ToString() : throw new ArgumentOutOfRangeException(nameof(field), field, "unknown search field"), innerException)
    {
        Field = field;
    }

    /// <summary>The request field refused.</summary>
    public SearchField Field { get; }
}
