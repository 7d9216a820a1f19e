using System.Runtime.ExceptionServices;

namespace WeakToStrong.Backends.Cpu;

/// <summary>
/// A parallel-for over persistent worker threads, cheaper per call than <see cref="Parallel.For(int, int, Action{int})"/>
/// (a decode step makes about a hundred parallel calls of tens of microseconds each). Work items are handed out by
/// an atomic counter; the calling thread works too. A call made while another region is running (from a worker,
/// or from a second caller thread) runs serially rather than waiting.
/// </summary>
internal static class CpuParallel
{
    public static int Threads { get; } = Math.Max(1, Environment.ProcessorCount);

    private static readonly Lock Gate = new();
    private static readonly SemaphoreSlim[] Wake = Enumerable.Range(0, Threads - 1).Select(_ => new SemaphoreSlim(0)).ToArray();
    private static Action<int>? _body;
    private static int _count;
    private static int _next;
    private static int _pending;
    private static ExceptionDispatchInfo? _error;
    [ThreadStatic] private static bool _inside;

    static CpuParallel()
    {
        for (int w = 0; w < Wake.Length; w++)
        {
            int id = w;
            new Thread(() => Worker(id)) { IsBackground = true, Name = $"w2s-cpu-{id + 1}" }.Start();
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
            _body = body;
            _count = count;
            _error = null;
            Volatile.Write(ref _next, 0);
            Volatile.Write(ref _pending, Wake.Length);
            foreach (var w in Wake) w.Release();
            Drain();
            var spin = new SpinWait();
            while (Volatile.Read(ref _pending) > 0) spin.SpinOnce(sleep1Threshold: -1);
            _body = null;
            _error?.Throw();
        }
        finally
        {
            Gate.Exit();
        }
    }

    private static void Drain()
    {
        _inside = true;
        try
        {
            var body = _body!;
            int i;
            while ((i = Interlocked.Increment(ref _next) - 1) < _count)
            {
                try
                {
                    body(i);
                }
                catch (Exception e)
                {
                    _error ??= ExceptionDispatchInfo.Capture(e);
                    Volatile.Write(ref _next, _count);
                }
            }
        }
        finally
        {
            _inside = false;
        }
    }

    private static void Worker(int id)
    {
        while (true)
        {
            Wake[id].Wait();
            Drain();
            Interlocked.Decrement(ref _pending);
        }
    }
}
