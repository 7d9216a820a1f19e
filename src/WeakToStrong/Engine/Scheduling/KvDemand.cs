namespace WeakToStrong.Engine.Scheduling;

/// <summary>
/// How many KV blocks a request can hold at its peak in one model's pool, computed before it runs (for up-front
/// validation and admission control). Forked candidates share blocks, so this counts the search tree, not
/// W·K full copies.
/// </summary>
public static class KvDemand
{
    /// <summary>Blocks for one sequence of <paramref name="tokens"/> cached tokens.</summary>
    public static long SequenceBlocks(long tokens, int blockSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(tokens);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        return (tokens + blockSize - 1) / blockSize;
    }

    /// <summary>
    /// Peak blocks of a chunk-level search tree in one model: a root holding the prompt, forked into W·K
    /// candidates that each write up to L tokens per chunk; after each chunk at most W survive and each forks into
    /// K. Best-of-N is (1, N, ∞), plain sampling and EFT (1, 1, ∞).
    /// </summary>
    /// <remarks>
    /// An upper bound that is tight to a block or two per node. At the end of chunk c the pool holds the root's
    /// prompt blocks; for every earlier chunk j at most W surviving ancestors, each
    /// owning the blocks from the one holding its fork point (a shared, partly filled block is copied on write) to
    /// its end; and W·K live candidates with their own segments. The result is the largest such total over c (a short last
    /// chunk can hold less than the one before). A candidate writes positions
    /// [P − 1 + j·L, P + min((j+1)·L, M) + extra) in chunk j.
    /// With many short chunks that tree count grows with every chunk's copied fork blocks, past what can ever be
    /// live: at most W·K candidate sequences and the root exist at once, none holding more than P + M + extra
    /// tokens, and blocks they share count once — so the result is also capped at (W·K + 1) full sequences.
    /// </remarks>
    /// <param name="promptTokens">P: the prompt in this model's tokens (template and BOS included).</param>
    /// <param name="maxNewTokens">M: the longest response, in this model's tokens.</param>
    /// <param name="beamWidth">W: states kept per chunk.</param>
    /// <param name="successors">K: candidates forked from each kept state.</param>
    /// <param name="chunkLength">L: tokens per chunk; null is ∞ (one chunk).</param>
    /// <param name="blockSize">Tokens per KV block.</param>
    /// <param name="extraTokens">Tokens a sequence may hold past P + M (a scorer's end token, a re-tokenised tail).</param>
    /// <returns>The blocks, saturated at <see cref="long.MaxValue"/> for absurd shapes (never overflows).</returns>
    public static long TreeSearchBlocks(int promptTokens, int maxNewTokens, int beamWidth, int successors, int? chunkLength, int blockSize, int extraTokens = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(promptTokens);
        ArgumentOutOfRangeException.ThrowIfNegative(maxNewTokens);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(beamWidth);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(successors);
        if (chunkLength is < 1) throw new ArgumentOutOfRangeException(nameof(chunkLength), chunkLength, "the chunk length must be ≥ 1 (or null for ∞)");
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        ArgumentOutOfRangeException.ThrowIfNegative(extraTokens);

        long p = promptTokens, m = maxNewTokens, b = blockSize;
        long l = chunkLength is { } c ? c : Math.Max(1, m);
        long chunks = Math.Max(1, (m + l - 1) / l);
        Int128 ancestors = SequenceBlocks(p, blockSize), peak = 0;
        for (long j = 0; j < chunks; j++)
        {
            long start = Math.Max(0, p - 1 + Math.Min(j * l, m));
            long end = p + Math.Min((j + 1) * l, m) + extraTokens;
            long own = SequenceBlocks(end, blockSize) - start / b;
            Int128 live = ancestors + (Int128)beamWidth * successors * own;
            if (live > peak) peak = live;
            if (peak > long.MaxValue) return long.MaxValue;
            ancestors += (Int128)beamWidth * own;
        }
        Int128 aliveAtOnce = ((Int128)beamWidth * successors + 1) * SequenceBlocks(p + m + extraTokens, blockSize);
        return (long)Int128.Min(peak, aliveAtOnce);
    }

    /// <summary>
    /// Peak blocks when each of <paramref name="candidates"/> sequences is scored from scratch, holding prompt and
    /// response with nothing shared (the no-cache scoring mode).
    /// </summary>
    public static long IndependentBlocks(int promptTokens, int maxNewTokens, int candidates, int blockSize, int extraTokens = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(candidates);
        Int128 total = (Int128)candidates * SequenceBlocks((long)promptTokens + maxNewTokens + extraTokens, blockSize);
        return total > long.MaxValue ? long.MaxValue : (long)total;
    }
}
