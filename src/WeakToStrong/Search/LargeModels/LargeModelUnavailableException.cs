namespace WeakToStrong.Search.LargeModels;

/// <summary>Why a remote large model could not be used.</summary>
public enum LargeModelFailure
{
    /// <summary>Every attempt ran past its timeout (a hung or too slow upstream).</summary>
    Timeout,

    /// <summary>The upstream answered with an error, broke the connection or sent a reply that cannot be read.</summary>
    Failed,

    /// <summary>Recent attempts failed so often that the circuit breaker refuses new ones for a while, without trying.</summary>
    CircuitOpen,
}

/// <summary>
/// A remote large model failed for good: retries are spent, or the circuit breaker is open. It is the upstream's
/// failure, not the request's: a server answers 502 (504 for <see cref="LargeModelFailure.Timeout"/>).
/// </summary>
public sealed class LargeModelUnavailableException : Exception
{
    /// <param name="kind">What went wrong.</param>
    /// <param name="model">The upstream, as <see cref="ILargeModel.Name"/> names it.</param>
    /// <param name="attempts">HTTP attempts made for the call (0 when the circuit was open).</param>
    /// <param name="message">What happened, naming the upstream.</param>
    /// <param name="innerException">The last attempt's failure, when it was an exception.</param>
    public LargeModelUnavailableException(LargeModelFailure kind, string model, int attempts, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        ArgumentNullException.ThrowIfNull(model);
        Kind = kind;
        Model = model;
        Attempts = attempts;
    }

    public LargeModelFailure Kind { get; }

    /// <summary>The upstream, e.g. <c>gpt-3.5-turbo-instruct at https://api.openai.com/v1</c>.</summary>
    public string Model { get; }

    public int Attempts { get; }
}
