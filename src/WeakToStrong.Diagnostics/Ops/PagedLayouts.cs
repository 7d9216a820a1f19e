using WeakToStrong.Backends;

namespace WeakToStrong.Diagnostics.Ops;

/// <summary>Ragged batch layouts over a paged cache with shuffled block tables, for the op checks and tests.</summary>
public static class PagedLayouts
{
    /// <summary>Every sequence fed from position 0: lengths[i] tokens each.</summary>
    public static BatchLayout Prefill(Random random, int[] lengths, int vocab, int blockSize) =>
        Build(random, lengths.Select(n => (Start: 0, Count: n)).ToArray(), vocab, blockSize);

    /// <summary>One new token per sequence after contexts[i] cached tokens.</summary>
    public static BatchLayout Decode(Random random, int[] contexts, int vocab, int blockSize) =>
        Build(random, contexts.Select(c => (Start: c, Count: 1)).ToArray(), vocab, blockSize);

    /// <summary>A prefill, a decode step and a chunk continuing a cached prefix, in one batch.</summary>
    public static BatchLayout Mixed(Random random, int blockSize) => Build(random, [(0, 9), (70, 1), (33, 12)], 50, blockSize);

    /// <summary>Sequences each fed <c>Count</c> tokens after <c>Start</c> cached ones.</summary>
    public static BatchLayout Chunks(Random random, (int Start, int Count)[] sequences, int vocab, int blockSize) => Build(random, sequences, vocab, blockSize);

    /// <summary>Blocks the layout's tables refer to (the pool size the tests allocate).</summary>
    public static int Blocks(BatchLayout layout) => layout.BlockTables.Max() + 1;

    private static BatchLayout Build(Random random, (int Start, int Count)[] sequences, int vocab, int blockSize)
    {
        int maxBlocks = sequences.Max(s => (s.Start + s.Count + blockSize - 1) / blockSize);
        int totalBlocks = sequences.Sum(s => (s.Start + s.Count + blockSize - 1) / blockSize);
        var free = Enumerable.Range(0, totalBlocks).OrderBy(_ => random.Next()).ToArray();
        int nextFree = 0;
        var tables = new int[sequences.Length * maxBlocks];
        Array.Fill(tables, -1);
        var tokens = new List<int>();
        var positions = new List<int>();
        var owners = new List<int>();
        var slots = new List<int>();
        for (int s = 0; s < sequences.Length; s++)
        {
            var (start, count) = sequences[s];
            int blocks = (start + count + blockSize - 1) / blockSize;
            for (int b = 0; b < blocks; b++) tables[s * maxBlocks + b] = free[nextFree++];
            for (int pos = start; pos < start + count; pos++)
            {
                tokens.Add(random.Next(vocab));
                positions.Add(pos);
                owners.Add(s);
                slots.Add(tables[s * maxBlocks + pos / blockSize] * blockSize + pos % blockSize);
            }
        }
        return new BatchLayout
        {
            Tokens = tokens.ToArray(),
            Positions = positions.ToArray(),
            TokenSequence = owners.ToArray(),
            SlotMapping = slots.ToArray(),
            BlockTables = tables,
            MaxBlocksPerSequence = maxBlocks,
        };
    }
}
