using System.Runtime.InteropServices;
using WeakToStrong.Backends;
using WeakToStrong.Checkpoints;
using WeakToStrong.Engine.KvCache;

namespace WeakToStrong.Engine;

/// <summary>
/// Models with random weights in a given shape and dtype, built straight into a backend — for benchmarks of
/// real model shapes that cannot be downloaded here (GPT-2 124M and 774M, Llama-3-8B).
/// </summary>
public static class SyntheticModel
{
    /// <summary>GPT-2 small: 124M parameters, 12 layers, 768 wide, 50257 tokens, 1024 positions.</summary>
    public static ModelSpec Gpt2Small() => new()
    {
        Family = "gpt2", VocabSize = 50257, Dim = 768, Layers = 12, Heads = 12, KvHeads = 12, HeadDim = 64,
        FeedForwardDim = 3072, MaxPositions = 1024, Norm = NormKind.LayerNorm, NormEps = 1e-5f, Mlp = MlpKind.GeluTanh,
        Positions = PositionKind.Learned, QkvBias = true, OutputBias = true, MlpBias = true, TiedEmbeddings = true,
        EosTokenIds = [50256],
    };

    /// <summary>GPT-2 large: 774M parameters, 36 layers, 1280 wide, 20 heads of 64, 5120 feed-forward (Hugging Face
    /// gpt2-large config: n_layer 36, n_embd 1280, n_head 20), GPT-2's vocabulary and 1024 positions.</summary>
    public static ModelSpec Gpt2Large() => Gpt2Small() with { Dim = 1280, Layers = 36, Heads = 20, KvHeads = 20, HeadDim = 64, FeedForwardDim = 5120 };

    /// <summary>Llama-3-8B: 32 layers, 4096 wide, GQA 32/8, 14336 feed-forward, 128256 tokens.</summary>
    public static ModelSpec Llama3_8B() => new()
    {
        Family = "llama", VocabSize = 128256, Dim = 4096, Layers = 32, Heads = 32, KvHeads = 8, HeadDim = 128,
        FeedForwardDim = 14336, MaxPositions = 8192, Norm = NormKind.RmsNorm, NormEps = 1e-5f, Mlp = MlpKind.SiluGated,
        Positions = PositionKind.Rotary, Rope = new RopeTable(Enumerable.Range(0, 64).Select(i => 1.0 / Math.Pow(500000, 2.0 * i / 128)).ToArray()),
        QkvBias = false, OutputBias = false, MlpBias = false, TiedEmbeddings = false, EosTokenIds = [128001, 128009],
    };

    /// <summary>A transformer with random weights (matrices in <paramref name="dtype"/>, norms 1, biases small).</summary>
    public static Transformer Create(ModelSpec spec, DType dtype, IBackend backend, int kvBlocks, int blockSize = 16, int seed = 1) =>
        Create(spec, dtype, backend, kvBlocks, LinearWeights.Stored, blockSize, seed);

    /// <summary>A transformer with random weights in <paramref name="dtype"/>, its linear weights (a tied embedding
    /// included) held as <paramref name="linearWeights"/> says, as a checkpoint's would be at load.</summary>
    public static Transformer Create(ModelSpec spec, DType dtype, IBackend backend, int kvBlocks, LinearWeights linearWeights, int blockSize = 16, int seed = 1)
    {
        ArgumentNullException.ThrowIfNull(backend);
        var random = new Random(seed);
        float scale = 1f / MathF.Sqrt(spec.Dim);
        Tensor Matrix(long rows, long cols) => Random(backend, dtype, rows * cols, scale, random);
        Tensor Linear(int rows, int cols) => linearWeights == LinearWeights.Stored
            ? backend.PrepareLinear(Matrix(rows, cols), rows, cols)
            : backend.LoadLinear(RandomBytes(dtype, (long)rows * cols, scale, random), dtype, rows, cols, transposed: false, linearWeights);
        Tensor Vector(int n, float value) => Constant(backend, n, value);
        Tensor? Bias(bool has, int n) => has ? Random(backend, DType.F32, n, 0.02f, random) : null;
        bool ln = spec.Norm == NormKind.LayerNorm;
        int up = spec.Mlp == MlpKind.SiluGated ? 2 * spec.FeedForwardDim : spec.FeedForwardDim;
        var layers = Enumerable.Range(0, spec.Layers).Select(_ => new LayerWeights
        {
            AttentionNorm = Vector(spec.Dim, 1f),
            AttentionNormBias = ln ? Vector(spec.Dim, 0f) : null,
            Qkv = Linear(spec.QkvDim, spec.Dim),
            QkvBias = Bias(spec.QkvBias, spec.QkvDim),
            Output = Linear(spec.Dim, spec.AttentionDim),
            OutputBias = Bias(spec.OutputBias, spec.Dim),
            MlpNorm = Vector(spec.Dim, 1f),
            MlpNormBias = ln ? Vector(spec.Dim, 0f) : null,
            Up = Linear(up, spec.Dim),
            UpBias = Bias(spec.MlpBias, up),
            Down = Linear(spec.Dim, spec.FeedForwardDim),
            DownBias = Bias(spec.MlpBias, spec.Dim),
        }).ToArray();
        var embedding = spec.TiedEmbeddings ? Linear(spec.VocabSize, spec.Dim) : Matrix(spec.VocabSize, spec.Dim);
        var weights = new ModelWeights
        {
            TokenEmbedding = embedding,
            PositionEmbedding = spec.Positions == PositionKind.Learned ? Random(backend, DType.F32, (long)spec.MaxPositions * spec.Dim, scale, random) : null,
            Layers = layers,
            FinalNorm = Vector(spec.Dim, 1f),
            FinalNormBias = ln ? Vector(spec.Dim, 0f) : null,
            LmHead = spec.TiedEmbeddings ? embedding : Linear(spec.VocabSize, spec.Dim),
        };
        var cache = new PagedKvCache(backend, spec.Layers, spec.KvHeads, spec.HeadDim, kvBlocks, blockSize);
        return new Transformer(spec, weights, backend, cache);
    }

