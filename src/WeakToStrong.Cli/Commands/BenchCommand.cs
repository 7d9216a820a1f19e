using System.CommandLine;
using Spectre.Console;
using WeakToStrong.Backends;
using WeakToStrong.Backends.Cpu;
using WeakToStrong.Cli.Json;
using WeakToStrong.Diagnostics;
using WeakToStrong.Engine;
using WeakToStrong.Engine.Profiling;

namespace WeakToStrong.Cli.Commands;

/// <summary>
/// <c>w2s bench</c>: prefill and decode tokens/s of a GPT-2-124M-shaped model (random weights, fp32 and bf16; f16 and int8 on request) at
/// batch 1 and 16, with achieved weight-read GB/s next to the memory bandwidth measured in the same run (the CPU's
/// read bandwidth, or a device-to-device copy on a GPU).
/// </summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var device = Cli.Device();
        var json = Cli.Json();
        var dtypes = new Option<string>("--dtypes") { Description = "weight dtypes to run, comma-separated", DefaultValueFactory = _ => "f32,bf16" };
        var batches = new Option<string>("--batches") { Description = "batch sizes, comma-separated", DefaultValueFactory = _ => "1,16" };
        var steps = new Option<int>("--steps") { Description = "timed decode steps per configuration", DefaultValueFactory = _ => 16 };
        var prompt = new Option<int>("--prompt-tokens") { Description = "prompt length for prefill", DefaultValueFactory = _ => 64 };
        var model = new Option<string>("--shape") { Description = "gpt2-124m (default) or llama3-8b", DefaultValueFactory = _ => "gpt2-124m" };
        var load = new Option<string>("--load") { Description = "instead: load this model folder once and report load time, GB/s and peak resident memory" };
        var kvMemory = new Option<string>("--kv-memory") { Description = "with --load: the KV budget, e.g. 512MiB (default: chosen from memory)" };
        var profile = new Option<bool>("--profile") { Description = "also profile a decode step and a scoring call at each batch: the share of each op (linear by role, attention, norms, activations, sampling, log-softmax, copies, barrier wait)" };
        var command = new Command("bench", "Measure prefill/decode throughput against the machine's memory bandwidth, or a model's load")
        {
            device, json, dtypes, batches, steps, prompt, model, load, kvMemory, profile,
        };
        command.SetAction(r => Cli.Run(() =>
        {
            bool asJson = r.GetValue(json);
            if (r.GetValue(load) is { } folder) return Load(folder, r.GetValue(device)!, r.GetValue(kvMemory), asJson);
            var spec = r.GetValue(model) switch
            {
                "gpt2-124m" => SyntheticModel.Gpt2Small(),
                "llama3-8b" => SyntheticModel.Llama3_8B(),
                var other => throw new UsageException($"--shape: unknown shape '{other}' (gpt2-124m, llama3-8b)"),
            };
            var batchSizes = Cli.ParseTokens(r.GetValue(batches)!, "--batches").Where(b => b > 0).ToArray();
            var types = r.GetValue(dtypes)!.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Select(t => t.ToLowerInvariant() switch
            {
                "f32" => DType.F32,
                "bf16" => DType.BF16,
                "f16" => DType.F16,
                "int8" => DType.I8,
                _ => throw new UsageException($"--dtypes: unknown dtype '{t}' (f32, bf16, f16, int8)"),
            }).ToArray();
            int decodeSteps = r.GetValue(steps), promptTokens = r.GetValue(prompt);
            if (decodeSteps <= 0 || promptTokens <= 0) throw new UsageException("--steps and --prompt-tokens must be positive");

            void Status(string s)
            {
                if (!asJson) AnsiConsole.MarkupLine($"[grey]{Markup.Escape(s)}[/]");
                else Console.Error.WriteLine(s);
            }
            var results = new List<BenchResult>();
            var profiles = new List<StepProfile>();
            using var backend = BackendFactory.Create(r.GetValue(device)!);
            int blocks = batchSizes.Max() * ((promptTokens + decodeSteps + 2) / 16 + 2);
            foreach (var dtype in types)
            {
                Status($"building {r.GetValue(model)} with random {dtype} weights");
                // int8: BF16 random weights quantized as a checkpoint's are at load.
                using var transformer = dtype == DType.I8 ? SyntheticModel.Create(spec, DType.BF16, backend, blocks, LinearWeights.Int8)
                    : SyntheticModel.Create(spec, dtype, backend, blocks);
                results.AddRange(EngineBenchmark.Run(transformer, r.GetValue(model)!, batchSizes, promptTokens, decodeSteps, new Progress<string>(Status)));
                if (r.GetValue(profile))
                    foreach (int batch in batchSizes)
                    {
                        Status($"{r.GetValue(model)} {dtype} batch {batch}: profile");
                        profiles.AddRange(StepProfiler.Run(transformer, r.GetValue(model)!, batch, promptTokens, decodeSteps));
                    }
            }

            string? cpuPath = backend is CpuBackend cpu ? CpuIsas.Name(cpu.Isa) : null;
            var decode1 = results.Where(x => x.Phase == "decode" && x.Batch == 1).ToDictionary(x => x.Dtype);
            var speedups = results.Where(x => x.Phase == "decode" && x.Batch > 1 && decode1.ContainsKey(x.Dtype))
                .Select(x => new DecodeSpeedupJson(x.Dtype, x.Batch, x.TokensPerSecond / decode1[x.Dtype].TokensPerSecond)).ToList();
            // The widest path's ceiling was already probed around every run (the best of those); only the others are probed here.
            double widest = results.Where(x => x.Dtype != DType.I8.Name()).Select(x => x.ComputeGigaflops).DefaultIfEmpty(0).Max();
            var ceilings = cpuPath is null ? null
                : CpuIsas.Supported.Select(isa => new PathCeilingJson(CpuIsas.Name(isa),
                    Math.Round(isa == CpuIsas.Widest && widest > 0 ? widest : ComputePeak.MeasureFma(isa: isa) / 1e9, 1))).ToList();
            if (asJson)
            {
                Cli.WriteJson(new BenchJson(backend.Name, Environment.ProcessorCount, results, speedups, cpuPath, cpuPath is null ? null : CpuIsas.Name(CpuIsas.Widest), ceilings,
                    profiles.Count > 0 ? profiles : null), CliJson.Output.BenchJson);
                return 0;
            }
            if (cpuPath is not null)
                Console.WriteLine($"cpu path: {cpuPath} ({(Environment.GetEnvironmentVariable(CpuIsas.Variable) is { Length: > 0 } ? $"forced by {CpuIsas.Variable}" : "the widest here")}; this CPU runs {string.Join(", ", CpuIsas.Supported.Select(CpuIsas.Name))}); FMA peak probed at {CpuIsas.Name(CpuIsas.Widest)}");
            AnsiConsole.MarkupLine($"{Markup.Escape(r.GetValue(model)!)}, random weights; {Environment.ProcessorCount} cores. GB/s: weight bytes read per second; read: the memory ceiling (cpu: read bandwidth; cuda: a device copy, bytes read + written); GFLOP/s: matrix multiplies; peak: the F32 FMA ceiling (cpu) — both ceilings measured on all cores, best of 5 before and 5 after each decode run.");
            bool peaks = results.Any(x => x.ComputeGigaflops > 0);
            // Plain fixed-width rows: they stay aligned in a log or a pipe, where a terminal table would wrap.
            string header = $"{"dtype",-6}{"phase",-8}{"batch",6}{"tok/s",9}{"GB/s",7}{"read",7}{"of read",8}{"GFLOP/s",9}" + (peaks ? $"{"peak",7}{"of peak",8}" : "");
            Console.WriteLine(header);
            Console.WriteLine(new string('─', header.Length));
            foreach (var x in results)
            {
                bool decode = x.Phase == "decode";
                string row = $"{x.Dtype,-6}{x.Phase,-8}{x.Batch,6}{x.TokensPerSecond,9:F1}" +
                    (decode ? $"{x.WeightGigabytesPerSecond,7:F1}{x.BandwidthGigabytesPerSecond,7:F1}{x.FractionOfBandwidth,8:P0}" : new string(' ', 22)) +
                    $"{x.Gigaflops,9:F1}" + (peaks ? $"{x.ComputeGigaflops,7:F0}{x.FractionOfCompute,8:P0}" : "");
                Console.WriteLine(row);
            }
            foreach (var s in speedups) AnsiConsole.MarkupLine($"{s.Dtype} decode batch {s.Batch}: [bold]{s.SpeedupVsBatch1:F1}×[/] the batch-1 tokens/s");
            if (ceilings is not null)
                Console.WriteLine("F32 FMA ceiling by path (all cores): " + string.Join(", ", ceilings.Select(c => $"{c.Path} {c.Gigaflops:F0} GFLOP/s")));
            if (results.Any(x => x.Dtype == DType.I8.Name()))
                Int8Lines(results);
            foreach (var group in profiles.GroupBy(p => p.Dtype))
                ProfileTable(group.ToList(), results);
            return 0;
        }));
        return command;
    }

    /// <summary>What the int8 rows' peak is, and their speed over BF16's in this run (same phase and batch).</summary>
    private static void Int8Lines(List<BenchResult> results)
    {
        Console.WriteLine($"I8 rows: int8 weights (LinearWeights.Int8), kernel path {Int8Peak.Path}; their peak is the int8 multiply-add ceiling of that path (GOP/s, all cores)");
        string int8 = DType.I8.Name(), bf16 = DType.BF16.Name();
        var pairs = results.Where(x => x.Dtype == int8)
            .Select(x => (x.Phase, x.Batch, Int8: x.TokensPerSecond, Bf16: results.FirstOrDefault(b => b.Dtype == bf16 && b.Phase == x.Phase && b.Batch == x.Batch)?.TokensPerSecond))
            .Where(p => p.Bf16 > 0).ToList();
        if (pairs.Count > 0)
            Console.WriteLine("I8 over BF16 tokens/s, this run: " + string.Join(", ", pairs.Select(p => $"{p.Phase} batch {p.Batch} {p.Int8 / p.Bf16:F2}×")));
    }

    /// <summary>One dtype's profiles side by side: a row per op, a column per call and batch (ms per call, share).</summary>
    private static void ProfileTable(List<StepProfile> profiles, List<BenchResult> results)
    {
        var first = profiles[0];
        Console.WriteLine();
        Console.WriteLine($"profile, {first.Model} {first.Dtype}: ms per call (share of the call); score = {StepProfiler.ScoreTokens} new tokens per sequence, log-probs gathered");
        // Forward order (the ops' enum order), the barrier and the host last.
        var names = Enum.GetValues<ForwardOp>().Where(op => op != ForwardOp.Barrier).Select(ForwardProfile.Name)
            .Append(ForwardProfile.Name(ForwardOp.Barrier)).Append(StepProfiler.Host)
            .Where(name => profiles.Any(p => p.Ops.Any(o => o.Op == name))).ToList();
        string header = $"{"op",-22}" + string.Concat(profiles.Select(p => $"{$"{p.Call} ×{p.Batch}",18}"));
        Console.WriteLine(header);
        Console.WriteLine(new string('─', header.Length));
        foreach (string name in names)
            Console.WriteLine($"{name,-22}" + string.Concat(profiles.Select(p => p.Ops.FirstOrDefault(o => o.Op == name) is { } o ? $"{$"{o.Milliseconds:F2} ({o.Share,4:P0})",18}" : $"{"",18}")));
        Console.WriteLine($"{"linear, all roles",-22}" + string.Concat(profiles.Select(p => $"{$"({p.LinearShare,4:P0})",18}")));
        Console.WriteLine($"{"call",-22}" + string.Concat(profiles.Select(p => $"{$"{p.Milliseconds:F2}",18}")));
        // Each linear's own rate against the ceilings probed around the same dtype and batch's decode run.
        BenchResult? Decode(StepProfile p) => results.FirstOrDefault(x => x.Dtype == p.Dtype && x.Phase == "decode" && x.Batch == p.Batch);
        Console.WriteLine("linear rates: GFLOP/s (of the FMA peak) | weight GB/s (of the read bandwidth), ceilings from the same batch's decode run");
        Console.WriteLine($"{"",-22}" + string.Concat(profiles.Select(p => $"{$"{p.Call} ×{p.Batch}",30}")));
        foreach (string name in names.Where(n => n.StartsWith("linear", StringComparison.Ordinal)))
            Console.WriteLine($"{name,-22}" + string.Concat(profiles.Select(p => p.Ops.FirstOrDefault(o => o.Op == name) is { } o && Decode(p) is { } d && d.ComputeGigaflops > 0
                ? $"{$"{o.Gflops:F0} ({o.Gflops / d.ComputeGigaflops:P0}) | {o.WeightGigabytesPerSecond:F1} ({o.WeightGigabytesPerSecond / d.BandwidthGigabytesPerSecond:P0})",30}" : $"{"",30}")));
    }

    /// <summary><c>w2s bench --load DIR</c>: one load, measured (see <see cref="LoadBenchmark"/>).</summary>
    private static int Load(string folder, string device, string? kvMemory, bool asJson)
    {
        var m = LoadBenchmark.Run(folder, new ModelOptions { Device = device, KvBudget = Cli.KvMemory(kvMemory) });
        if (asJson)
        {
            Cli.WriteJson(new LoadBenchJson(Path.GetFullPath(folder), device, m.CheckpointBytes, Math.Round(m.LoadSeconds, 3),
                Math.Round(m.GigabytesPerSecond, 3), Math.Round(m.LoadCpuSeconds, 3), Math.Round(m.ReadSeconds, 3),
                Math.Round(m.LoadSeconds / m.ReadSeconds, 3), m.PeakRssBytes, m.RssAfterBytes, m.ResidentWeightBytes, m.KvPoolBytes,
                m.TargetPeakBytes, m.MeetsMemoryTarget, m.MeetsSpeedTarget, m.PeakWasReset,
                Math.Round(m.FirstTouch.FreshSeconds, 3), Math.Round(m.FirstTouch.AgainSeconds, 3), Math.Round(m.FirstTouch.FreshHugeSeconds, 3), Math.Round(m.LoadVsFirstTouch, 3)),
                CliJson.Output.LoadBenchJson);
            return 0;
        }
        static string Gb(long bytes) => $"{bytes / 1e9:F2} GB";
        Console.WriteLine($"{Path.GetFullPath(folder)} on {device}: {Gb(m.CheckpointBytes)} of safetensors");
        Console.WriteLine($"load        {m.LoadSeconds:F2} s = {m.GigabytesPerSecond:F2} GB/s (target ≥ 1 GB/s: {(m.MeetsSpeedTarget ? "met" : "NOT met")}); {m.LoadCpuSeconds:F2} CPU s = {m.LoadCpuSeconds * 1e9 / m.CheckpointBytes:F2} CPU s/GB");
        Console.WriteLine($"baseline    reading the same bytes from the page cache, one thread: {m.ReadSeconds:F2} s = {m.CheckpointBytes / m.ReadSeconds / 1e9:F2} GB/s; load ÷ read = {m.LoadSeconds / m.ReadSeconds:F2}");
        var t = m.FirstTouch;
        Console.WriteLine($"first touch writing {Gb(t.Bytes)} of fresh memory, all cores: {t.FreshSeconds:F2} s = {t.FreshGigabytesPerSecond:F2} GB/s; the same memory again {t.AgainSeconds:F2} s = {t.AgainGigabytesPerSecond:F2} GB/s; fresh on 2 MiB pages {t.FreshHugeSeconds:F2} s = {t.FreshHugeGigabytesPerSecond:F2} GB/s; load ÷ first touch = {m.LoadVsFirstTouch:F2} (target ≤ 1.3)");
        Console.WriteLine($"peak RSS    {Gb(m.PeakRssBytes)}{(m.PeakWasReset ? "" : " (incl. start-up: the peak could not be reset)")}; target ≤ 1.15 × {Gb(m.CheckpointBytes)} + KV {Gb(m.KvPoolBytes)} + 0.5 GB = {Gb(m.TargetPeakBytes)}: {(m.MeetsMemoryTarget ? "met" : "NOT met")}");
        Console.WriteLine($"RSS after   {Gb(m.RssAfterBytes)} (weights held: {Gb(m.ResidentWeightBytes)})");
        return 0;
    }
}
