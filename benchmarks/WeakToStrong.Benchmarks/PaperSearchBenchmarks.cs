using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using WeakToStrong.Backends;
using WeakToStrong.Backends.Cpu;
using WeakToStrong.Chat;
using WeakToStrong.Checkpoints;
using WeakToStrong.Diagnostics;
using WeakToStrong.Engine;
using WeakToStrong.Engine.Profiling;
using WeakToStrong.Engine.Scheduling;
using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;
using WeakToStrong.Tokenization;

namespace WeakToStrong.Benchmarks;

/// <summary>
/// Chunk-level beam search at the published sentiment experiment's scale, on every CPU vector path this machine
/// has, in one run: a gpt2-large-shaped large model (774M; F32 or BF16 weights) steered by a gpt2-shaped
/// tuned/untuned pair (124M each, F32), (W, K, L) = (4, 4, 5), 50 new tokens. Each iteration is one search.
/// Columns, per search (means over the measured iterations, warm-up left out):
/// <list type="bullet">
/// <item>WallSec; SamplingSec (the large model: the prompt, then 50 decode steps of 16 candidates); ScoringSec (the
/// small pair); the rest of the wall time is forking and selection. CpuSec: process CPU seconds (all threads;
/// steadier than wall time when a neighbour shares the cores).</item>
/// <item>LargeTokPerSec = large tokens ÷ SamplingSec. SamplingGflops = the large model's matrix-multiply FLOPs (2 ×
/// weights × rows of each linear it ran, as its profile counted them: the rows a survivor's K children share at a
/// chunk start once, the prompt included) ÷ SamplingSec: the rate of its steps (the time also holds attention and
/// the draws), to hold against the FMA ceiling.</item>
/// <item>WallSpeedup, SamplingSpeedup, CpuSpeedup: the avx2 row's seconds ÷ this row's, same large-model dtype
/// (1.000 on avx2 rows; WallSpeedup ≥ 1.6 on an avx512 row meets the AVX-512 issue's search target).</item>
/// <item>SameTokens: whether every search of this row returned the avx2 row's response, token for token (the
/// paths must compute the same bits).</item>
/// <item>The profile (<see cref="Transformer.Profile"/>, on for every search): SampLinear%, SampAttn%, SampSample%,
/// SampBarrier% — shares of the large model's forward time in its linears (all roles), attention, sampling and
/// barrier waits; ScoreLinear%, ScoreAttn%, ScoreLogSoftmax% — the same for the small pair's forwards;
/// LinearGflops = the large model's matrix-multiply FLOPs ÷ the seconds its forwards spent in linears (the kernels'
/// own rate); FmaCeiling = this path's F32 FMA ceiling probed just before and after each search (best of the two;
/// BenchmarkDotNet's Mean holds these probes, WallSec does not),
/// SampOfCeiling% and LinearOfCeiling% = SamplingGflops and LinearGflops over it (same-run ratios). After the run
/// each case's full split, op by op, is printed as "// PaperSearch profile" lines.</item>
/// </list>
/// </summary>
/// <remarks>
/// Random weights and the real GPT-2 tokenizer (shared by all three models); EOS disabled, so every search samples
/// 16 × 50 large-model tokens and scores the same small-model tokens whatever the weights. Every model's KV pool
/// holds exactly the blocks the search tree can need (<see cref="SearchCapacity.BlocksNeeded"/>). In process: the
/// path is chosen by building the backend (all three models run on it) with <c>new CpuBackend(isa)</c> per case; a
/// path this CPU lacks is left out of the cases, with a line saying so. Run:
/// <c>dotnet run -c Release --project benchmarks/WeakToStrong.Benchmarks -- --filter '*PaperSearch*'</c>.
/// </remarks>
[Config(typeof(PaperSearchConfig))]
public class PaperSearchBenchmarks
{
    private const int Iterations = 3, BlockSize = 16;

    /// <summary>CBS at the published sentiment settings (top-k 50, temperature 0.7), EOS disabled.</summary>
    private static readonly SearchRequest Request = new()
    {
        Prompt = SearchBenchmarks.Imdb, BeamWidth = 4, Successors = 4, ChunkLength = 5, MaxNewTokens = 50, EosTokenIds = [], Seed = 1,
    };

