using BenchmarkDotNet.Running;

// dotnet run -c Release --project benchmarks/WeakToStrong.Benchmarks -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
