using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using WeakToStrong.Backends;
using WeakToStrong.Backends.Cpu;
using WeakToStrong.Diagnostics;

namespace WeakToStrong.Benchmarks;

/// <summary>
/// One linear layer of a gpt2-large-shaped model (1280 → 5120, the MLP's up projection, 26 MB of F32 weights) at
/// decode batch 1 and 16 and a 256-token prefill, on every CPU path this machine has, with F32, BF16 and int8 weights. Compare a path's time with
/// avx2's at the same dtype and token count (same run); GFLOP/s = 2 · tokens · 1280 · 5120 / time. The Ceiling
/// benchmark is the F32 FMA peak of all cores at the widest path for the work of 16 tokens (the bound batch 16 and
/// prefill chase).
/// </summary>
[WarmupCount(3)]
[IterationCount(15)]
public unsafe class MatmulBenchmarks
{
    private const int In = 1280, Out = 5120;
    private CpuBackend _backend = null!;
    private Tensor _weight = null!, _x = null!, _y = null!;

    [ParamsSource(nameof(Paths))]
    public string Path { get; set; } = "";

    public static IEnumerable<string> Paths => CpuIsas.Supported.Select(CpuIsas.Name);

    /// <summary>I8: BF16 weights quantized at load (<see cref="LinearWeights.Int8"/>; one 256-bit kernel on every path).</summary>
    [Params(DType.F32, DType.BF16, DType.I8)]
    public DType Weights { get; set; }

    [Params(1, 16, 256)]
    public int Tokens { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _backend = new CpuBackend(CpuIsas.Parse(Path));
        var random = new Random(1);
        var w = new float[(long)In * Out];
        for (int i = 0; i < w.Length; i++) w[i] = (random.NextSingle() - 0.5f) * 0.05f;
        byte[] bytes = Weights == DType.F32 // I8 is quantized from BF16, as a BF16 checkpoint's weights are
            ? MemoryMarshal.AsBytes(w.AsSpan()).ToArray()
            : MemoryMarshal.AsBytes(w.Select(v => (ushort)(BitConverter.SingleToInt32Bits(v) >> 16)).ToArray().AsSpan()).ToArray();
        _weight = Weights == DType.I8
            ? _backend.LoadLinear(bytes, DType.BF16, Out, In, transposed: false, LinearWeights.Int8)
            : _backend.LoadLinear(bytes, Weights, Out, In);
        var x = Enumerable.Range(0, Tokens * In).Select(_ => random.NextSingle() - 0.5f).ToArray();
        _x = _backend.Allocate(DType.F32, x.Length);
        _backend.Upload(_x, MemoryMarshal.AsBytes(x.AsSpan()));
        _y = _backend.Allocate(DType.F32, (long)Tokens * Out);
    }

    [Benchmark]
    public void Linear() => _backend.Linear(_x, _weight, null, _y, Tokens, In, Out);

    /// <summary>The FMAs of 16 tokens through this layer, from registers, at the widest path.</summary>
    [Benchmark]
    public float Ceiling() => ComputePeak.Run(Math.Max(1, 2L * 16 * In * Out / ComputePeak.FlopsPerPass(1)));

    [GlobalCleanup]
    public void Cleanup()
    {
        _weight.Dispose();
        _x.Dispose();
        _y.Dispose();
        _backend.Dispose();
    }
}
