using System.Globalization;

namespace WeakToStrong.Engine.Scheduling;

/// <summary>
/// <see cref="KvAdmission"/> refused a request: it could never fit (<see cref="KvNeverFitsException"/>) or the
/// queue of waiting requests is full (<see cref="KvQueueFullException"/>). Nothing was reserved and no work was
/// done. Each front end maps the kinds to its own errors (the server: 400 and 429 with Retry-After).
/// </summary>
public abstract class KvAdmissionException : InvalidOperationException
{
    private protected KvAdmissionException(string message)
        : base(message)
    {
    }
}

/// <summary>
/// The request could need more KV blocks in one model's pool than the whole pool holds, so it would never start
/// however long it waited. A smaller request (fewer new tokens, fewer candidates or searches) or a larger KV
/// budget is the way out.
/// </summary>
public sealed class KvNeverFitsException : KvAdmissionException
{
    /// <param name="model">The pool's name (the model's role: large, tuned or untuned).</param>
    /// <param name="blocksNeeded">Blocks the request could hold at its peak in that pool.</param>
    /// <param name="poolBlocks">Blocks the whole pool holds.</param>
    /// <param name="blockSize">Tokens per block.</param>
    public KvNeverFitsException(string model, long blocksNeeded, long poolBlocks, int blockSize)
        : base(string.Create(CultureInfo.InvariantCulture,
            $"The request could need {blocksNeeded} KV blocks of {blockSize} tokens on {model}, more than its whole pool of {poolBlocks}: it would never start. Lower its new tokens or candidates, or give the models more KV memory."))
    {
        ArgumentNullException.ThrowIfNull(model);
        Model = model;
        BlocksNeeded = blocksNeeded;
        PoolBlocks = poolBlocks;
        BlockSize = blockSize;
    }

    /// <summary>The pool that is too small (the model's role: large, tuned or untuned).</summary>
    public string Model { get; }

    /// <summary>Blocks the request could hold at its peak in <see cref="Model"/>'s pool.</summary>
    public long BlocksNeeded { get; }

    /// <summary>Blocks the whole pool holds.</summary>
    public long PoolBlocks { get; }

    /// <summary>Tokens per block.</summary>
    public int BlockSize { get; }
}

/// <summary>
/// The request fits, but not now, and the caller's bound on waiting requests is reached. Retrying after
/// <see cref="RetryAfter"/> (when running requests may have finished) is the way out.
/// </summary>
public sealed class KvQueueFullException : KvAdmissionException
{
    /// <param name="running">Requests holding a reservation.</param>
    /// <param name="queued">Requests waiting for KV memory.</param>
    /// <param name="maxQueue">The caller's bound on waiting requests.</param>
    /// <param name="retryAfter">How long a caller should wait before retrying.</param>
    public KvQueueFullException(int running, int queued, int maxQueue, TimeSpan retryAfter)
        : base(string.Create(CultureInfo.InvariantCulture,
            $"{running} requests are running and {queued} are waiting for KV memory (queue limit {maxQueue}); retry after {retryAfter.TotalSeconds} s."))
    {
        Running = running;
        Queued = queued;
        MaxQueue = maxQueue;
        RetryAfter = retryAfter;
    }

    /// <summary>Requests holding a reservation when this one was refused.</summary>
    public int Running { get; }

    /// <summary>Requests waiting for KV memory when this one was refused.</summary>
    public int Queued { get; }

    /// <summary>The caller's bound on waiting requests.</summary>
    public int MaxQueue { get; }

    /// <summary>How long a caller should wait before retrying.</summary>
    public TimeSpan RetryAfter { get; }
}
