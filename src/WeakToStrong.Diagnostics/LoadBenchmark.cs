using System.Diagnostics;
using System.Globalization;
using WeakToStrong.Checkpoints;
using WeakToStrong.Engine;

namespace WeakToStrong.Diagnostics;

/// <summary>One load of a model folder: time, rate, and the process's peak resident memory against the target.</summary>
/// <param name="CheckpointBytes">Bytes of the folder's safetensors files.</param>
/// <param name="LoadSeconds">Wall time of <see cref="LanguageModel.Load"/>.</param>
/// <param name="PeakRssBytes">The process's peak resident set during the load (VmHWM, reset just before it).</param>
/// <param name="RssAfterBytes">Resident set after the load and one scoring call.</param>
/// <param name="ResidentWeightBytes">Bytes of weights the backend holds.</param>
/// <param name="KvPoolBytes">Bytes of the model's KV pool (reserved; resident only as far as it is used).</param>
/// <param name="PeakWasReset">Whether the peak could be reset before loading (else it includes start-up).</param>
/// <param name="LoadCpuSeconds">CPU time (user + system, all threads) the load took: unlike wall time, it does not
/// grow when other processes share the cores.</param>
/// <param name="ReadSeconds">Baseline measured in the same run just before: reading the same files from the page
/// cache into a 16 MiB buffer on one thread.</param>
/// <param name="FirstTouch">Baseline measured in the same run just before: writing as many fresh bytes as the
/// checkpoint holds (<see cref="Diagnostics.FirstTouch"/>) — what the destination memory alone costs.</param>
public sealed record LoadMeasurement(long CheckpointBytes, double LoadSeconds, long PeakRssBytes, long RssAfterBytes, long ResidentWeightBytes, long KvPoolBytes, bool PeakWasReset, double LoadCpuSeconds, double ReadSeconds,
    FirstTouchMeasurement FirstTouch)
{
    /// <summary>The load's time over the first-touch probe's (fresh 4 KiB pages): the bar is ≤ 1.3.</summary>
    public double LoadVsFirstTouch => LoadSeconds / FirstTouch.FreshSeconds;

    /// <summary>The bar: peak RSS ≤ 1.15 × checkpoint bytes + KV budget + 0.5 GB.</summary>
    public long TargetPeakBytes => (long)(1.15 * CheckpointBytes) + KvPoolBytes + 500_000_000L;

    public double GigabytesPerSecond => CheckpointBytes / LoadSeconds / 1e9;

    public bool MeetsMemoryTarget => PeakRssBytes <= TargetPeakBytes;

    /// <summary>The bar: at least 1 GB/s from a warm page cache.</summary>
    public bool MeetsSpeedTarget => GigabytesPerSecond >= 1.0;
}

/// <summary>
/// Measures loading a checkpoint (Linux: peak RSS from /proc/self/status, reset through /proc/self/clear_refs). For
/// the memory claim of docs/architecture.md §Loading and memory — one copy of the weights — on real sizes; see
/// benchmarks/load-memory.sh.
/// </summary>
public static class LoadBenchmark
{
    public static LoadMeasurement Run(string directory, ModelOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        ArgumentNullException.ThrowIfNull(options);
        string[] files;
        // The checks (and messages) loading and `w2s info` make, before any byte is timed: a missing folder or a bad
        // checkpoint is named, not reported as a raw IO error.
        using (var checkpoint = Checkpoint.Open(directory))
        {
            ModelWeights.Validate(checkpoint);
            files = [.. checkpoint.Files.Select(f => f.FilePath)];
        }
        long bytes = files.Sum(f => new FileInfo(f).Length);
        double read = ReadAll(files);
        var firstTouch = Diagnostics.FirstTouch.Measure(bytes);
        GC.Collect();
        bool reset = ResetPeak();
        var process = Process.GetCurrentProcess();
        var cpu = process.TotalProcessorTime;
        var clock = Stopwatch.StartNew();
        using var model = LanguageModel.Load(directory, options);
        double seconds = clock.Elapsed.TotalSeconds;
        process.Refresh();
        double cpuSeconds = (process.TotalProcessorTime - cpu).TotalSeconds;
        long peak = Status("VmHWM");
        cancellationToken.ThrowIfCancellationRequested();
        // One scoring call: the loaded weights work, and using them maps nothing of the file again.
        model.Score([0, 1, 2], [3, 4], cancellationToken);
        return new LoadMeasurement(bytes, seconds, peak, Status("VmRSS"), model.Transformer.Weights.ResidentBytes, model.Transformer.Cache.PoolBytes, reset, cpuSeconds, read, firstTouch);
    }

    /// <summary>Seconds to read the files through once (the baseline; it also warms the page cache).</summary>
    private static double ReadAll(string[] files)
    {
        var buffer = new byte[16 << 20];
        var clock = Stopwatch.StartNew();
        foreach (string f in files)
        {
            using var stream = new FileStream(f, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            while (stream.Read(buffer) > 0)
            {
            }
        }
        return clock.Elapsed.TotalSeconds;
    }

    /// <summary>Writing 5 to clear_refs resets the peak resident set (Linux ≥ 4.0).</summary>
    private static bool ResetPeak()
    {
        try
        {
            File.WriteAllText("/proc/self/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>A "Name: N kB" line of /proc/self/status in bytes.</summary>
    private static long Status(string field)
    {
        if (!OperatingSystem.IsLinux()) throw new PlatformNotSupportedException("the load benchmark reads /proc/self/status (Linux)");
        foreach (string line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return long.Parse(line[(field.Length + 1)..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
        throw new InvalidDataException($"/proc/self/status has no {field} line");
    }
}
