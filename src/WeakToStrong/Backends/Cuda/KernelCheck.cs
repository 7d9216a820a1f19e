using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using WeakToStrong.Backends.Cuda.Interop;
using WeakToStrong.Backends.Cuda.Kernels;

namespace WeakToStrong.Backends.Cuda;

/// <summary>ptxas' resource report for one kernel.</summary>
/// <param name="Kernel">The extern "C" name.</param>
/// <param name="Module">The kernel file.</param>
/// <param name="Registers">Registers per thread.</param>
/// <param name="SharedBytes">Static shared memory per block (dynamic shared memory is sized at launch).</param>
/// <param name="StackBytes">Stack frame per thread.</param>
/// <param name="SpillStoreBytes">Bytes spilled to local memory.</param>
/// <param name="SpillLoadBytes">Bytes reloaded from local memory.</param>
public sealed record KernelResources(string Kernel, string Module, int Registers, int SharedBytes, int StackBytes, int SpillStoreBytes, int SpillLoadBytes);

/// <summary>
/// Compiles every kernel file with NVRTC for the given architectures — no GPU needed — and reports registers,
/// shared memory and spills per kernel from ptxas' verbose log (NVRTC runs ptxas itself when the target is a real
/// <c>sm_XX</c>, so <c>--ptxas-options=-v</c> works from NVRTC 11.1 on). Fails on a compile error, on a spill, and
/// on a kernel file whose kernels differ from the registry. Behind <c>w2s kernels</c>.
/// </summary>
public static partial class KernelCheck
{
    /// <summary>The architectures checked when none are named: Ampere and Hopper.</summary>
    public static IReadOnlyList<string> DefaultArchitectures { get; } = ["sm_80", "sm_90"];

    /// <summary>Runs the check; returns 0 when every kernel compiles without spills, 1 otherwise, 2 when NVRTC is missing or an argument is wrong.</summary>
    public static int Run(string[] arches, bool json, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(arches);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        var targets = arches.Length == 0 ? DefaultArchitectures : arches;
        foreach (string arch in targets)
        {
            if (!KernelCompiler.IsArchitecture(arch))
            {
                stderr.WriteLine($"error: '{arch}' is not an architecture of the form sm_XX (e.g. sm_80, sm_90)");
                return 2;
            }
        }
        (int Major, int Minor) version;
        try
        {
            version = Nvrtc.Version();
        }
        catch (CudaUnavailableException e)
        {
            stderr.WriteLine("error: " + e.Message);
            return 2;
        }

        KernelSources sources;
        try
        {
            sources = KernelSources.Load();
        }
        catch (IOException e)
        {
            stderr.WriteLine("error: " + e.Message);
            return 2;
        }

        var results = new List<(string Arch, List<KernelResources> Kernels)>();
        var errors = new List<string>();
        foreach (string arch in targets)
        {
            var compiler = new KernelCompiler(sources, arch);
            var kernels = new List<KernelResources>();
            foreach (var module in KernelCatalog.Modules)
            {
                try
                {
                    var output = compiler.Compile(module, verbose: true);
                    var found = ParsePtxasLog(output.Log, module.File);
                    kernels.AddRange(found.Where(k => module.Kernels.Contains(k.Kernel)));
                    foreach (string missing in module.Kernels.Except(found.Select(k => k.Kernel)))
                        errors.Add($"{arch} {module.File}: the registry lists {missing}, which the file does not define");
                    foreach (string extra in found.Select(k => k.Kernel).Except(module.Kernels))
                        errors.Add($"{arch} {module.File}: {extra} is defined but not in the registry (Backends/Cuda/Kernels/KernelCatalog.cs)");
                }
                catch (NvrtcException e)
                {
                    errors.Add($"{arch} {module.File}: {e.Message}");
                }
            }
            foreach (var k in kernels.Where(k => k.SpillStoreBytes > 0 || k.SpillLoadBytes > 0))
                errors.Add($"{arch} {k.Kernel}: spills {k.SpillStoreBytes} bytes (stores), {k.SpillLoadBytes} bytes (loads)");
            results.Add((arch, kernels));
        }

        string nvrtc = $"{version.Major}.{version.Minor}";
        if (json) WriteJson(stdout, nvrtc, sources.Origin, results, errors);
        else WriteText(stdout, nvrtc, sources.Origin, results);
        foreach (string e in errors) stderr.WriteLine("error: " + e);
        return errors.Count == 0 ? 0 : 1;
    }