    /// <summary>Every search each case ran, in order (warm-up first, the measured iterations last), with the process CPU seconds it took.</summary>
    private static readonly ConcurrentDictionary<(DType Large, CpuIsa Isa), ConcurrentQueue<Measure>> Searches = new();

    private static int _skipsReported;

    private CpuBackend _backend = null!;
    private ChatModel _large = null!, _tuned = null!, _untuned = null!;
    private Transformer _largeModel = null!, _tunedModel = null!, _untunedModel = null!;
    private SearchContext _context = null!;

    /// <summary>The large model's weights (the small pair stays F32).</summary>
    [Params(DType.F32, DType.BF16)]
    public DType Large { get; set; }

    [ParamsSource(nameof(Paths))]
    public CpuIsa Isa { get; set; }

    /// <summary>The CPU paths this machine runs; the others are reported as skipped.</summary>
    public static IEnumerable<CpuIsa> Paths()
    {
        if (Interlocked.Exchange(ref _skipsReported, 1) == 0)
            foreach (var isa in Enum.GetValues<CpuIsa>().Except(CpuIsas.Supported))
                Console.WriteLine($"// PaperSearch: {CpuIsas.Name(isa)} path skipped: this CPU lacks it, or the runtime was told not to use it (DOTNET_EnableAVX512=0)");
        return CpuIsas.Supported;
    }

    [GlobalSetup]
    public void Setup()
    {
        _backend = new CpuBackend(Isa);
        Console.WriteLine($"// PaperSearch: large {Large}, CpuBackend.Isa = {CpuIsas.Name(_backend.Isa)}");
        var gpt2 = TextTokenizer.Load(SearchBenchmarks.Fixture("gpt2-tiny"));
        int promptTokens = gpt2.Encode(Request.Prompt).Count;
        ChatModel Model(ModelSpec spec, DType dtype, int seed, bool scorer, string name, out Transformer transformer)
        {
            int blocks = checked((int)SearchCapacity.BlocksNeeded(Request, promptTokens, spec.MaxPositions, BlockSize, scorer));
            transformer = SyntheticModel.Create(spec, dtype, _backend, blocks, BlockSize, seed);
            return new ChatModel(transformer, gpt2, ChatTemplate.None, name, transformer);
        }
        _large = Model(SyntheticModel.Gpt2Large(), Large, 1, scorer: false, $"gpt2-large {Large} (random)", out _largeModel);
        _tuned = Model(SyntheticModel.Gpt2Small(), DType.F32, 2, scorer: true, "gpt2 tuned (random)", out _tunedModel);
        _untuned = Model(SyntheticModel.Gpt2Small(), DType.F32, 3, scorer: true, "gpt2 untuned (random)", out _untunedModel);
        _context = new SearchContext(new LocalLargeModel(_large), _tuned, _untuned);
    }

    [Benchmark]
    public SearchResult Search()
    {
        // The pair's forwards run one after the other on this thread, so they share one profile.
        var sampling = new ForwardProfile();
        var scoring = new ForwardProfile();
        _largeModel.Profile = sampling;
        _tunedModel.Profile = scoring;
        _untunedModel.Profile = scoring;
        // The FMA ceiling of this path, probed just before and just after the search (the best of the two), so the
        // search's rates are read against a ceiling measured while the same neighbours shared the machine.
        double ceiling = ComputePeak.MeasureFma(isa: Isa);
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var result = ChunkBeamSearch.Instance.RunAsync(_context, Request).GetAwaiter().GetResult();
        double cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
        ceiling = Math.Max(ceiling, ComputePeak.MeasureFma(isa: Isa));
        string dtype = Large.ToString();
        Searches.GetOrAdd((Large, Isa), _ => new()).Enqueue(new Measure(result.Stats, result.Tokens, cpuSeconds, ceiling / 1e9,
            StepProfiler.Summary(sampling, "gpt2-large", dtype, "sampling", Request.BeamWidth * Request.Successors),
            StepProfiler.Summary(scoring, "gpt2 pair", "F32", "scoring", Request.BeamWidth * Request.Successors)));
        return result;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        if (Measured(Large, Isa) is { } searches)
            foreach (var (phase, pick) in new (string, Func<Measure, StepProfile>)[] { ("sampling (large)", m => m.Sampling), ("scoring (pair)", m => m.Scoring) })
            {
                var first = pick(searches[0]);
                double perSearch = searches.Average(m => pick(m).Milliseconds * pick(m).Calls);
                Console.WriteLine($"// PaperSearch profile, {Large} {CpuIsas.Name(Isa)}, {phase}: {perSearch / 1000:F2} s of forwards per search, " +
                    string.Join(", ", first.Ops.Select(o => $"{o.Op} {searches.Average(m => pick(m).Ops.First(x => x.Op == o.Op).Share):P1}")));
            }
        _large.Dispose();
        _tuned.Dispose();
        _untuned.Dispose();
        _backend.Dispose();
    }

