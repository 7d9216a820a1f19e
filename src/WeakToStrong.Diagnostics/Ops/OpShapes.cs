using WeakToStrong.Backends;

namespace WeakToStrong.Diagnostics.Ops;

/// <summary>An <c>Embed</c> shape: a table of <paramref name="Vocab"/> rows in <paramref name="Dtype"/>.</summary>
public sealed record EmbedShape(DType Dtype, int Tokens, int Dim, bool Positions, int Vocab = 11);

/// <summary>An <c>AddNorm</c> shape.</summary>
public sealed record AddNormShape(NormKind Kind, int Rows, int Dim, bool Delta, bool Bias);

/// <summary>A <c>Linear</c> shape: [rows, inDim] · [outDim, inDim]ᵀ with weights in <paramref name="Dtype"/>.</summary>
public sealed record LinearShape(DType Dtype, int Rows, int InDim, int OutDim, bool Bias);

/// <summary>A <c>RopeAndCacheWrite</c> shape, over a batch of three sequences of <paramref name="Lengths"/> tokens.</summary>
public sealed record RopeShape(int Heads, int KvHeads, int HeadDim, int BlockSize, bool Rotary, int[]? Lengths = null);

/// <summary>
/// An <c>Attention</c> shape: <paramref name="Kind"/> is prefill (every sequence from position 0), decode (one new
/// token after <paramref name="Lengths"/> cached ones) or mixed (a prefill, a decode step and a continued chunk).
/// </summary>
public sealed record AttentionShape(string Kind, int Heads, int KvHeads, int HeadDim, int BlockSize, int[]? Lengths = null);

/// <summary>A <c>SiluGate</c> shape.</summary>
public sealed record SiluGateShape(int Rows, int Ff);

/// <summary>A <c>LogProbOfTargets</c> (or <c>Sample</c>) shape.</summary>
public sealed record LogitsShape(int Rows, int Vocab);

/// <summary>
/// The shapes every backend op is checked at: small ones with odd sizes (tails of vectors and tiles, partial
/// blocks), which the emulated-kernel tests run on every CI run, and one model-sized shape per op (GPT-2-124M or
/// Llama-3-8B dimensions), which <c>w2s ops</c> adds.
/// </summary>
public static class OpShapes
{
    public static IReadOnlyList<EmbedShape> Embed { get; } =
    [
        new(DType.F32, 1, 1, false),
        new(DType.F32, 5, 33, true),
        new(DType.BF16, 17, 64, false),
        new(DType.F16, 3, 300, true),
        new(DType.BF16, 2, 257, true),
    ];

    public static IReadOnlyList<AddNormShape> AddNorm { get; } =
    [
        new(NormKind.RmsNorm, 1, 1, false, false),
        new(NormKind.RmsNorm, 3, 64, true, false),
        new(NormKind.RmsNorm, 9, 1000, true, false),
        new(NormKind.LayerNorm, 2, 7, false, true),
        new(NormKind.LayerNorm, 5, 130, true, true),
        new(NormKind.LayerNorm, 4, 4100, true, false),
    ];

    public static IReadOnlyList<LinearShape> Linear { get; } =
    [
        new(DType.F32, 1, 1, 1, false),
        new(DType.F32, 3, 17, 5, true),
        new(DType.F32, 13, 64, 33, false),
        new(DType.BF16, 1, 64, 9, true),
        new(DType.BF16, 8, 96, 31, false),
        new(DType.BF16, 9, 31, 7, true),
        new(DType.F16, 2, 128, 6, true),
        new(DType.F16, 11, 23, 3, false),
    ];

    public static IReadOnlyList<RopeShape> Rope { get; } =
    [
        new(4, 2, 8, 4, true),
        new(3, 3, 12, 16, true),
        new(8, 2, 64, 16, true),
        new(4, 4, 16, 4, false),
    ];

    public static IReadOnlyList<AttentionShape> Attention { get; } =
    [
        new("prefill", 4, 4, 8, 4),
        new("prefill", 4, 2, 16, 16),
        new("prefill", 3, 1, 12, 4),
        new("prefill", 32, 2, 8, 8),      // a KV group wider than one tile (16 rows)
        new("prefill", 2, 1, 96, 16),     // head_dim above 32·2 lanes: three dim chunks
        new("decode", 4, 2, 16, 16),      // long contexts, few tiles → split-K
        new("decode", 8, 8, 8, 4),
        new("mixed", 4, 2, 16, 4),
    ];

    public static IReadOnlyList<long> GeluTanh { get; } = [1L, 1000L, 70_001L];

    public static IReadOnlyList<SiluGateShape> SiluGate { get; } = [new(1, 1), new(3, 257), new(9, 64)];

    public static IReadOnlyList<LogitsShape> LogProbOfTargets { get; } = [new(1, 1), new(3, 7), new(4, 1000), new(2, 50257)];

    /// <summary>Vocabulary sizes of the sampling check (rows cover greedy, temperature, top-k and top-p settings).</summary>
    public static IReadOnlyList<int> Sample { get; } = [5, 100, 3001];

    /// <summary>The model-sized shape of each op: batch-16 decode or a 512-token prefill of Llama-3-8B, GPT-2 where the op is GPT-2's.</summary>
    public static class ModelSized
    {
        public static EmbedShape Embed { get; } = new(DType.BF16, 16, 4096, false, Vocab: 4096);

        public static AddNormShape AddNorm { get; } = new(NormKind.RmsNorm, 16, 4096, true, false);

        public static IReadOnlyList<LinearShape> Linear { get; } =
        [
            new(DType.BF16, 1, 4096, 14336, false),   // Llama-3-8B up projection, batch-1 decode: weight-read bound
            new(DType.BF16, 16, 4096, 14336, false),  // the same at batch 16
            new(DType.F32, 16, 768, 3072, true),      // GPT-2-124M MLP up projection, batch 16
        ];

        public static RopeShape Rope { get; } = new(32, 8, 128, 16, true, [512]);

        public static IReadOnlyList<AttentionShape> Attention { get; } =
        [
            new("prefill", 32, 8, 128, 16, [512]),
            new("decode", 32, 8, 128, 16, [1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000, 1000]),
        ];

        public static long GeluTanh { get; } = 16L * 3072;

        public static SiluGateShape SiluGate { get; } = new(16, 14336);

        public static LogitsShape LogProbOfTargets { get; } = new(16, 128256);

        public static int Sample { get; } = 128256;
    }
}
