namespace WeakToStrong.Backends.Cuda;

/// <summary>Settings of the CUDA backend.</summary>
public sealed record CudaBackendOptions
{
    /// <summary>Device ordinal.</summary>
    public int Device { get; init; }

    /// <summary>Linear layers with at most this many rows use our GEMV kernel (weights read once); larger ones cuBLAS.</summary>
    public int SmallBatchRows { get; init; } = 8;

    /// <summary>
    /// Large BF16/F16 GEMMs on tensor cores: activations are rounded to the weight type first (about 3 significant
    /// digits for BF16), which moves log-probs by ~1e-3. Off by default: the exact path widens weight slices to F32
    /// and runs an F32 GEMM, matching the CPU reference to F32 rounding.
    /// </summary>
    public bool TensorCoreGemm { get; init; }

    /// <summary>
    /// Record decode steps (one token per sequence, at most <see cref="SmallBatchRows"/> sequences) and replay them
    /// as CUDA graphs: one launch per step instead of one per kernel. Off by default until measured on a device.
    /// </summary>
    public bool DecodeGraphs { get; init; }

    /// <summary>Device scratch for widened weight slices (exact path) and rounded activations.</summary>
    public long ScratchBytes { get; init; } = 256L << 20;

    /// <summary>Pinned host staging for uploads and downloads (split in two for double buffering).</summary>
    public int StagingBytes { get; init; } = 32 << 20;
}
