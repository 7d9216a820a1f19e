using System.Text.Json;
using WeakToStrong.Backends;
using WeakToStrong.Backends.Cpu;
using WeakToStrong.Backends.Cuda;
using WeakToStrong.Diagnostics.Ops;
using WeakToStrong.Tests.Cli;
using WeakToStrong.Tests.Cuda;

namespace WeakToStrong.Tests.Diagnostics;

/// <summary>
/// The op checks of <c>w2s ops</c>: the CPU ops against float64 definitions, the kernels (on the host emulator)
/// against the CPU ops — the same cases, shapes and thresholds the command runs on a device — and the comparison
/// itself catching wrong ops.
/// </summary>
[Trait("Category", "Integration")]
public class OpsTests
{
    public static TheoryData<string> SmallCases => new(OpCases.All(modelSized: false).Select(c => c.ToString()));

    private static OpCase Case(string name) => OpCases.All(modelSized: false).Single(c => c.ToString() == name);

    [Theory]
    [MemberData(nameof(SmallCases))]
    public void CpuOpMatchesItsFloat64Definition(string name)
    {
        var c = Case(name);
        using var cpu = new CpuBackend();
        var result = OpCheck.Compare(c, cpu, reference: null);
        if (!c.HasFloat64Reference)
        {
            Assert.Equal("skip", result.Status);
            return;
        }
        Assert.True(result.Status == "pass", $"{name}: error {result.Error:G3} > {result.Threshold:G3} {result.Note}");
    }

    [EmulatorTheory]
    [MemberData(nameof(SmallCases))]
    public void EmulatedKernelMatchesTheCpuOp(string name)
    {
        using var cuda = new CudaBackend(new EmulatorRuntime(multiprocessors: 8), new CudaBackendOptions());
        using var cpu = new CpuBackend();
        var result = OpCheck.Compare(Case(name), cuda, cpu);
        Assert.True(result.Status == "pass", $"{name}: error {result.Error:G3} > {result.Threshold:G3} {result.Note}");
    }

    [Fact]
    public void EveryOpHasSmallAndModelSizedShapes()
    {
        var all = OpCases.All();
        foreach (string op in OpCases.Names)
        {
            Assert.Contains(all, c => c.Op == op && !c.ModelSized);
            Assert.Contains(all, c => c.Op == op && c.ModelSized);
        }
        Assert.Equal(OpCases.Names.Order(), all.Select(c => c.Op).Distinct().Order());
    }

    [Fact]
    public void WrongOpsAreCaughtAndOnlyThose()
    {
        using var faulty = new FaultyCpuBackend();
        using var cpu = new CpuBackend();
        var results = OpCases.All(modelSized: false).Select(c => OpCheck.Compare(c, faulty, cpu)).ToList();
        var failedOps = results.Where(r => r.Failed).Select(r => r.Op).Distinct().Order().ToArray();
        Assert.Equal(["attention", "gelu_tanh", "linear", "sample"], failedOps);
        // Every shape of the wrong linear fails: one output per row off by 1 part in 10³.
        Assert.All(results.Where(r => r.Op == "linear"), r => Assert.Equal("FAIL", r.Status));
        // Against the float64 definitions the same faults show too (stochastic sampling has no such reference).
        var float64 = OpCases.All(modelSized: false).Select(c => OpCheck.Compare(c, faulty, null)).Where(r => r.Failed).Select(r => r.Op).Distinct().Order();
        Assert.Equal(["attention", "gelu_tanh", "linear", "sample"], float64);
    }

    [Fact]
    public void AnOpThatThrowsFailsWithItsMessage()
    {
        using var faulty = new FaultyCpuBackend { ThrowOnCopy = true };
        var result = OpCheck.Compare(OpCases.All(modelSized: false).First(c => c.Op == "copy_block"), faulty, null);
        Assert.Equal("FAIL", result.Status);
        Assert.Contains("copy refused", result.Note);
    }

    [Fact]
    public void AnInPlaceOpThatDriftsIsTimedOnRestoredInputs()
    {
        // GELU in place halves small negative values each call; perf samples restore the inputs first.
        var gelu = OpCases.All(modelSized: false).Last(c => c.Op == "gelu_tanh");
        Assert.True(gelu.MaxCallsPerSample <= 100);
        using var cpu = new CpuBackend();
        using var run = gelu.Prepare(cpu, 1);
        for (int i = 0; i < 200; i++) run.Invoke();
        Assert.Contains(run.Outputs()[0], v => v == 0);
        run.Reset();
        run.Invoke();
        Assert.True(gelu.Error(1, gelu.Reference(1)[0], run.Outputs()[0]) <= gelu.Threshold);
    }

