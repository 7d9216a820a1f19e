using System.Diagnostics;

namespace WeakToStrong.Tests.Cli;

internal sealed record CliResult(int ExitCode, string Stdout, string Stderr);

/// <summary>A run with its wall time and the child's peak resident memory.</summary>
internal sealed record MeasuredCliResult(CliResult Result, TimeSpan Wall, long PeakRssBytes);

/// <summary>
/// Runs the real w2s executable as a child process: the build next to the tests, or the executable that the
/// environment variable W2S_EXE names (CI points it at the NativeAOT binary and runs the CLI tests again).
/// </summary>
internal static class CliRunner
{
    /// <summary>How to start w2s with <paramref name="args"/>, output redirected.</summary>
    public static ProcessStartInfo StartInfo(params string[] args)
    {
        string? native = Environment.GetEnvironmentVariable("W2S_EXE");
        var start = new ProcessStartInfo(string.IsNullOrEmpty(native) ? "dotnet" : native) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (string.IsNullOrEmpty(native)) start.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "w2s.dll"));
        foreach (var a in args) start.ArgumentList.Add(a);
        start.Environment["NO_COLOR"] = "1";
        return start;
    }

    public static CliResult Run(params string[] args) => Run(StartInfo(args));

    /// <summary>GNU time (Debian package <c>time</c>; CI installs it): reports a child's peak resident set.</summary>
    private const string GnuTime = "/usr/bin/time";

    /// <summary>
    /// Runs w2s and measures its peak resident memory. With GNU time, the kernel's figure for the w2s process
    /// itself (ru_maxrss of a child that time forked: exact however briefly w2s ran). Waiting on w2s from this
    /// process cannot give that figure: a child spawned from the test host records the host's resident set as its
    /// own peak at exec. Without GNU time, /proc/PID/status VmHWM is polled while w2s runs, which a run of a few
    /// milliseconds (a NativeAOT refusal) can end before the first read. Linux only.
    /// </summary>
    public static MeasuredCliResult RunMeasured(params string[] args)
    {
        if (!File.Exists(GnuTime)) return RunPolled(args);
        var start = StartInfo(args);
        string report = Path.GetTempFileName();
        try
        {
            var timed = new ProcessStartInfo(GnuTime) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (string a in (string[])["-f", "%M", "-o", report, start.FileName, .. start.ArgumentList]) timed.ArgumentList.Add(a);
            foreach (var (name, value) in start.Environment) timed.Environment[name] = value;
            var clock = Stopwatch.StartNew();
            var result = Run(timed);
            var wall = clock.Elapsed;
            // time writes "Command exited with non-zero status N" first when w2s fails; the figure (KiB) is last.
            string kib = File.ReadAllLines(report).Last(line => line.Length > 0);
            return new MeasuredCliResult(result, wall, long.Parse(kib, System.Globalization.CultureInfo.InvariantCulture) * 1024);
        }
        finally
        {
            File.Delete(report);
        }
    }

    private static MeasuredCliResult RunPolled(string[] args)
    {
        var start = StartInfo(args);
        var clock = Stopwatch.StartNew();
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        long peak = 0;
        string status = $"/proc/{process.Id}/status";
        while (!process.HasExited && clock.Elapsed < TimeSpan.FromSeconds(120))
        {
            try
            {
                foreach (string line in File.ReadLines(status))
                    if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                        peak = Math.Max(peak, long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), System.Globalization.CultureInfo.InvariantCulture) * 1024);
            }
            catch (IOException)
            {
                break; // exited between the check and the read
            }
            Thread.Sleep(1);
        }
        if (!process.WaitForExit(120_000))
        {
            process.Kill(true);
            throw new TimeoutException($"w2s {string.Join(' ', args)} did not finish in 120 s");
        }
        var wall = clock.Elapsed;
        return new MeasuredCliResult(new CliResult(process.ExitCode, stdout.Result, stderr.Result), wall, peak);
    }

    public static CliResult Run(ProcessStartInfo start)
    {
        string[] args = [.. start.ArgumentList];
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(120_000))
        {
            process.Kill(true);
            throw new TimeoutException($"w2s {string.Join(' ', args)} did not finish in 120 s");
        }
        return new CliResult(process.ExitCode, stdout.Result, stderr.Result);
    }
}
