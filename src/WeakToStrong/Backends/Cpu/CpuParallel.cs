using System.Runtime.ExceptionServices;

namespace WeakToStrong.Backends.Cpu;

/// <summary>
/// A parallel-for over persistent worker threads, cheaper per call than <see cref="Parallel.For(int, int, Action{int})"/>
/// (a decode step makes about a hundred parallel calls of tens of microseconds each). Work items are handed out by
/// an atomic counter and the calling thread works too, waiting only for items that were actually started — never
/// for a worker the OS has not scheduled yet, which matters on a shared, oversubscribed machine. A call made while
/// another region is running (from a worker, or from a second caller thread) runs serially rather than waiting.
/// </summary>
internal static class CpuParallel
{
    public static int Threads { get; } = Math.Max(1, Environment.ProcessorCount);

    private sealed class Region(Action<int> body, int count)
    {
        public readonly Action<int> Body = body;
        public readonly int Count = count;
        public int Next;
        public int Done;
        public ExceptionDispatchInfo? Error;

        /// <summary>Takes items until none are left.</summary>
        public void Drain()
        {
            int i;
            while ((i = Interlocked.Increment(ref Next) - 1) < Count)
            {
                try
                {
                    Body(i);
                }
                catch (Exception e)
                {
                    Error ??= ExceptionDispatchInfo.Capture(e);
                }
                Interlocked.Increment(ref Done);
            }
        }
    }

    private sealed class Worker
    {
        public readonly SemaphoreSlim Wake = new(0);
        public int Sleeping;
    }

    private static readonly Lock Gate = new();
    private static readonly Worker[] Workers = Enumerable.Range(0, Threads - 1).Select(_ => new Worker()).ToArray();
    private static Region? _current;
    [ThreadStatic] private static bool _inside;
    [ThreadStatic] private static bool _timeWaits;
    [ThreadStatic] private static long _waitTicks, _waits;

    /// <summary>Whether this thread's waits at region ends are timed (<see cref="IBarrierClock"/>).</summary>
    public static bool TimeWaits
    {
        get => _timeWaits;
        set => _timeWaits = value;
    }

    /// <summary>Stopwatch ticks this thread has waited for other threads' items at region ends, while timed.</summary>
    public static long WaitTicks => _waitTicks;

    /// <summary>Regions this thread has waited at, while timed.</summary>
    public static long Waits => _waits;

    static CpuParallel()
    {
        for (int w = 0; w < Workers.Length; w++)
        {
            var worker = Workers[w];
            new Thread(() => Run(worker)) { IsBackground = true, Name = $"w2s-cpu-{w + 1}" }.Start();
        }
    }

    /// <summary>Runs body(i) for i in [0, count); serial when asked, when small, or when already inside a region.</summary>
    public static void For(int count, Action<int> body, bool serial = false)
    {
        if (count <= 1 || serial || Threads == 1 || _inside || !Gate.TryEnter())
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        try
        {
            var region = new Region(body, count);
            Volatile.Write(ref _current, region);
            foreach (var w in Workers)
                if (Interlocked.Exchange(ref w.Sleeping, 0) == 1) w.Wake.Release();
            _inside = true;
            region.Drain();
            _inside = false;
            long waitStart = _timeWaits ? System.Diagnostics.Stopwatch.GetTimestamp() : 0;
            var spin = new SpinWait();
            while (Volatile.Read(ref region.Done) < count) spin.SpinOnce(sleep1Threshold: -1);
            if (_timeWaits)
            {
                _waitTicks += System.Diagnostics.Stopwatch.GetTimestamp() - waitStart;
                _waits++;
            }
            Volatile.Write(ref _current, null);
            region.Error?.Throw();
        }
        finally
        {
            _inside = false;
            Gate.Exit();
        }
    }

    /// <summary>How long an idle worker spins before it blocks: a forward pass opens a region every few to a few
    /// hundred microseconds, and waking a blocked thread costs tens of microseconds on a VM.</summary>
    private static readonly long SpinTicks = System.Diagnostics.Stopwatch.Frequency / 5000; // 200 µs

    private static bool SpinForWork(Region? last)
    {
        long until = System.Diagnostics.Stopwatch.GetTimestamp() + SpinTicks;
        do
        {
            var region = Volatile.Read(ref _current);
            if (region is not null && region != last) return true;
            Thread.SpinWait(32);
        }
        while (System.Diagnostics.Stopwatch.GetTimestamp() < until);
        return false;
    }

    private static void Run(Worker worker)
    {
        _inside = true;
        Region? last = null;
        while (true)
        {
            var region = Volatile.Read(ref _current);
            if (region is not null && region != last)
            {
                last = region;
                region.Drain();
                continue;
            }
            if (SpinForWork(last)) continue;
            Volatile.Write(ref worker.Sleeping, 1);
            var again = Volatile.Read(ref _current);
            if (again is not null && again != last && Interlocked.CompareExchange(ref worker.Sleeping, 0, 1) == 1) continue;
            worker.Wake.Wait(); // released by For (or already released, if For cleared our flag first)
        }
    }
}