    private static Tensor Constant(IBackend backend, int n, float value)
    {
        var t = backend.Allocate(DType.F32, n);
        var values = new float[n];
        Array.Fill(values, value);
        backend.Upload(t, MemoryMarshal.AsBytes(values.AsSpan()));
        return t;
    }

    /// <summary>
    /// A tensor of random values: 1 Mi-element chunks, each a slice at a random offset of a pool of 4 Mi random values
    /// already in <paramref name="dtype"/>. Drawing and converting every value took most of a minute for
    /// Llama-3-8B's 8 G weights; uploading slices costs a copy. The values stay random and nonzero (matrix units run
    /// faster on zeros), which is all a benchmark of speed needs.
    /// </summary>
    private static Tensor Random(IBackend backend, DType dtype, long count, float scale, Random random)
    {
        var t = backend.Allocate(dtype, count);
        var (values, bytes) = Pool(dtype, count, scale, random);
        int size = dtype.Size();
        for (long done = 0; done < count; done += Chunk)
        {
            int n = (int)Math.Min(Chunk, count - done);
            int offset = random.Next(values - n + 1);
            backend.Upload(t, bytes.AsSpan(offset * size, n * size), done);
        }
        return t;
    }

    private const int Chunk = 1 << 20;

    /// <summary>Up to 4 Mi random values in <paramref name="dtype"/>: their count and bytes.</summary>
    private static (int Count, byte[] Bytes) Pool(DType dtype, long count, float scale, Random random)
    {
        var values = new float[Math.Min(4 * Chunk, count)];
        for (int i = 0; i < values.Length; i++) values[i] = (random.NextSingle() * 2 - 1) * scale;
        byte[] bytes = dtype switch
        {
            DType.F32 => MemoryMarshal.AsBytes(values.AsSpan()).ToArray(),
            DType.BF16 => MemoryMarshal.AsBytes(values.Select(v => (ushort)(BitConverter.SingleToInt32Bits(v) >> 16)).ToArray().AsSpan()).ToArray(),
            DType.F16 => MemoryMarshal.AsBytes(values.Select(v => BitConverter.HalfToUInt16Bits((Half)v)).ToArray().AsSpan()).ToArray(),
            _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "weights are F32, F16 or BF16"),
        };
        return (values.Length, bytes);
    }

    /// <summary><see cref="Random"/>'s values as host bytes (for a backend that builds the weight from bytes).</summary>
    private static byte[] RandomBytes(DType dtype, long count, float scale, Random random)
    {
        var (values, pool) = Pool(dtype, count, scale, random);
        int size = dtype.Size();
        var bytes = GC.AllocateUninitializedArray<byte>(checked((int)(count * size)));
        for (long done = 0; done < count; done += Chunk)
        {
            int n = (int)Math.Min(Chunk, count - done);
            int offset = random.Next(values - n + 1);
            pool.AsSpan(offset * size, n * size).CopyTo(bytes.AsSpan((int)(done * size)));
        }
        return bytes;
    }
}
