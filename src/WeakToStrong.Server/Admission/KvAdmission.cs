using WeakToStrong.Engine.KvCache;
using WeakToStrong.Server.Protocol;

namespace WeakToStrong.Server.Admission;

/// <summary>
/// Admission control on KV memory: a request reserves, per model, the most KV blocks it could ever hold before it
/// starts, so that running requests never run out of KV half-way. One that could never fit is refused (400, with
/// the numbers); one that fits but not now waits in a bounded first-come-first-served queue; a full queue is a
/// 429 with Retry-After.
/// </summary>
public sealed class KvAdmission
{
    private readonly object _lock = new();
    private readonly PagedKvCache[] _pools;
    private readonly string[] _names;
    private readonly long[] _reserved;
    private readonly LinkedList<Waiter> _queue = new();

    /// <param name="pools">Each local model's name and KV pool.</param>
    /// <param name="maxQueue">Requests allowed to wait; one more is a 429.</param>
    /// <param name="retryAfterSeconds">The Retry-After a 429 carries.</param>
    public KvAdmission(IReadOnlyList<(string Name, PagedKvCache Pool)> pools, int maxQueue, int retryAfterSeconds = 1)
    {
        ArgumentNullException.ThrowIfNull(pools);
        ArgumentOutOfRangeException.ThrowIfNegative(maxQueue);
        _names = pools.Select(p => p.Name).ToArray();
        _pools = pools.Select(p => p.Pool).ToArray();
        _reserved = new long[_pools.Length];
        MaxQueue = maxQueue;
        RetryAfterSeconds = retryAfterSeconds;
    }

    public int MaxQueue { get; }

    public int RetryAfterSeconds { get; }

    public int Models => _pools.Length;

    public string Name(int model) => _names[model];

    public PagedKvCache Pool(int model) => _pools[model];

    private int _running;

    /// <summary>Requests holding a reservation.</summary>
    public int Running
    {
        get
        {
            lock (_lock) return _running;
        }
    }

    /// <summary>Requests waiting for KV.</summary>
    public int Queued
    {
        get
        {
            lock (_lock) return _queue.Count;
        }
    }

    public long Reserved(int model)
    {
        lock (_lock) return _reserved[model];
    }

    /// <summary>Waits until <paramref name="blocks"/> (one entry per model) can be reserved; the lease gives them back.</summary>
    public async Task<IDisposable> AcquireAsync(IReadOnlyList<long> blocks, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        if (blocks.Count != _pools.Length) throw new ArgumentException($"expected {_pools.Length} block counts", nameof(blocks));
        for (int m = 0; m < _pools.Length; m++)
            if (blocks[m] > _pools[m].TotalBlocks)
                throw ApiException.BadRequest(
                    $"This request could need {blocks[m]} KV blocks of {_pools[m].BlockSize} tokens on {_names[m]}, more than its whole pool of {_pools[m].TotalBlocks}; " +
                    "lower max_tokens, n, best_of or the search's candidates (beam_width × successors, n), or start the server with more --kv-memory.",
                    "max_tokens", "kv_budget_exceeded");
        Waiter waiter;
        lock (_lock)
        {
            if (_queue.Count == 0 && Fits(blocks))
            {
                Reserve(blocks);
                return new Lease(this, blocks);
            }
            if (_queue.Count >= MaxQueue)
                throw new ApiException(429, $"The server is busy: {_running} requests are running and {_queue.Count} are waiting for KV memory (queue limit {MaxQueue}). Retry after {RetryAfterSeconds} s.",
                    null, "queue_full", "rate_limit_error") { RetryAfterSeconds = RetryAfterSeconds };
            waiter = new Waiter(blocks);
            waiter.Node = _queue.AddLast(waiter);
        }
        using (cancellationToken.Register(() =>
        {
            bool removed = false;
            lock (_lock)
            {
                if (waiter.Node!.List is not null)
                {
                    _queue.Remove(waiter.Node);
                    removed = true;
                }
            }
            if (removed)
            {
                waiter.Completion.TrySetCanceled(cancellationToken);
                Admit(); // the head may have been blocking smaller requests behind it
            }
        }))
        {
            return await waiter.Completion.Task.ConfigureAwait(false);
        }
    }

    private bool Fits(IReadOnlyList<long> blocks)
    {
        for (int m = 0; m < _pools.Length; m++)
            if (_reserved[m] + blocks[m] > _pools[m].TotalBlocks) return false;
        return true;
    }

    private void Reserve(IReadOnlyList<long> blocks)
    {
        for (int m = 0; m < _pools.Length; m++) _reserved[m] += blocks[m];
        _running++;
    }

    private void Release(IReadOnlyList<long> blocks)
    {
        lock (_lock)
        {
            for (int m = 0; m < _pools.Length; m++) _reserved[m] -= blocks[m];
            _running--;
        }
        Admit();
    }

    /// <summary>Starts waiting requests in arrival order while the first one fits.</summary>
    private void Admit()
    {
        var admitted = new List<Waiter>();
        lock (_lock)
        {
            while (_queue.First is { } head && Fits(head.Value.Blocks))
            {
                _queue.RemoveFirst();
                Reserve(head.Value.Blocks);
                admitted.Add(head.Value);
            }
        }
        // Outside the lock: the continuation of an admitted request runs its search.
        foreach (var w in admitted)
            if (!w.Completion.TrySetResult(new Lease(this, w.Blocks))) Release(w.Blocks);
    }

    private sealed class Waiter(IReadOnlyList<long> blocks)
    {
        public IReadOnlyList<long> Blocks { get; } = blocks;

        public LinkedListNode<Waiter>? Node { get; set; }

        public TaskCompletionSource<IDisposable> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private sealed class Lease(KvAdmission owner, IReadOnlyList<long> blocks) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) owner.Release(blocks);
        }
    }
}
