using WeakToStrong.Backends;

namespace WeakToStrong.Checkpoints;

/// <summary>Feed-forward block shape.</summary>
public enum MlpKind
{
    /// <summary>down(gelu_tanh(up(x))) — GPT-2.</summary>
    GeluTanh,

    /// <summary>down(silu(gate(x)) · up(x)) — Llama, Mistral, Qwen2.</summary>
    SiluGated,
}

/// <summary>How positions enter the model.</summary>
public enum PositionKind
{
    /// <summary>A learned position table added to the token embedding (GPT-2).</summary>
    Learned,

    /// <summary>Rotary embedding on q and k, rotate-half pairing.</summary>
    Rotary,
}

// Here, not in Engine: the checkpoint layer builds the spec and the engine only reads it, so Checkpoints needs nothing from Engine.
/// <summary>
/// Everything the single forward needs to know about a model family, normalised from <c>config.json</c> by
/// <see cref="ModelConfig"/>. There is one forward; families differ only in these values and in their tensor names.
/// </summary>
public sealed record ModelSpec
{
    public required string Family { get; init; }
    public required int VocabSize { get; init; }
    public required int Dim { get; init; }
    public required int Layers { get; init; }
    public required int Heads { get; init; }
    public required int KvHeads { get; init; }
    public required int HeadDim { get; init; }
    public required int FeedForwardDim { get; init; }
    public required int MaxPositions { get; init; }
    public required NormKind Norm { get; init; }
    public required float NormEps { get; init; }
    public required MlpKind Mlp { get; init; }
    public required PositionKind Positions { get; init; }

    /// <summary>Rotary inverse frequencies (null for learned positions).</summary>
    public RopeTable? Rope { get; init; }

    public required bool QkvBias { get; init; }
    public required bool OutputBias { get; init; }
    public required bool MlpBias { get; init; }
    public required bool TiedEmbeddings { get; init; }
    public required IReadOnlyList<int> EosTokenIds { get; init; }
    public int? BosTokenId { get; init; }

    /// <summary>Width of the fused q|k|v projection.</summary>
    public int QkvDim => (Heads + 2 * KvHeads) * HeadDim;

    public int AttentionDim => Heads * HeadDim;

    /// <summary>Per-token KV bytes at F32 over all layers.</summary>
    public long KvBytesPerToken => 2L * Layers * KvHeads * HeadDim * sizeof(float);
}
