namespace WeakToStrong.Engine;

/// <summary>
/// A value the caller chose (a request field, a KV budget) that the library refuses. <see cref="Reason"/> is the
/// sentence alone, without the "(Parameter '…')" that <see cref="ArgumentException.Message"/> appends, so that a
/// front end can write it under its own name for the value (a command-line option, a JSON field).
/// </summary>
public class InvalidSettingException : ArgumentException
{
    /// <param name="reason">Why the value is refused.</param>
    /// <param name="paramName">The property or parameter that holds the value.</param>
    /// <param name="innerException">The refusal this one explains, if any.</param>
    public InvalidSettingException(string reason, string paramName, Exception? innerException = null)
        : base(reason, paramName, innerException)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(reason);
        ArgumentException.ThrowIfNullOrWhiteSpace(paramName);
        Reason = reason;
    }

    /// <summary>Why the value is refused, without the parameter's name.</summary>
    public string Reason { get; }
}