    [Fact]
    public void NaNNeverPasses()
    {
        Assert.Equal(double.PositiveInfinity, OpThresholds.NormalisedSquaredError([1, 2], [1, float.NaN]));
        Assert.Equal(double.PositiveInfinity, OpThresholds.NormalisedSquaredError([1, 2], [1]));
        Assert.Equal(0.25 / 5, OpThresholds.NormalisedSquaredError([1, 2], [1, 2.5f]), 12);
    }

    [Fact]
    public void CliChecksEveryOpOnTheCpuAndReportsJson()
    {
        var r = CliRunner.Run("ops", "--device", "cpu", "--shapes", "small", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr + r.Stdout);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        Assert.Equal("float64", root.GetProperty("reference").GetString());
        var checks = root.GetProperty("checks").EnumerateArray().ToList();
        Assert.Equal(OpCases.All(modelSized: false).Count, checks.Count);
        Assert.Equal(0, root.GetProperty("failed").GetInt32());
        Assert.Equal(checks.Count(c => c.GetProperty("status").GetString() == "pass"), root.GetProperty("passed").GetInt32());
        Assert.Equal(OpCases.Names.Order(), checks.Select(c => c.GetProperty("op").GetString()!).Distinct().Order());
    }

    [Fact]
    public void CliPerfModeReportsTimesNextToMeasuredCeilings()
    {
        var r = CliRunner.Run("ops", "--device", "cpu", "--mode", "perf", "--op", "copy_block", "--shapes", "small", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var root = doc.RootElement;
        Assert.True(root.GetProperty("ceilings").GetProperty("memory_gigabytes_per_second").GetDouble() > 0);
        Assert.True(root.GetProperty("ceilings").GetProperty("compute_gigaflops").GetDouble() > 0);
        var timing = Assert.Single(root.GetProperty("timings").EnumerateArray());
        Assert.Equal("copy_block", timing.GetProperty("op").GetString());
        // The rate is the case's fewest bytes over the median time: together they give back exactly those bytes.
        var copy = OpCases.All(modelSized: false).Single(c => c.Op == "copy_block");
        double microseconds = timing.GetProperty("microseconds").GetDouble();
        double gbps = timing.GetProperty("gigabytes_per_second").GetDouble();
        Assert.True(microseconds > 0, $"{microseconds} µs");
        Assert.Equal(copy.Cost.Bytes, gbps * 1e9 * microseconds * 1e-6, copy.Cost.Bytes * 1e-9);
        Assert.Equal(gbps / root.GetProperty("ceilings").GetProperty("memory_gigabytes_per_second").GetDouble(), timing.GetProperty("fraction_of_bandwidth").GetDouble(), 9);
    }

    [Fact]
    public void CliRefusesBadArgumentsAndAMissingDevice()
    {
        var mode = CliRunner.Run("ops", "--mode", "fast");
        Assert.Equal(2, mode.ExitCode);
        Assert.Contains("--mode", mode.Stderr);
        var op = CliRunner.Run("ops", "--op", "matmul");
        Assert.Equal(2, op.ExitCode);
        Assert.Contains("known: embed", op.Stderr);
        if (CudaBackend.Unavailable() is { } reason)
        {
            var cuda = CliRunner.Run("ops", "--device", "cuda");
            Assert.Equal(1, cuda.ExitCode);
            Assert.Equal("error: --device cuda cannot run here: " + reason, cuda.Stderr.Trim());
        }
    }

    /// <summary>
    /// The CPU backend with four plausible bugs: an erf GELU where the tanh form is specified, one weight row of
    /// every linear layer off by 1 part in 10³ in each row, attention that leaves out each token's own key, and ties in greedy
    /// sampling broken towards the last index. (The erf form differs from the tanh form by up to ~3e-4.) Everything else is the CPU backend's.
    /// </summary>
    private sealed class FaultyCpuBackend : IBackend
    {
        private readonly CpuBackend _cpu = new();

        public bool ThrowOnCopy { get; init; }

        public string Name => "faulty-cpu";

        public Tensor Allocate(DType dtype, long length) => _cpu.Allocate(dtype, length);

        public void Upload(Tensor destination, ReadOnlySpan<byte> source, long elementOffset = 0) => _cpu.Upload(destination, source, elementOffset);

        public void Download(Tensor source, Span<float> destination) => _cpu.Download(source, destination);

        public void BeginBatch(BatchLayout layout) => _cpu.BeginBatch(layout);

        public void Embed(BatchLayout layout, Tensor tokenEmbedding, Tensor? positionEmbedding, Tensor x, int dim) => _cpu.Embed(layout, tokenEmbedding, positionEmbedding, x, dim);

        public void AddNorm(Tensor residual, Tensor? delta, Tensor weight, Tensor? bias, Tensor y, int rows, int dim, NormKind kind, float eps) =>
            _cpu.AddNorm(residual, delta, weight, bias, y, rows, dim, kind, eps);

        public Tensor PrepareLinear(Tensor w, int outDim, int inDim) => _cpu.PrepareLinear(w, outDim, inDim);

        public Tensor LoadLinear(ReadOnlySpan<byte> bytes, DType dtype, int outDim, int inDim, bool transposed = false) =>
            _cpu.LoadLinear(bytes, dtype, outDim, inDim, transposed);

        public void Linear(Tensor x, Tensor w, Tensor? bias, Tensor y, int rows, int inDim, int outDim)
        {
            _cpu.Linear(x, w, bias, y, rows, inDim, outDim);
            var values = Read(y, (long)rows * outDim);
            for (int r = 0; r < rows; r++) values[r * outDim] *= 1.001f;
            Write(y, values);
        }

        public void RopeAndCacheWrite(BatchLayout layout, Tensor qkv, Tensor keyCache, Tensor valueCache, RopeTable? rope, int heads, int kvHeads, int headDim, int blockSize) =>
            _cpu.RopeAndCacheWrite(layout, qkv, keyCache, valueCache, rope, heads, kvHeads, headDim, blockSize);

        public void Attention(BatchLayout layout, Tensor qkv, Tensor keyCache, Tensor valueCache, Tensor output, int heads, int kvHeads, int headDim, int blockSize)
        {
            // Off by one in the causal bound: each token attends to positions [0, p − 1] (position 0 still to itself).
            var shifted = new BatchLayout
            {
                Tokens = layout.Tokens, Positions = layout.Positions.Select(p => Math.Max(0, p - 1)).ToArray(), TokenSequence = layout.TokenSequence,
                SlotMapping = layout.SlotMapping, BlockTables = layout.BlockTables, MaxBlocksPerSequence = layout.MaxBlocksPerSequence,
            };
            _cpu.Attention(shifted, qkv, keyCache, valueCache, output, heads, kvHeads, headDim, blockSize);
        }

        public void GeluTanh(Tensor x, long count)
        {
            var values = Read(x, count);
            for (long i = 0; i < count; i++) values[i] = (float)(0.5 * values[i] * (1 + Erf(values[i] / Math.Sqrt(2))));
            Write(x, values);
        }

        public void SiluGate(Tensor gateUp, Tensor y, int rows, int ff) => _cpu.SiluGate(gateUp, y, rows, ff);

        public void GatherRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination, int dim) => _cpu.GatherRows(source, rows, destination, dim);

        public void LogProbOfTargets(Tensor logits, int rows, int vocab, ReadOnlySpan<int> targets, Span<float> result) => _cpu.LogProbOfTargets(logits, rows, vocab, targets, result);

        public void Sample(Tensor logits, int vocab, ReadOnlySpan<SamplingRow> rows, Span<int> result)
        {
            _cpu.Sample(logits, vocab, rows, result);
            var values = Read(logits, (long)rows.Length * vocab);
            for (int r = 0; r < rows.Length; r++)
                if (rows[r].Temperature == 0)
                    for (int v = vocab - 1; v >= 0; v--)
                        if (values[(long)r * vocab + v] == values[(long)r * vocab + result[r]])
                        {
                            result[r] = v;
                            break;
                        }
        }

        public void CopyBlock(Tensor keyCache, Tensor valueCache, KvGeometry geometry, int sourceBlock, int destinationBlock)
        {
            if (ThrowOnCopy) throw new InvalidOperationException("copy refused");
            _cpu.CopyBlock(keyCache, valueCache, geometry, sourceBlock, destinationBlock);
        }

        public void Dispose() => _cpu.Dispose();

        private float[] Read(Tensor t, long n)
        {
            var a = new float[n];
            _cpu.Download(t, a);
            return a;
        }

        private void Write(Tensor t, float[] values) => _cpu.Upload(t, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()));

        /// <summary>Abramowitz–Stegun 7.1.26 (|error| ≤ 1.5e-7), enough to differ from the tanh form by ~1e-4.</summary>
        private static double Erf(double x)
        {
            double t = 1 / (1 + 0.3275911 * Math.Abs(x));
            double y = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.Exp(-x * x);
            return x >= 0 ? y : -y;
        }
    }
}
