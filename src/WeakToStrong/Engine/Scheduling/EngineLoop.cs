namespace WeakToStrong.Engine.Scheduling;

/// <summary>What one batched forward call of the engine loop ran.</summary>
/// <param name="Model">The model that ran it.</param>
/// <param name="Submissions">Callers whose requests were merged into it.</param>
/// <param name="Rows">Sequences in the ragged batch.</param>
/// <param name="Tokens">Tokens fed.</param>
/// <param name="Duration">Time the forward took.</param>
public readonly record struct BatchedForward(Transformer Model, int Submissions, int Rows, int Tokens, TimeSpan Duration);

/// <summary>
/// Continuous batching (docs/architecture.md §Engine loop and admission): one thread runs every forward call of a
/// set of models that share a backend. Callers submit from any thread with <see cref="Transformer.ForwardAsync"/>;
/// each turn the loop takes whatever is pending for each model, merges it into one ragged forward, and completes the
/// callers' tasks. Requests therefore join and leave at step boundaries, and the forward (which is not re-entrant,
/// and whose backend keeps per-batch state) only ever runs on this thread.
/// </summary>
/// <remarks>
/// Tasks complete synchronously on the loop thread, so a caller's code runs on it up to its next submission: the
/// searches of one step are all queued again before the loop looks for the next step's work, which keeps batches
/// full without a gathering delay. Cancellation removes a submission that is still waiting; one already in a
/// forward completes normally and the caller sees its token at its next submission, so a sequence is never
/// released while the forward that feeds it runs.
/// The CPU backend's results are batch-invariant (each output is one FMA chain whatever the batch; the RNG is keyed
/// by sequence and position), so a request gets the same tokens alone or batched with others.
/// </remarks>
public sealed class EngineLoop : IDisposable
{
    private readonly object _lock = new();
    private readonly List<Submission> _pending = [];
    private readonly Thread _thread;
    private bool _stopping;

