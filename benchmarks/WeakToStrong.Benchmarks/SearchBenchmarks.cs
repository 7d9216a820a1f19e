using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
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
using WeakToStrong.Engine;
using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;
using WeakToStrong.Tokenization;

namespace WeakToStrong.Benchmarks;

/// <summary>
/// Chunk-level beam search with the small models' KV caches kept from chunk to chunk (ours) against re-scoring
/// every candidate from scratch at every chunk (the reference implementation's cost), at the two published
/// settings: (W, K, L) = (4, 4, 5) with 50 new tokens and (2, 2, 30) with 256. Columns: Ratio (wall time, cached /
/// no-cache), SmallTokens (tokens fed through the two small models per search), ScoringSec (wall seconds spent
/// scoring), CpuSec (process CPU seconds per search, steadier than wall time on a shared machine), each with its
/// ratio to NoCache at the same setting.
/// </summary>
/// <remarks>
/// Models: random weights. Large = GPT-2 small shape (124M, 12 × 768) with the real GPT-2 tokenizer. Small pair,
/// same tokenizer: 4 × 256 GPT-2 shapes (16M, mostly the 50257-token embedding) — about the 6–8× size gap of the
/// published gpt2-large / gpt2 pair, scaled down to run on a CPU. Small pair, cross-tokenizer: 4 × 256 Llama
/// shapes with llama-tiny's 512-piece SentencePiece vocabulary, so every chunk is bridged through text. EOS is
/// disabled so that every candidate runs to the full length (the work is then the same on every run).
/// One search takes seconds, so each iteration is one search (monitoring strategy). In process: the token
/// columns read counts the benchmark methods record.
/// </remarks>
[Config(typeof(SearchConfig))]
public class SearchBenchmarks
{
    /// <summary>An IMDB-style review opening (the published sentiment task continues movie reviews).</summary>
    internal const string Imdb = "I rented this movie last weekend because the cover looked interesting, and";
    private const string Instruction = "Write a short story about a lighthouse keeper who discovers that the light has been guiding something other than ships. Keep it under three hundred words.";

    /// <summary>Per (method, setting): each search's small-model tokens, scoring seconds and process CPU seconds.</summary>
    private static readonly ConcurrentDictionary<(string Method, string Setting), ConcurrentQueue<(long SmallTokens, double ScoringSeconds, double CpuSeconds)>> Measures = new();

    private CpuBackend _backend = null!;
    private ChatModel _large = null!, _tuned = null!, _untuned = null!;
    private SearchContext _context = null!;

    [Params("cbs(4,4,5)/50", "cbs(2,2,30)/256", "cbs(4,4,5)/50 cross-tokenizer", "cbs(2,2,30)/256 cross-tokenizer")]
    public string Setting { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        _backend = new CpuBackend();
        var gpt2 = TextTokenizer.Load(Fixture("gpt2-tiny"));
        // Small models hold up to W·K full re-tokenised responses at once in no-cache mode: a bigger pool.
        ChatModel Model(ModelSpec spec, TextTokenizer tokenizer, int seed, int kvBlocks, string name)
        {
            var transformer = SyntheticModel.Create(spec, DType.F32, _backend, kvBlocks, seed: seed);
            return new ChatModel(transformer, tokenizer, ChatTemplate.None, name, transformer);
        }
        _large = Model(SyntheticModel.Gpt2Small(), gpt2, 1, 512, "gpt2-124M (random)");
        if (Setting.EndsWith("cross-tokenizer", StringComparison.Ordinal))
        {
            // llama-tiny's SentencePiece vocabulary (512 pieces): every chunk goes through text and back.
            var sentencePiece = TextTokenizer.Load(Fixture("llama-tiny"));
            var small = SyntheticModel.Llama3_8B() with
            {
                VocabSize = 512, Dim = 256, Layers = 4, Heads = 4, KvHeads = 2, HeadDim = 64, FeedForwardDim = 768, MaxPositions = 4096,
                Rope = new RopeTable(Enumerable.Range(0, 32).Select(i => 1.0 / Math.Pow(10000, 2.0 * i / 64)).ToArray()), EosTokenIds = [2],
            };
            _tuned = Model(small, sentencePiece, 2, 1024, "llama-4x256 tuned (random)");
            _untuned = Model(small, sentencePiece, 3, 1024, "llama-4x256 untuned (random)");
        }
        else
        {
            var small = SyntheticModel.Gpt2Small() with { Dim = 256, Layers = 4, Heads = 4, KvHeads = 4, HeadDim = 64, FeedForwardDim = 1024 };
            _tuned = Model(small, gpt2, 2, 1024, "gpt2-16M tuned (random)");
            _untuned = Model(small, gpt2, 3, 1024, "gpt2-16M untuned (random)");
        }
        _context = new SearchContext(new LocalLargeModel(_large), _tuned, _untuned);
    }

