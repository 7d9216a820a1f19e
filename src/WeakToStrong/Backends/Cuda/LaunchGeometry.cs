namespace WeakToStrong.Backends.Cuda;

/// <summary>
/// Host-side launch arithmetic, kept apart from the backend so that it is unit-tested. The constants mirror
/// the kernel files' #defines (named in each comment).
/// </summary>
internal static class LaunchGeometry
{
    /// <summary>attention.cu ATT_KEYS: keys per step, one per lane.</summary>
    public const int AttentionKeys = 32;

    /// <summary>attention.cu ATT_WARPS.</summary>
    public const int AttentionWarps = 4;

    /// <summary>attention.cu ATT_MAX_ROWS: query rows (token × head) per tile.</summary>
    public const int AttentionMaxRows = 16;

    /// <summary>attention.cu ATT_MAX_DIM_CHUNKS × 32.</summary>
    public const int AttentionMaxHeadDim = 256;

    /// <summary>linear.cu LINEAR_TOKENS: rows of x per block.</summary>
    public const int LinearTokens = 8;

    /// <summary>Output features per linear block (one per warp).</summary>
    public const int LinearWarps = 4;

    /// <summary>Fewest keys worth a split of their own.</summary>
    public const int MinSplitKeys = 128;

    /// <summary>Largest gridDim.y / gridDim.z.</summary>
    public const int MaxGridY = 65535;

    public static int CeilDiv(long a, int b) => (int)((a + b - 1) / b);

    public static int RoundUp(int a, int b) => CeilDiv(a, b) * b;

    /// <summary>Threads for a one-block-per-row reduction: about 4 elements per thread, whole warps, 32…1024.</summary>
    public static int ReductionBlock(int dim) => Math.Clamp(RoundUp(CeilDiv(dim, 4), 32), 32, 1024);

    /// <summary>Blocks for a grid-stride loop over <paramref name="count"/> elements.</summary>
    public static uint GridStrideBlocks(long count, int block, int maxBlocks = 4096) => (uint)Math.Clamp((Math.Max(count, 1) + block - 1) / block, 1, maxBlocks);

    /// <summary>linear.cu: x = groups of output features, y = groups of LINEAR_TOKENS rows.</summary>
    public static (Dim3 Grid, Dim3 Block) Linear(int rows, int outDim) =>
        (new Dim3((uint)CeilDiv(outDim, LinearWarps), (uint)CeilDiv(rows, LinearTokens)), new Dim3(LinearWarps * 32));

    /// <summary>Dynamic shared memory of one attention block (q tile, padded K step, V step, probabilities).</summary>
    public static int AttentionSharedBytes(int headDim) =>
        sizeof(float) * (AttentionMaxRows * headDim + AttentionKeys * (headDim + 1) + AttentionKeys * headDim + AttentionMaxRows * AttentionKeys);

    /// <summary>
    /// Splits a ragged batch into attention tiles (first token, token count, first head, head count), four ints
    /// each: runs of consecutive tokens of one sequence with ascending positions, times the query heads of one KV
    /// head, at most <see cref="AttentionMaxRows"/> (token × head) rows per tile. <paramref name="maxContext"/>
    /// gets the longest key range of any tile.
    /// </summary>
    public static int[] AttentionTiles(BatchLayout layout, int heads, int kvHeads, out int maxContext)
    {
        ArgumentNullException.ThrowIfNull(layout);
        if (kvHeads <= 0 || heads % kvHeads != 0) throw new ArgumentException($"heads ({heads}) must be a multiple of kv heads ({kvHeads})");
        int group = heads / kvHeads;
        var tiles = new List<int>();
        maxContext = 0;
        int t = 0, n = layout.TokenCount;
        while (t < n)
        {
            int end = t + 1;
            while (end < n && layout.TokenSequence[end] == layout.TokenSequence[t] && layout.Positions[end] > layout.Positions[end - 1]) end++;
            maxContext = Math.Max(maxContext, layout.Positions[end - 1] + 1);
            for (int kvh = 0; kvh < kvHeads; kvh++)
            {
                if (group >= AttentionMaxRows)
                {
                    for (int token = t; token < end; token++)
                        for (int h = 0; h < group; h += AttentionMaxRows)
                            tiles.AddRange([token, 1, kvh * group + h, Math.Min(AttentionMaxRows, group - h)]);
                }
                else
                {
                    int perTile = AttentionMaxRows / group;
                    for (int token = t; token < end; token += perTile)
                        tiles.AddRange([token, Math.Min(perTile, end - token), kvh * group, group]);
                }
            }
            t = end;
        }
        return tiles.ToArray();
    }

    /// <summary>
    /// Split-K for attention: one split when the tiles alone fill the device (or the context is short),
    /// otherwise enough splits of whole key steps to give about two blocks per multiprocessor.
    /// </summary>
    public static (int Splits, int SplitLength) AttentionSplits(int tiles, int maxContext, int multiprocessors)
    {
        int whole = RoundUp(Math.Max(maxContext, 1), AttentionKeys);
        if (tiles >= multiprocessors || maxContext <= 2 * MinSplitKeys) return (1, whole);
        int splits = Math.Min(CeilDiv(2 * multiprocessors, tiles), CeilDiv(maxContext, MinSplitKeys));
        splits = Math.Clamp(splits, 1, 64);
        int length = RoundUp(CeilDiv(maxContext, splits), AttentionKeys);
        return (CeilDiv(maxContext, length), length);
    }

    /// <summary>Batch sizes whose decode steps are captured as CUDA graphs; a batch runs in the smallest bucket that holds it.</summary>
    public static IReadOnlyList<int> GraphBuckets { get; } = [1, 2, 4, 8, 16, 32, 64, 128];

    /// <summary>The graph bucket for a decode batch of <paramref name="sequences"/>, or 0 when it is larger than every bucket.</summary>
    public static int GraphBucket(int sequences)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(sequences);
        foreach (int b in GraphBuckets)
            if (sequences <= b) return b;
        return 0;
    }
}
