namespace WeakToStrong.Backends.Cpu;

/// <summary>Splits work across the machine's cores.</summary>
internal static class CpuParallel
{
    public static int Threads { get; } = Math.Max(1, Environment.ProcessorCount);

    /// <summary>Runs body(i) for i in [0, count); serial when the work is too small to share.</summary>
    public static void For(int count, Action<int> body, bool serial = false)
    {
        if (count <= 1 || serial || Threads == 1)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        Parallel.For(0, count, new ParallelOptions { MaxDegreeOfParallelism = Threads }, body);
    }
}