    public EngineLoop()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = "w2s engine loop" };
        _thread.Start();
    }

    /// <summary>Raised on the loop thread after each batched forward (for metrics).</summary>
    public event Action<BatchedForward>? ForwardCompleted;

    /// <summary>Submissions waiting for the next turn.</summary>
    public int PendingCount
    {
        get
        {
            lock (_lock) return _pending.Count;
        }
    }

    /// <summary>Whether the calling thread is the loop's.</summary>
    public bool IsLoopThread => Thread.CurrentThread == _thread;

    /// <summary>Routes every forward of <paramref name="model"/> through this loop from now on.</summary>
    public void Attach(Transformer model)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (model.Loop is { } other && other != this) throw new InvalidOperationException("the model is attached to another engine loop");
        model.Loop = this;
    }

    /// <summary>Queues one caller's requests for the model's next batched forward.</summary>
    internal Task<IReadOnlyList<ForwardResult>> SubmitAsync(Transformer model, IReadOnlyList<ForwardRequest> requests, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(requests);
        cancellationToken.ThrowIfCancellationRequested();
        if (requests.Count == 0) return Task.FromResult<IReadOnlyList<ForwardResult>>([]);
        var submission = new Submission(model, requests);
        // Registered before the submission is visible to the loop, which disposes the registration when it takes it.
        if (cancellationToken.CanBeCanceled)
            submission.Registration = cancellationToken.Register(static state =>
            {
                var (loop, s, token) = ((EngineLoop, Submission, CancellationToken))state!;
                bool removed;
                lock (loop._lock) removed = loop._pending.Remove(s);
                if (removed) s.Completion.TrySetCanceled(token);
            }, (this, submission, cancellationToken));
        lock (_lock)
        {
            if (_stopping)
            {
                submission.Registration.Dispose();
                throw new ObjectDisposedException(nameof(EngineLoop));
            }
            _pending.Add(submission);
            Monitor.Pulse(_lock);
        }
        return submission.Completion.Task;
    }

    private void Run()
    {
        var turn = new List<Submission>();
        int lastTurn = 0;
        var window = TimeSpan.Zero;
        while (true)
        {
            lock (_lock)
            {
                while (_pending.Count == 0 && !_stopping) Monitor.Wait(_lock);
                if (_pending.Count == 0) return;
                // Callers whose continuation went asynchronous (a network write, a thread-pool hop) come back a
                // moment later; wait a little for as many callers as the last turn had rather than run a thin
                // batch now and theirs alone next.
                long deadline = System.Diagnostics.Stopwatch.GetTimestamp() + (long)(window.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
                while (_pending.Count < lastTurn && !_stopping)
                {
                    long left = deadline - System.Diagnostics.Stopwatch.GetTimestamp();
                    if (left <= 0) break;
                    Monitor.Wait(_lock, TimeSpan.FromSeconds((double)left / System.Diagnostics.Stopwatch.Frequency));
                }
                turn.AddRange(_pending);
                _pending.Clear();
            }
            lastTurn = turn.Count;
            long started = System.Diagnostics.Stopwatch.GetTimestamp();
            // One forward per model, models in the order their first submission arrived.
            foreach (var group in turn.GroupBy(s => s.Model))
                RunBatch(group.Key, [.. group]);
            turn.Clear();
            // At most 5 % of a turn (and 5 ms) is spent gathering for the next one.
            var elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(started);
            window = TimeSpan.FromTicks(Math.Min(elapsed.Ticks / 20, TimeSpan.FromMilliseconds(5).Ticks));
        }
    }

    private void RunBatch(Transformer model, List<Submission> submissions)
    {
        foreach (var s in submissions) s.Registration.Dispose();
        var merged = new List<ForwardRequest>();
        foreach (var s in submissions) merged.AddRange(s.Requests);
        IReadOnlyList<ForwardResult> results;
        long started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            results = model.Forward(merged, CancellationToken.None);
        }
        catch (Exception) when (submissions.Count > 1)
        {
            // One caller's bad request must not fail the others: run them one by one and fail only the culprit.
            // Planning a forward only reserves KV slots, which the retry reuses, so the failed attempt leaves nothing behind.
            foreach (var s in submissions) RunAlone(model, s);
            return;
        }
        catch (Exception e)
        {
            submissions[0].Completion.TrySetException(e);
            return;
        }
        Report(model, submissions.Count, merged, started);
        int offset = 0;
        foreach (var s in submissions)
        {
            var own = new ForwardResult[s.Requests.Count];
            for (int i = 0; i < own.Length; i++) own[i] = results[offset + i];
            offset += own.Length;
            s.Completion.TrySetResult(own);
        }
    }

    private void RunAlone(Transformer model, Submission submission)
    {
        try
        {
            long started = System.Diagnostics.Stopwatch.GetTimestamp();
            var results = model.Forward(submission.Requests, CancellationToken.None);
            Report(model, 1, submission.Requests, started);
            submission.Completion.TrySetResult(results);
        }
        catch (Exception e)
        {
            submission.Completion.TrySetException(e);
        }
    }

    private void Report(Transformer model, int submissions, IReadOnlyList<ForwardRequest> requests, long started)
    {
        if (ForwardCompleted is not { } handler) return;
        try
        {
            handler(new BatchedForward(model, submissions, requests.Count, model.LastBatchTokens, System.Diagnostics.Stopwatch.GetElapsedTime(started)));
        }
        catch (Exception)
        {
            // Metrics must never stop the engine.
        }
    }

    /// <summary>Stops the loop once the submissions already queued have run.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_stopping) return;
            _stopping = true;
            Monitor.Pulse(_lock);
        }
        if (!IsLoopThread) _thread.Join();
    }

    private sealed class Submission(Transformer model, IReadOnlyList<ForwardRequest> requests)
    {
        public Transformer Model { get; } = model;

        public IReadOnlyList<ForwardRequest> Requests { get; } = requests;

        // Completed synchronously on the loop thread on purpose (see the class remarks).
        public TaskCompletionSource<IReadOnlyList<ForwardResult>> Completion { get; } = new();

        public CancellationTokenRegistration Registration { get; set; }
    }
}
