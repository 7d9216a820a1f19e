namespace WeakToStrong.Search;

/// <summary>
/// The <see cref="SearchRequest"/> fields the library can refuse, each named as the property it stands for. A
/// <see cref="RequestValidationException"/> carries one, and each front end names it its own way (a command-line
/// option, a JSON field, a chat option) from one table.
/// </summary>
public enum SearchField
{
    /// <summary><see cref="SearchRequest.Prompt"/>: it encodes to no token, or leaves no room in a model's context.</summary>
    Prompt,

    /// <summary><see cref="SearchRequest.History"/>: earlier turns without chat templates, or turns a template refuses.</summary>
    History,

    /// <summary><see cref="SearchRequest.Method"/>.</summary>
    Method,

    /// <summary><see cref="SearchRequest.BeamWidth"/>; also blamed for a W·K shape that is too large.</summary>
    BeamWidth,

    /// <summary><see cref="SearchRequest.Successors"/>.</summary>
    Successors,

    /// <summary><see cref="SearchRequest.ChunkLength"/>.</summary>
    ChunkLength,

    /// <summary><see cref="SearchRequest.N"/>.</summary>
    N,

    /// <summary><see cref="SearchRequest.Beta"/>.</summary>
    Beta,

    /// <summary><see cref="SearchRequest.Temperature"/> (and <see cref="Engine.SamplingSettings.Temperature"/>).</summary>
    Temperature,

    /// <summary><see cref="SearchRequest.TopK"/> (and <see cref="Engine.SamplingSettings.TopK"/>).</summary>
    TopK,

    /// <summary><see cref="SearchRequest.TopP"/> (and <see cref="Engine.SamplingSettings.TopP"/>).</summary>
    TopP,

    /// <summary><see cref="SearchRequest.MaxNewTokens"/>.</summary>
    MaxNewTokens,

    /// <summary><see cref="SearchRequest.StopStrings"/>.</summary>
    StopStrings,
}
