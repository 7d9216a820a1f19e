using WeakToStrong.Engine.KvCache;

namespace WeakToStrong.Engine.Scheduling;

/// <summary>
/// Admission control on KV memory: a request reserves, per model, the most KV blocks it could ever hold before it
/// starts, so that running requests never run out of KV half-way. One that could never fit is refused
/// (<see cref="KvNeverFitsException"/>, with the numbers); one that fits but not now waits in a first-come-first-served
/// queue, which each caller may bound (<see cref="KvQueueFullException"/> past the bound). Every front end of one
/// search (server, chat clients) shares the search's admission (<see cref="Search.WeakToStrongSearch.Admission"/>), so they
/// reserve against the same pools.
/// </summary>
public sealed class KvAdmission
{
    private readonly object _lock = new();
    private readonly PagedKvCache[] _pools;
    private readonly string[] _names;
    private readonly long[] _reserved;
    private readonly LinkedList<Waiter> _queue = new();

    /// <param name="pools">Each local model's name (its role, which refusals name) and KV pool.</param>
    /// <param name="retryAfter">How long a caller refused for a full queue should wait before retrying; 1 s when null.</param>
    public KvAdmission(IReadOnlyList<(string Name, PagedKvCache Pool)> pools, TimeSpan? retryAfter = null)
    {
        ArgumentNullException.ThrowIfNull(pools);
        if (retryAfter is { } r) ArgumentOutOfRangeException.ThrowIfLessThan(r, TimeSpan.Zero, nameof(retryAfter));
        _names = pools.Select(p => p.Name).ToArray();
        _pools = pools.Select(p => p.Pool).ToArray();
        _reserved = new long[_pools.Length];
        RetryAfter = retryAfter ?? TimeSpan.FromSeconds(1);
    }

    /// <summary>What a <see cref="KvQueueFullException"/> tells the caller to wait before retrying.</summary>
    public TimeSpan RetryAfter { get; }

    /// <summary>Pools (local models) a reservation covers.</summary>
    public int Models => _pools.Length;

    /// <summary>The name of pool <paramref name="model"/>.</summary>
    public string Name(int model) => _names[model];

    /// <summary>Pool <paramref name="model"/>.</summary>
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

    /// <summary>Blocks reserved in pool <paramref name="model"/> by running requests.</summary>
    public long Reserved(int model)
    {
        lock (_lock) return _reserved[model];
    }

    /// <summary>
    /// Waits, however many requests are waiting before it, until <paramref name="blocks"/> (one entry per model)
    /// can be reserved; the lease gives them back.
    /// </summary>
    /// <exception cref="KvNeverFitsException">A model's whole pool holds fewer blocks than asked for.</exception>
    public Task<IDisposable> AcquireAsync(IReadOnlyList<long> blocks, CancellationToken cancellationToken) =>
        AcquireAsync(blocks, int.MaxValue, cancellationToken);

    /// <summary>
    /// Waits until <paramref name="blocks"/> (one entry per model) can be reserved, unless it would have to wait
    /// behind <paramref name="maxQueue"/> or more waiting requests; the lease gives the blocks back. Requests start in
    /// arrival order: one that would fit now still waits behind an earlier one.
    /// </summary>
    /// <param name="blocks">The most blocks the request could hold in each pool (<see cref="SearchCapacity.Plan"/>).</param>
    /// <param name="maxQueue">Waiting requests beyond which this one is refused rather than queued (0: start now or be refused).</param>
    /// <param name="cancellationToken">Leaves the queue.</param>
    /// <exception cref="KvNeverFitsException">A model's whole pool holds fewer blocks than asked for.</exception>
    /// <exception cref="KvQueueFullException">The request does not fit now and <paramref name="maxQueue"/> requests are waiting.</exception>
    public async Task<IDisposable> AcquireAsync(IReadOnlyList<long> blocks, int maxQueue, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        ArgumentOutOfRangeException.ThrowIfNegative(maxQueue);
        if (blocks.Count != _pools.Length) throw new ArgumentException($"expected {_pools.Length} block counts", nameof(blocks));
        for (int m = 0; m < _pools.Length; m++)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(blocks[m], nameof(blocks));
            if (blocks[m] > _pools[m].TotalBlocks)
                throw new KvNeverFitsException(_names[m], blocks[m], _pools[m].TotalBlocks, _pools[m].BlockSize);
        }
        Waiter waiter;
        lock (_lock)
        {
            if (_queue.Count == 0 && Fits(blocks))
            {
                Reserve(blocks);
                return new Lease(this, blocks);
            }
            if (_queue.Count >= maxQueue)
                throw new KvQueueFullException(_running, _queue.Count, maxQueue, RetryAfter);
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
