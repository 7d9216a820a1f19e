using System.Text.Json;
using WeakToStrong.Backends.Cpu;
using WeakToStrong.Engine;
using WeakToStrong.Tests.Cli;

namespace WeakToStrong.Tests.CpuOps;

/// <summary>Choosing the CPU path: the default, <c>W2S_CPU_ISA</c>, and its errors (library and CLI).</summary>
[Trait("Category", "Integration")]
public class CpuIsaTests
{
    [Fact]
    public void TheDefaultIsTheWidestPathAndTheVariableForcesOne()
    {
        Assert.Equal(CpuIsas.Widest, CpuIsas.Parse(null));
        Assert.Equal(CpuIsas.Widest, CpuIsas.Parse(" "));
        Assert.Equal(CpuIsa.Avx2, CpuIsas.Parse("AVX2"));
        Assert.Contains(CpuIsa.Avx2, CpuIsas.Supported);
        Assert.Equal(CpuIsas.Supported[^1], CpuIsas.Widest);
        Assert.Equal(CpuIsa.Avx2, new CpuBackend(CpuIsa.Avx2).Isa);
    }

    [Fact]
    public void AnUnknownOrMissingPathIsRefusedByName()
    {
        var unknown = Assert.Throws<InvalidSettingException>(() => CpuIsas.Parse("avx3"));
        Assert.Contains("W2S_CPU_ISA=avx3", unknown.Message);
        Assert.Contains("avx2, avx512", unknown.Message);
        if (!CpuIsas.IsSupported(CpuIsa.Avx512))
        {
            Assert.Contains("process has no avx512", Assert.Throws<InvalidSettingException>(() => CpuIsas.Parse("avx512")).Reason);
            Assert.Throws<ArgumentException>(() => new CpuBackend(CpuIsa.Avx512));
        }
    }

    [Fact]
    public void TheCliNamesABadPathInOneLine()
    {
        var start = CliRunner.StartInfo("bench", "--dtypes", "bf16", "--batches", "1", "--steps", "1", "--prompt-tokens", "2");
        start.Environment["W2S_CPU_ISA"] = "sse9";
        var r = CliRunner.Run(start);
        Assert.Equal(2, r.ExitCode);
        Assert.Equal("error: W2S_CPU_ISA=sse9 is not a CPU path (known: avx2, avx512)", r.Stderr.Trim());
    }

    /// <summary>`w2s bench --json` says which path ran and which the ceiling was probed at, for each path here.</summary>
    [Fact]
    public void BenchSaysWhichPathRan()
    {
        foreach (var isa in CpuIsas.Supported)
        {
            var start = CliRunner.StartInfo("bench", "--dtypes", "bf16", "--batches", "1", "--steps", "1", "--prompt-tokens", "2", "--json");
            start.Environment["W2S_CPU_ISA"] = CpuIsas.Name(isa);
            var r = CliRunner.Run(start);
            Assert.True(r.ExitCode == 0, r.Stderr);
            using var doc = JsonDocument.Parse(r.Stdout);
            Assert.Equal(CpuIsas.Name(isa), doc.RootElement.GetProperty("cpu_path").GetString());
            Assert.Equal(CpuIsas.Name(CpuIsas.Widest), doc.RootElement.GetProperty("peak_path").GetString());
            var ceilings = doc.RootElement.GetProperty("fma_ceilings").EnumerateArray().ToList();
            Assert.Equal(CpuIsas.Supported.Select(CpuIsas.Name), ceilings.Select(c => c.GetProperty("path").GetString()));
            Assert.All(ceilings, c => Assert.InRange(c.GetProperty("gigaflops").GetDouble(), 1, 1e5));
        }
    }

    /// <summary>`w2s ops --device cpu` checks the ops on the path it names, for each path here.</summary>
    [Fact]
    public void OpsChecksEachPathAgainstFloat64()
    {
        foreach (var isa in CpuIsas.Supported)
        {
            var start = CliRunner.StartInfo("ops", "--device", "cpu", "--op", "attention", "--shapes", "small");
            start.Environment["W2S_CPU_ISA"] = CpuIsas.Name(isa);
            var r = CliRunner.Run(start);
            Assert.True(r.ExitCode == 0, r.Stdout + r.Stderr);
            Assert.StartsWith($"cpu (cpu, {Environment.ProcessorCount} cores, {CpuIsas.Name(isa)} path) against float64 definitions", r.Stdout);
            Assert.Contains("attention", r.Stdout);
            Assert.Matches(@"\n[1-9]\d* passed, 0 failed, 0 skipped\n?$", r.Stdout);
        }
    }
}