    private sealed record Measure(SearchStats Stats, IReadOnlyList<int> Tokens, double CpuSeconds, double CeilingGflops, StepProfile Sampling, StepProfile Scoring)
    {
        /// <summary>The multiply-add FLOPs of the large model's linears in this search, as its profile counted them
        /// (2 per weight per row fed: the rows its K children share at a chunk start are counted once).</summary>
        public double LinearFlops => Sampling.Calls * Sampling.Ops.Where(o => o.Op.StartsWith("linear", StringComparison.Ordinal)).Sum(o => o.Gflops * o.Milliseconds * 1e6);

        /// <summary>Those FLOPs per second of sampling.</summary>
        public double SamplingGflops => LinearFlops / (Stats.SamplingMs * 1e6);

        /// <summary>Those FLOPs per second the large model's forwards spent in linears.</summary>
        public double LinearGflops => LinearFlops / (Sampling.Calls * Sampling.Ops.Where(o => o.Op.StartsWith("linear", StringComparison.Ordinal)).Sum(o => o.Milliseconds) * 1e6);

        /// <summary>A named op's share of the sampling or scoring profile (0 when the phase never ran it).</summary>
        public static double Share(StepProfile profile, ForwardOp op) => profile.Ops.FirstOrDefault(o => o.Op == ForwardProfile.Name(op))?.Share ?? 0;
    }

    /// <summary>A case's measured searches: the last <see cref="Iterations"/> it ran.</summary>
    private static IReadOnlyList<Measure>? Measured(DType large, CpuIsa isa) =>
        Searches.TryGetValue((large, isa), out var q) && !q.IsEmpty ? q.TakeLast(Iterations).ToList() : null;

    private static (DType Large, CpuIsa Isa) CaseOf(BenchmarkCase benchmarkCase) =>
        ((DType)benchmarkCase.Parameters[nameof(Large)], (CpuIsa)benchmarkCase.Parameters[nameof(Isa)]);

