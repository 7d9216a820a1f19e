namespace WeakToStrong.Cli.Commands; internal static class BenchCommand { public static System.CommandLine.Command Create() => new("bench", "Benchmark (coming)"); }
