namespace WeakToStrong.Engine.KvCache;

/// <summary>
/// A token sequence and its block table in one model's <see cref="PagedKvCache"/>. The first
/// <see cref="CachedLength"/> tokens have their keys and values in the cache; the rest are waiting to be fed.
/// Dispose (or <see cref="Release"/>) returns the blocks to the pool.
/// </summary>
public sealed class Sequence : IDisposable
{
    private readonly List<int> _tokens;
    private readonly List<int> _blocks;

    internal Sequence(PagedKvCache cache, IEnumerable<int> tokens, ulong key)
    {
        Cache = cache;
        _tokens = [.. tokens];
        _blocks = [];
        Key = key;
    }

    private Sequence(Sequence parent, ulong key)
    {
        Cache = parent.Cache;
        _tokens = [.. parent._tokens];
        _blocks = [.. parent._blocks];
        foreach (int b in _blocks) Cache.Retain(b);
        CachedLength = parent.CachedLength;
        Key = key;
    }

    public PagedKvCache Cache { get; }

    /// <summary>Identifies the sequence to the counter-based sampling RNG.</summary>
    public ulong Key { get; set; }

    public IReadOnlyList<int> Tokens => _tokens;

    public int Length => _tokens.Count;

    /// <summary>Tokens whose keys and values are in the cache.</summary>
    public int CachedLength { get; private set; }

    public IReadOnlyList<int> BlockTable => _blocks;

    public bool IsReleased { get; private set; }

    public void Append(int token)
    {
        ObjectDisposedException.ThrowIf(IsReleased, this);
        _tokens.Add(token);
    }

    public void Append(IEnumerable<int> tokens)
    {
        ObjectDisposedException.ThrowIf(IsReleased, this);
        _tokens.AddRange(tokens);
    }

    /// <summary>A new sequence with the same tokens sharing this one's KV blocks (no KV is copied).</summary>
    public Sequence Fork(ulong? key = null)
    {
        ObjectDisposedException.ThrowIf(IsReleased, this);
        return new Sequence(this, key ?? Key);
    }

    /// <summary>Keeps the first <paramref name="length"/> tokens; blocks past the cached part return to the pool.</summary>
    public void Truncate(int length)
    {
        ObjectDisposedException.ThrowIf(IsReleased, this);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(length, _tokens.Count);
        _tokens.RemoveRange(length, _tokens.Count - length);
        CachedLength = Math.Min(CachedLength, length);
        int keep = (CachedLength + Cache.BlockSize - 1) / Cache.BlockSize;
        for (int i = keep; i < _blocks.Count; i++) Cache.Release(_blocks[i]);
        _blocks.RemoveRange(keep, _blocks.Count - keep);
    }

    /// <summary>The KV slot for <paramref name="position"/>, allocating a block or copying a shared one first.</summary>
    internal int WritableSlot(int position)
    {
        int index = position / Cache.BlockSize;
        if (index == _blocks.Count) _blocks.Add(Cache.Allocate());
        else if (index > _blocks.Count) throw new InvalidOperationException($"position {position} skips past the block table");
        else if (Cache.RefCount(_blocks[index]) > 1) _blocks[index] = Cache.CopyOnWrite(_blocks[index]);
        return _blocks[index] * Cache.BlockSize + position % Cache.BlockSize;
    }

    internal void MarkCached(int length) => CachedLength = length;

    /// <summary>
    /// Takes <paramref name="other"/>'s KV blocks in place of this sequence's own: for a sequence whose tokens equal
    /// <paramref name="other"/>'s, so that the keys and values computed for one serve both (no KV is copied).
    /// </summary>
    public void ShareCacheOf(Sequence other)
    {
        ArgumentNullException.ThrowIfNull(other);
        ObjectDisposedException.ThrowIf(IsReleased, this);
        ObjectDisposedException.ThrowIf(other.IsReleased, other);
        if (other.Cache != Cache) throw new ArgumentException("the sequence belongs to another cache", nameof(other));
        if (!other._tokens.SequenceEqual(_tokens)) throw new ArgumentException("the sequences' tokens differ, so their KV would too", nameof(other));
        foreach (int b in other._blocks) Cache.Retain(b);
        foreach (int b in _blocks) Cache.Release(b);
        _blocks.Clear();
        _blocks.AddRange(other._blocks);
        CachedLength = other.CachedLength;
    }

    public void Release()
    {
        if (IsReleased) return;
        IsReleased = true;
        foreach (int b in _blocks) Cache.Release(b);
        _blocks.Clear();
    }

    public void Dispose() => Release();
}
