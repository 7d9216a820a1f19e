namespace WeakToStrong.Search;

/// <summary>A search that cannot run as asked: the models do not fit the method, or a response outgrows a model.</summary>
public sealed class SearchException : Exception
{
    public SearchException(string message) : base(message)
    {
    }

    public SearchException(string message, Exception innerException) : base(message, innerException)
    {
    }
}