    [GeneratedRegex(@"Compiling entry function '([^']+)' for '([^']+)'")]
    private static partial Regex EntryLine();

    [GeneratedRegex(@"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")]
    private static partial Regex StackLine();

    [GeneratedRegex(@"Used (\d+) registers(?:, (\d+) bytes smem)?")]
    private static partial Regex UsedLine();

    /// <summary>Reads ptxas' -v report: per entry function, its stack/spill line and its "Used N registers" line.</summary>
    public static IReadOnlyList<KernelResources> ParsePtxasLog(string log, string module)
    {
        ArgumentNullException.ThrowIfNull(log);
        var result = new List<KernelResources>();
        string? current = null;
        int stack = 0, spillStores = 0, spillLoads = 0;
        foreach (string line in log.Split('\n'))
        {
            var entry = EntryLine().Match(line);
            if (entry.Success)
            {
                current = entry.Groups[1].Value;
                stack = spillStores = spillLoads = 0;
                continue;
            }
            if (current is null) continue;
            var s = StackLine().Match(line);
            if (s.Success)
            {
                stack = Int(s.Groups[1]);
                spillStores = Int(s.Groups[2]);
                spillLoads = Int(s.Groups[3]);
                continue;
            }
            var used = UsedLine().Match(line);
            if (used.Success)
            {
                int shared = used.Groups[2].Success ? Int(used.Groups[2]) : 0;
                result.Add(new KernelResources(current, module, Int(used.Groups[1]), shared, stack, spillStores, spillLoads));
                current = null;
            }
        }
        return result;
    }

    private static int Int(Group g) => int.Parse(g.Value, CultureInfo.InvariantCulture);

    private static void WriteText(TextWriter w, string nvrtc, string origin, List<(string Arch, List<KernelResources> Kernels)> results)
    {
        w.WriteLine($"NVRTC {nvrtc}; kernels from {origin}");
        foreach (var (arch, kernels) in results)
        {
            w.WriteLine();
            w.WriteLine($"{arch}");
            w.WriteLine($"  {"kernel",-24} {"module",-14} {"regs",5} {"smem B",7} {"stack B",7} {"spill st/ld B",14}");
            foreach (var k in kernels)
                w.WriteLine($"  {k.Kernel,-24} {k.Module,-14} {k.Registers,5} {k.SharedBytes,7} {k.StackBytes,7} {k.SpillStoreBytes + "/" + k.SpillLoadBytes,14}");
        }
    }

    private static void WriteJson(TextWriter w, string nvrtc, string origin, List<(string Arch, List<KernelResources> Kernels)> results, List<string> errors)
    {
        using var stream = new MemoryStream();
        using (var j = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            j.WriteStartObject();
            j.WriteString("nvrtc", nvrtc);
            j.WriteString("sources", origin);
            j.WriteBoolean("ok", errors.Count == 0);
            j.WriteStartArray("architectures");
            foreach (var (arch, kernels) in results)
            {
                j.WriteStartObject();
                j.WriteString("arch", arch);
                j.WriteStartArray("kernels");
                foreach (var k in kernels)
                {
                    j.WriteStartObject();
                    j.WriteString("kernel", k.Kernel);
                    j.WriteString("module", k.Module);
                    j.WriteNumber("registers", k.Registers);
                    j.WriteNumber("shared_bytes", k.SharedBytes);
                    j.WriteNumber("stack_bytes", k.StackBytes);
                    j.WriteNumber("spill_store_bytes", k.SpillStoreBytes);
                    j.WriteNumber("spill_load_bytes", k.SpillLoadBytes);
                    j.WriteEndObject();
                }
                j.WriteEndArray();
                j.WriteEndObject();
            }
            j.WriteEndArray();
            j.WriteStartArray("errors");
            foreach (string e in errors) j.WriteStringValue(e);
            j.WriteEndArray();
            j.WriteEndObject();
        }
        w.WriteLine(System.Text.Encoding.UTF8.GetString(stream.ToArray()));
    }
}
