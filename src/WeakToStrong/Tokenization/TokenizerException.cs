namespace WeakToStrong.Tokenization;

/// <summary>
/// Thrown when a tokenizer cannot be loaded: a file is missing, unreadable, corrupt, or describes a tokenizer this
/// engine does not implement. The message names the file and the problem.
/// </summary>
public sealed class TokenizerException : Exception
{
    /// <summary>Creates the exception with a message that names the file and the problem.</summary>
    public TokenizerException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message that names the file and the problem, and its cause.</summary>
    public TokenizerException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
