using System.CommandLine;
using System.Globalization;
using WeakToStrong.Backends;
using WeakToStrong.Backends.Cpu;
using WeakToStrong.Backends.Cuda;
using WeakToStrong.Cli.Json;
using WeakToStrong.Diagnostics.Ops;

namespace WeakToStrong.Cli.Commands;

/// <summary>
/// <c>w2s ops</c>: every backend op at several shapes (odd sizes, one model-sized shape per op). Test mode compares
/// each with its reference by normalised mean squared error against a per-op threshold — the device's ops against
/// the CPU backend's, or (<c>--device cpu</c>) the CPU ops against float64 evaluations of their definitions — and
/// exits 1 on any failure. Perf mode times each op and reports GB/s and GFLOP/s next to ceilings measured in the
/// same run.
/// </summary>
internal static class OpsCommand
{
    public static Command Create()
    {
        var device = Cli.Device();
        var json = Cli.Json();
        var mode = new Option<string>("--mode") { Description = "test (compare with the reference) or perf (time against the measured ceilings)", DefaultValueFactory = _ => "test" };
        var op = new Option<string>("--op") { Description = $"only this op ({string.Join(", ", OpCases.Names)})" };
        var shapes = new Option<string>("--shapes") { Description = "all (default) or small (leave out the model-sized shapes)", DefaultValueFactory = _ => "all" };
        var command = new Command("ops", "Check every backend op against its reference (test) or time it against the hardware's ceilings (perf)")
        {
            device, mode, op, shapes, json,
        };
        command.SetAction(r => Cli.Run(() =>
        {
            string m = r.GetValue(mode)!;
            if (m is not ("test" or "perf")) throw new UsageException($"--mode: '{m}' is neither test nor perf");
            string? name = r.GetValue(op);
            if (name is not null && !OpCases.Names.Contains(name)) throw new UsageException($"--op: unknown op '{name}' (known: {string.Join(", ", OpCases.Names)})");
            bool modelSized = r.GetValue(shapes) switch
            {
                "all" => true,
                "small" => false,
                var other => throw new UsageException($"--shapes: '{other}' is neither all nor small"),
            };
            string deviceName = r.GetValue(device)!;
            if (deviceName is not ("cpu" or "cuda")) throw new UsageException($"--device: unknown device '{deviceName}' (cpu, cuda)");
            var cases = OpCases.All(modelSized).Where(c => name is null || c.Op == name).ToList();
            bool asJson = r.GetValue(json);

            using var subject = BackendFactory.Create(deviceName);
            using var cpu = subject is CudaBackend ? new CpuBackend() : null;
            string described = subject is CudaBackend cuda ? cuda.Device : $"cpu, {Environment.ProcessorCount} cores, {CpuIsas.Name(((CpuBackend)subject).Isa)} path";
            return m == "test" ? Test(cases, subject, cpu, described, asJson) : Perf(cases, subject, described, asJson);
        }));
        return command;
    }

    private static int Test(List<OpCase> cases, IBackend subject, IBackend? reference, string described, bool asJson)
    {
        var results = new List<OpCheckResult>();
        if (!asJson) Console.WriteLine($"{subject.Name} ({described}) against {reference?.Name ?? "float64 definitions"}; error = Σ(a−r)²/Σr² over each output, the largest; sample: the fraction of rows whose token differs");
        string header = $"{"op",-20}{"dtype",-6}{"shape",-58}{"error",11}{"max",9}  status";
        if (!asJson)
        {
            Console.WriteLine(header);
            Console.WriteLine(new string('─', header.Length));
        }
        foreach (var c in cases)
        {
            var result = OpCheck.Compare(c, subject, reference);
            results.Add(result);
            if (asJson) continue;
            string error = double.IsNaN(result.Error) ? "—" : result.Error.ToString("0.0E+0", CultureInfo.InvariantCulture);
            Console.WriteLine($"{c.Op,-20}{c.Dtype,-6}{Clip(c.Shape, 57),-58}{error,11}{result.Threshold.ToString("0E+0", CultureInfo.InvariantCulture),9}  {result.Status}{(result.Note is null ? "" : "  " + result.Note)}");
        }
        int failed = results.Count(x => x.Failed), skipped = results.Count(x => x.Status == "skip"), passed = results.Count - failed - skipped;
        if (asJson)
        {
            var checks = results.Select(x => new OpCheckJson(x.Op, x.Dtype, x.Shape, x.ModelSized, x.Reference, double.IsFinite(x.Error) ? x.Error : null, x.Threshold, x.Status, x.Note)).ToList();
            Cli.WriteJson(new OpsJson(subject.Name, described, "test", reference?.Name ?? "float64", null, checks, null, passed, failed, skipped), CliJson.Output.OpsJson);
        }
        else
        {
            Console.WriteLine($"{passed} passed, {failed} failed, {skipped} skipped");
        }
        return failed == 0 ? 0 : 1;
    }

    private static int Perf(List<OpCase> cases, IBackend subject, string described, bool asJson)
    {
        if (!asJson) Console.Error.WriteLine("measuring the ceilings …");
        var before = Ceilings.Measure(subject);
        var timings = new List<OpTiming>();
        foreach (var c in cases)
        {
            if (!asJson) Console.Error.Write($"\r{timings.Count + 1}/{cases.Count} {c.Op,-20}");
            timings.Add(OpCheck.Time(c, subject, before));
        }
        if (!asJson) Console.Error.WriteLine("\rmeasuring the ceilings again …");
        // The best of the probes before and after: the ratios then compare with what the machine gave at its best.
        var ceilings = before.Max(Ceilings.Measure(subject));
        timings = timings.Select(t => t.Against(ceilings)).ToList();
        if (asJson)
        {
            Cli.WriteJson(new OpsJson(subject.Name, described, "perf", null, ceilings, null, timings, 0, 0, 0), CliJson.Output.OpsJson);
            return 0;
        }

        // A GPU's rates read better in TFLOP/s.
        var (scale, unit) = ceilings.ComputeGigaflops >= 1e4 ? (1e3, "TFLOP/s") : (1.0, "GFLOP/s");
        Console.WriteLine($"{subject.Name} ({described})");
        Console.WriteLine($"memory ceiling  {ceilings.MemoryGigabytesPerSecond,8:F1} GB/s      ({ceilings.Memory})");
        Console.WriteLine($"compute ceiling {ceilings.ComputeGigaflops / scale,8:F1} {unit,-9} ({ceilings.Compute})");
        Console.WriteLine("GB/s: the op's fewest bytes (inputs read once, outputs written once) per second; time: median of 5 samples, device synchronised; small shapes run from cache");
        string header = $"{"op",-20}{"dtype",-6}{"shape",-58}{"µs",10}{"GB/s",9}{"of mem",8}{unit,10}{"of peak",8}";
        Console.WriteLine(header);
        Console.WriteLine(new string('─', header.Length));
        foreach (var t in timings)
        {
            string flops = t.Gigaflops > 0 ? $"{t.Gigaflops / scale,10:F1}{t.FractionOfCompute,8:P0}" : "";
            Console.WriteLine($"{t.Op,-20}{t.Dtype,-6}{Clip(t.Shape, 57),-58}{t.Microseconds,10:F1}{t.GigabytesPerSecond,9:F1}{t.FractionOfBandwidth,8:P0}{flops}");
        }
        return 0;
    }

    private static string Clip(string s, int width) => s.Length <= width ? s : s[..(width - 1)] + "…";
}
