using WeakToStrong.Checkpoints;

namespace WeakToStrong.Engine.KvCache;

/// <summary>Where a <see cref="KvBudget"/> came from.</summary>
public enum KvBudgetSource
{
    /// <summary>Chosen from the machine's memory (<see cref="KvBudget.Default"/>).</summary>
    Default,

    /// <summary>Given by the caller (e.g. <c>--kv-memory</c>).</summary>
    Explicit,
}

/// <summary>
/// The bytes of KV cache that all the models of one process (or one search) may hold together, and how they turn
/// into blocks. The budget is split so that every model gets the same number of blocks (each model's share is in
/// proportion to its KV bytes per token): a candidate of a search holds a sequence of about the same length in
/// each model, so equal block counts run out together.
/// </summary>
public sealed record KvBudget
{
    /// <summary>The default budget is at most this fraction of the memory the process may use (1/8).</summary>
    public const int DefaultMemoryDivisor = 8;

    /// <summary>The default budget never exceeds this many full contexts per model: more is never needed by one request.</summary>
    public const int DefaultContextsPerModel = 8;

    private KvBudget(long bytes, KvBudgetSource source)
    {
        Bytes = bytes;
        Source = source;
    }

    /// <summary>KV bytes for all models together.</summary>
    public long Bytes { get; }

    public KvBudgetSource Source { get; }

    /// <summary>A budget given by the caller; throws <see cref="ArgumentOutOfRangeException"/> when not positive.</summary>
    public static KvBudget FromBytes(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        return new KvBudget(bytes, KvBudgetSource.Explicit);
    }

    /// <summary>
    /// The budget chosen from memory: 1/<see cref="DefaultMemoryDivisor"/> of the memory this process may use
    /// (<paramref name="availableMemoryBytes"/>, by default what the GC reports: physical memory or the container's
    /// limit), but never more than <see cref="DefaultContextsPerModel"/> full contexts of every model.
    /// </summary>
    public static KvBudget Default(IReadOnlyCollection<ModelSpec> specs, long? availableMemoryBytes = null)
    {
        ArgumentNullException.ThrowIfNull(specs);
        if (specs.Count == 0) throw new ArgumentException("no models to budget for", nameof(specs));
        long memory = availableMemoryBytes ?? GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(memory, nameof(availableMemoryBytes));
        long contexts = specs.Sum(s => (long)DefaultContextsPerModel * s.MaxPositions * s.KvBytesPerToken);
        return new KvBudget(Math.Max(1, Math.Min(memory / DefaultMemoryDivisor, contexts)), KvBudgetSource.Default);
    }

    /// <summary>Bytes of one block of <paramref name="blockSize"/> tokens of one model (keys and values, every layer, F32).</summary>
    public static long BlockBytes(ModelSpec spec, int blockSize)
    {
        ArgumentNullException.ThrowIfNull(spec);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(blockSize);
        return spec.KvBytesPerToken * blockSize;
    }

    /// <summary>
    /// Blocks each model's pool gets: the budget divided by one block of every model. Throws
    /// <see cref="InvalidSettingException"/> (blaming <see cref="Bytes"/>, naming both sizes) when that is not even one block.
    /// </summary>
    public int BlocksPerModel(IReadOnlyCollection<ModelSpec> specs, int blockSize = 16)
    {
        ArgumentNullException.ThrowIfNull(specs);
        if (specs.Count == 0) throw new ArgumentException("no models to budget for", nameof(specs));
        long perBlock = specs.Sum(s => BlockBytes(s, blockSize));
        long blocks = Bytes / perBlock;
        if (blocks < 1)
            throw new InvalidSettingException(
                $"the KV budget of {new ByteSize(Bytes)} is less than one block of {blockSize} tokens in each of {specs.Count} model(s) ({new ByteSize(perBlock)})",
                nameof(Bytes));
        return (int)Math.Min(blocks, int.MaxValue);
    }
}