    private static string Format(double value, string format = "F2") => value.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>One search per iteration, in process (the path is a parameter, not an environment).</summary>
    private sealed class PaperSearchConfig : ManualConfig
    {
        public PaperSearchConfig()
        {
            AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance).WithStrategy(RunStrategy.Monitoring)
                .WithWarmupCount(1).WithIterationCount(Iterations).WithInvocationCount(1).WithUnrollFactor(1));
            HideColumns("Error");
            AddColumn(
                new StatColumn("WallSec", "wall seconds per search", m => m.Stats.WallMs / 1000),
                new StatColumn("SamplingSec", "seconds per search in the large model (prompt + sampling steps)", m => m.Stats.SamplingMs / 1000),
                new StatColumn("ScoringSec", "seconds per search in the small pair (scoring)", m => m.Stats.ScoringMs / 1000),
                new StatColumn("CpuSec", "process CPU seconds per search (all threads)", m => m.CpuSeconds),
                new StatColumn("LargeTokPerSec", "large-model tokens sampled per second of sampling time", m => m.Stats.LargeTokensSampled / (m.Stats.SamplingMs / 1000), "F0"),
                new StatColumn("SamplingGflops", "large-model matrix-multiply GFLOP (as its profile counted them) per second of sampling time", m => m.SamplingGflops, "F0"),
                new StatColumn("FmaCeiling", "this path's F32 FMA ceiling, all cores, GFLOP/s: the best of probes just before and after each search", m => m.CeilingGflops, "F0"),
                new StatColumn("SampOfCeiling%", "SamplingGflops over the FMA ceiling probed around the same search", m => 100 * m.SamplingGflops / m.CeilingGflops, "F0"),
                new StatColumn("SmallTokens", "tokens fed through the tuned and untuned models per search", m => m.Stats.SmallTokensScored, "F0"),
                new SpeedupColumn("WallSpeedup", "the avx2 path's wall seconds ÷ this path's, same large-model dtype", m => m.Stats.WallMs),
                new SpeedupColumn("SamplingSpeedup", "the avx2 path's sampling seconds ÷ this path's, same large-model dtype", m => m.Stats.SamplingMs),
                new SpeedupColumn("CpuSpeedup", "the avx2 path's CPU seconds ÷ this path's, same large-model dtype", m => m.CpuSeconds),
                new SameTokensColumn(),
                new StatColumn("SampLinear%", "share of the large model's forward time in linears (all roles)", m => 100 * m.Sampling.LinearShare, "F1"),
                new StatColumn("SampAttn%", "share of the large model's forward time in attention", m => 100 * Measure.Share(m.Sampling, ForwardOp.Attention), "F1"),
                new StatColumn("SampSample%", "share of the large model's forward time in sampling (top-k, top-p)", m => 100 * Measure.Share(m.Sampling, ForwardOp.Sampling), "F1"),
                new StatColumn("SampBarrier%", "share of the large model's forward time waiting at the end of parallel regions", m => 100 * Measure.Share(m.Sampling, ForwardOp.Barrier), "F1"),
                new StatColumn("LinearGflops", "the large model's matrix-multiply GFLOP ÷ the seconds its forwards spent in linears", m => m.LinearGflops, "F0"),
                new StatColumn("LinearOfCeiling%", "LinearGflops over the FMA ceiling probed around the same search", m => 100 * m.LinearGflops / m.CeilingGflops, "F0"),
                new StatColumn("ScoreLinear%", "share of the small pair's forward time in linears", m => 100 * m.Scoring.LinearShare, "F1"),
                new StatColumn("ScoreAttn%", "share of the small pair's forward time in attention", m => 100 * Measure.Share(m.Scoring, ForwardOp.Attention), "F1"),
                new StatColumn("ScoreLogSoftmax%", "share of the small pair's forward time in log-softmax + gather", m => 100 * Measure.Share(m.Scoring, ForwardOp.LogSoftmaxGather), "F1"));
        }
    }

    /// <summary>The mean of a statistic over a case's measured searches.</summary>
    private sealed class StatColumn(string name, string legend, Func<Measure, double> pick, string format = "F2") : CustomColumn(name, legend)
    {
        public override string GetValue(Summary summary, BenchmarkCase benchmarkCase)
        {
            var (large, isa) = CaseOf(benchmarkCase);
            return Measured(large, isa) is { } searches ? Format(searches.Average(pick), format) : "?";
        }
    }

    /// <summary>The avx2 case's mean of a time over this case's, at the same large-model dtype.</summary>
    private sealed class SpeedupColumn(string name, string legend, Func<Measure, double> pick) : CustomColumn(name, legend)
    {
        public override string GetValue(Summary summary, BenchmarkCase benchmarkCase)
        {
            var (large, isa) = CaseOf(benchmarkCase);
            if (Measured(large, isa) is not { } these || Measured(large, CpuIsa.Avx2) is not { } avx2) return "?";
            return Format(avx2.Average(pick) / these.Average(pick), "F3");
        }
    }

    /// <summary>"yes" when every search of this case returned the avx2 case's response tokens.</summary>
    private sealed class SameTokensColumn() : CustomColumn("SameTokens", "whether every search's response equals the avx2 path's, token for token")
    {
        public override string GetValue(Summary summary, BenchmarkCase benchmarkCase)
        {
            var (large, isa) = CaseOf(benchmarkCase);
            if (!Searches.TryGetValue((large, isa), out var these) || !Searches.TryGetValue((large, CpuIsa.Avx2), out var avx2) || avx2.IsEmpty) return "?";
            var reference = avx2.First().Tokens;
            return these.All(r => r.Tokens.SequenceEqual(reference)) ? "yes" : "NO";
        }
    }
}
