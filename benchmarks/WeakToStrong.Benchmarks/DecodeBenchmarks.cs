using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using WeakToStrong.Backends;
using WeakToStrong.Backends.Cpu;
using WeakToStrong.Diagnostics;
using WeakToStrong.Engine;
using WeakToStrong.Engine.KvCache;

namespace WeakToStrong.Benchmarks;

/// <summary>
/// GPT-2-124M-shaped model, random weights: one decode step and one 64-token prefill at batch 1 and 16, next to
/// the baseline of streaming the same weight bytes from memory (the bound a batch-1 decode step is chasing), and
/// the same number of F32 FMAs as the step's matrix multiplies run from registers (the bound a batch-16 step is
/// chasing). Read the Ratio column: decode / read-the-weights; and DecodeStep / FmaOfOneStep by hand. Every CPU
/// path this machine has runs (the Path column: avx2, avx512); the FMA bound is always probed at the widest.
/// </summary>
[MemoryDiagnoser(false)]
[WarmupCount(3)]
[IterationCount(10)]
public unsafe class DecodeBenchmarks
{
    private const int Prompt = 64;
    private CpuBackend _backend = null!;
    private Transformer _model = null!;
    private List<Sequence> _sequences = null!;
    private float* _stream;
    private long _streamFloats;
    private long _fmaIterations;
    private static readonly SamplingSettings Greedy = SamplingSettings.Greedy;

    [ParamsSource(nameof(Paths))]
    public string Path { get; set; } = "";

    public static IEnumerable<string> Paths => CpuIsas.Supported.Select(CpuIsas.Name);

    [Params(DType.F32, DType.BF16)]
    public DType Weights { get; set; }

    [Params(1, 16)]
    public int Batch { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _backend = new CpuBackend(CpuIsas.Parse(Path));
        _model = SyntheticModel.Create(SyntheticModel.Gpt2Small(), Weights, _backend, kvBlocks: Batch * 8);
        var random = new Random(1);
        _sequences = Enumerable.Range(0, Batch)
            .Select(i => _model.CreateSequence(Enumerable.Range(0, Prompt).Select(_ => random.Next(50257)), (ulong)i)).ToList();
        _model.Forward(_sequences.Select(s => new ForwardRequest(s, FeedUntil: Prompt - 1)).ToList());
        _streamFloats = _model.Weights.BytesPerDecodeStep / sizeof(float) & ~31L;
        _fmaIterations = Math.Max(1, 2 * Batch * EngineBenchmark.MatmulWeights(_model.Spec) / ComputePeak.FlopsPerPass(1));
        _stream = (float*)NativeMemory.AlignedAlloc((nuint)(_streamFloats * sizeof(float)), 64);
        new Span<float>(_stream, (int)Math.Min(_streamFloats, int.MaxValue)).Fill(1f);
    }

    /// <summary>Reads as many bytes as one decode step's weights, on all cores: the memory-bound ceiling.</summary>
    [Benchmark(Baseline = true)]
    public long ReadWeightBytes() => MemoryBandwidth.Stream(_stream, _streamFloats);

    /// <summary>As many F32 FMAs as one decode step's matrix multiplies (all cores, from registers): the compute bound.</summary>
    [Benchmark]
    public float FmaOfOneStep() => ComputePeak.Run(_fmaIterations);

    /// <summary>One decode step for the whole batch (the last prompt token fed, next token sampled greedily).</summary>
    [Benchmark]
    public int DecodeStep()
    {
        var results = _model.Forward(_sequences.Select(s => new ForwardRequest(s, Sampling: Greedy)).ToList());
        foreach (var s in _sequences)
        {
            int last = s.Tokens[Prompt - 1];
            s.Truncate(Prompt - 1); // back to the same context (last prompt token unfed) for the next iteration
            s.Append(last);
        }
        return results[0].SampledToken;
    }

    /// <summary>Prefill of 64 tokens per sequence.</summary>
    [Benchmark]
    public int Prefill()
    {
        foreach (var s in _sequences) s.Truncate(0);
        var random = new Random(2);
        foreach (var s in _sequences) s.Append(Enumerable.Range(0, Prompt).Select(_ => random.Next(50257)));
        var results = _model.Forward(_sequences.Select(s => new ForwardRequest(s, FeedUntil: Prompt - 1)).ToList());
        return results.Count;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _sequences.ForEach(s => s.Dispose());
        _model.Dispose();
        NativeMemory.AlignedFree(_stream);
    }
}
