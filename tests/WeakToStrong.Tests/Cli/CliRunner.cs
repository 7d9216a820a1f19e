using System.Diagnostics;

namespace WeakToStrong.Tests.Cli;

internal sealed record CliResult(int ExitCode, string Stdout, string Stderr);

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