    public SearchRequest Request(ScoringCacheMode mode) => Setting.Split(' ')[0] switch
    {
        "cbs(4,4,5)/50" => new SearchRequest { Prompt = Imdb, BeamWidth = 4, Successors = 4, ChunkLength = 5, MaxNewTokens = 50, EosTokenIds = [], Seed = 1, CacheMode = mode },
        "cbs(2,2,30)/256" => new SearchRequest { Prompt = Instruction, BeamWidth = 2, Successors = 2, ChunkLength = 30, MaxNewTokens = 256, EosTokenIds = [], Seed = 1, CacheMode = mode },
        _ => throw new InvalidOperationException($"unknown setting {Setting}"),
    };

    private SearchResult Run(ScoringCacheMode mode, string method)
    {
        var cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var result = ChunkBeamSearch.Instance.RunAsync(_context, Request(mode)).GetAwaiter().GetResult();
        double cpuSeconds = (Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
        Measures.GetOrAdd((method, Setting), _ => new()).Enqueue((result.Stats.SmallTokensScored, result.Stats.ScoringMs / 1000, cpuSeconds));
        return result;
    }

    /// <summary>The reference's cost: both small models over prompt + response of every candidate, every chunk.</summary>
    [Benchmark(Baseline = true)]
    public SearchResult NoCache() => Run(ScoringCacheMode.None, nameof(NoCache));

    /// <summary>Ours: the prompt once, then each candidate's new tokens; caches forked with the survivors.</summary>
    [Benchmark]
    public SearchResult Cached() => Run(ScoringCacheMode.Incremental, nameof(Cached));

    [GlobalCleanup]
    public void Cleanup()
    {
        _large.Dispose();
        _tuned.Dispose();
        _untuned.Dispose();
        _backend.Dispose();
    }

    /// <summary>A tokenizer fixture folder (gpt2-tiny: the real GPT-2 vocabulary; llama-tiny: a SentencePiece model).</summary>
    internal static string Fixture(string name)
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "WeakToStrong.Tests", "TestData", "fixtures", name);
            if (Directory.Exists(candidate)) return candidate;
        }
        throw new DirectoryNotFoundException($"tests/WeakToStrong.Tests/TestData/fixtures/{name} not found above {AppContext.BaseDirectory}");
    }

    /// <summary>One search per iteration, in process, with the measure columns.</summary>
    private sealed class SearchConfig : ManualConfig
    {
        public SearchConfig()
        {
            AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance).WithStrategy(RunStrategy.Monitoring).WithWarmupCount(1).WithIterationCount(3));
            WithSummaryStyle(SummaryStyle.Default.WithMaxParameterColumnWidth(40));
            foreach (var (name, legend, pick) in new (string, string, Func<(long SmallTokens, double ScoringSeconds, double CpuSeconds), double>)[]
            {
                ("SmallTokens", "tokens fed through the tuned and untuned models per search", m => m.SmallTokens),
                ("ScoringSec", "wall seconds spent scoring per search (small models and re-tokenisation)", m => m.ScoringSeconds),
                ("CpuSec", "process CPU seconds per search (all threads)", m => m.CpuSeconds),
            })
            {
                AddColumn(new MeasureColumn(name, legend, pick, ratio: false), new MeasureColumn(name + "Ratio", legend + ", relative to NoCache", pick, ratio: true));
            }
        }
    }

    /// <summary>The mean of a recorded measure over a case's searches (warm-up included), or its ratio to NoCache's.</summary>
    private sealed class MeasureColumn(string name, string legend, Func<(long SmallTokens, double ScoringSeconds, double CpuSeconds), double> pick, bool ratio)
        : CustomColumn(name, legend)
    {
        public override string GetValue(Summary summary, BenchmarkCase benchmarkCase)
        {
            string setting = (string)benchmarkCase.Parameters["Setting"];
            double? Mean(string method) => Measures.TryGetValue((method, setting), out var q) && !q.IsEmpty ? q.Average(pick) : null;
            if (Mean(benchmarkCase.Descriptor.WorkloadMethod.Name) is not { } value) return "?";
            if (!ratio) return value.ToString(value >= 100 ? "F0" : "F2", CultureInfo.InvariantCulture);
            return Mean(nameof(NoCache)) is { } baseline ? (value / baseline).ToString("F3", CultureInfo.InvariantCulture) : "?";
        }
    }
}
