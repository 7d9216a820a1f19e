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
    /// <summary>Runs the request and returns its outcome.</summary>
    Task<SearchResult> RunAsync(SearchContext context, SearchRequest request, CancellationToken cancellationToken = default);

    /// <summary>
    /// Runs the request, yielding text as it becomes final; the last update carries the result, whose text is the
    /// concatenation of all deltas and equals what <see cref="RunAsync"/> returns for the same request. Stopping
    /// the enumeration early (or cancelling, checked between steps) frees every KV block the search holds.
    /// </summary>
    IAsyncEnumerable<SearchUpdate> StreamAsync(SearchContext context, SearchRequest request, CancellationToken cancellationToken = default);
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

/// <summary>What the search methods share between streaming and running to the end.</summary>
internal static class SearchUpdates
{
    /// <summary>The result on the last update of <paramref name="updates"/>.</summary>
    public static async Task<SearchResult> LastResultAsync(IAsyncEnumerable<SearchUpdate> updates, CancellationToken cancellationToken)
    {
        await foreach (var update in updates.WithCancellation(cancellationToken).ConfigureAwait(false))
            if (update.Result is { } result) return result;
        throw new InvalidOperationException("the search ended without a result");
    }
}
