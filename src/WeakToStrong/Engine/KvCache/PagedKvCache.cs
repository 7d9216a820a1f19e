using WeakToStrong.Backends;

namespace WeakToStrong.Engine.KvCache;

/// <summary>Thrown when a model's KV block pool has no free block left.</summary>
public sealed class KvCacheExhaustedException(string message) : InvalidOperationException(message);

/// <summary>
/// One model's paged KV cache: per layer a key pool and a value pool of fixed-size blocks
/// ([blocks, blockSize, kvHeads, headDim], F32), with a reference count per block. Sequences hold block tables;
/// forking copies the table and bumps the counts, so KV itself is never copied except a shared, partly filled
/// block that is about to be written (copy-on-write).
/// </summary>
public sealed class PagedKvCache : IDisposable
{
    private readonly IBackend _backend;
    private readonly int[] _refCounts;
    private readonly Stack<int> _free;

    // Sequences are forked and released on the searches' threads while an engine loop plans forwards.
    private readonly object _lock = new();

    public PagedKvCache(IBackend backend, int layers, int kvHeads, int headDim, int blocks, int blockSize = 16)
    {
        ArgumentNullException.ThrowIfNull(backend);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blocks);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        _backend = backend;
        Geometry = new KvGeometry(layers, blocks, blockSize, kvHeads, headDim);
        Keys = new Tensor[layers];
        Values = new Tensor[layers];
        for (int l = 0; l < layers; l++)
        {
            Keys[l] = backend.Allocate(DType.F32, Geometry.LayerElements);
            Values[l] = backend.Allocate(DType.F32, Geometry.LayerElements);
        }
        _refCounts = new int[blocks];
        _free = new Stack<int>(Enumerable.Range(0, blocks).Reverse());
    }

    public KvGeometry Geometry { get; }

    public int BlockSize => Geometry.BlockSize;

    /// <summary>Per-layer key pools, [blocks, blockSize, kvHeads, headDim].</summary>
    public Tensor[] Keys { get; }

    /// <summary>Per-layer value pools, [blocks, blockSize, kvHeads, headDim].</summary>
    public Tensor[] Values { get; }

    public int TotalBlocks => Geometry.Blocks;

    public int FreeBlocks
    {
        get
        {
            lock (_lock) return _free.Count;
        }
    }

    public int UsedBlocks => TotalBlocks - FreeBlocks;

    /// <summary>Bytes of the whole pool (keys and values of every layer).</summary>
    public long PoolBytes => 2L * Geometry.Layers * Geometry.LayerElements * sizeof(float);

    /// <summary>The most blocks in use at once so far.</summary>
    public int PeakUsedBlocks { get; private set; }

    /// <summary>Copy-on-write block copies performed so far.</summary>
    public long CopiedBlocks { get; private set; }

    public int RefCount(int block)
    {
        lock (_lock) return _refCounts[block];
    }

    internal int Allocate()
    {
        lock (_lock)
        {
            if (_free.Count == 0)
                throw new KvCacheExhaustedException($"KV cache exhausted: all {TotalBlocks} blocks of {BlockSize} tokens are in use; raise the KV budget (--kv-memory) or release sequences");
            int block = _free.Pop();
            _refCounts[block] = 1;
            PeakUsedBlocks = Math.Max(PeakUsedBlocks, TotalBlocks - _free.Count);
            return block;
        }
    }

    internal void Retain(int block)
    {
        lock (_lock)
        {
            if (_refCounts[block] <= 0) throw new InvalidOperationException($"block {block} is not allocated");
            _refCounts[block]++;
        }
    }

    internal void Release(int block)
    {
        lock (_lock)
        {
            if (_refCounts[block] <= 0) throw new InvalidOperationException($"block {block} released twice");
            if (--_refCounts[block] == 0) _free.Push(block);
        }
    }

    /// <summary>Returns a private copy of a shared block (the caller's reference moves to the copy).</summary>
    internal int CopyOnWrite(int block)
    {
        int copy = Allocate();
        for (int l = 0; l < Geometry.Layers; l++) _backend.CopyBlock(Keys[l], Values[l], Geometry, block, copy);
        Release(block);
        lock (_lock) CopiedBlocks++;
        return copy;
    }

    public void Dispose()
    {
        foreach (var t in Keys) t.Dispose();
        foreach (var t in Values) t.Dispose();
    }
}
