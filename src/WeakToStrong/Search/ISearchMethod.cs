using WeakToStrong.Search.LargeModels;

namespace WeakToStrong.Search;

/// <summary>The models a search runs on: the large model it samples and the small pair that guides it.</summary>
/// <param name="Large">The large model (local or remote).</param>
/// <param name="Tuned">The small tuned model (e.g. DPO/SFT-aligned).</param>
/// <param name="Untuned">The small untuned model (the tuned one's base).</param>
public sealed record SearchContext(ILargeModel Large, ChatModel Tuned, ChatModel Untuned);

/// <summary>A weak-to-strong search method: one request in, the chosen response and its score out.</summary>
public interface ISearchMethod
{
    Task<SearchResult> RunAsync(SearchContext context, SearchRequest request, CancellationToken cancellationToken = default);
}

/// <summary>The method for each <see cref="SearchMethodKind"/>.</summary>
public static class SearchMethods
{
    /// <summary>Best-of-N and plain sampling are chunk-level search with (1, N, ∞) and (1, 1, ∞).</summary>
    public static ISearchMethod For(SearchMethodKind kind) => kind switch
    {
        SearchMethodKind.ChunkBeamSearch or SearchMethodKind.BestOfN or SearchMethodKind.Sample => ChunkBeamSearch.Instance,
        SearchMethodKind.EmulatedFineTuning => EmulatedFineTuning.Instance,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown search method"),
    };
}
