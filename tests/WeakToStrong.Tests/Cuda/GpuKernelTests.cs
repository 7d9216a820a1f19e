using WeakToStrong.Backends;
using WeakToStrong.Backends.Cuda;
using WeakToStrong.Backends.Cuda.Kernels;

namespace WeakToStrong.Tests.Cuda;

/// <summary>The kernel comparisons on CUDA device 0 (cuBLAS included for the larger linear layers); skipped, with the reason, without one.</summary>
public class GpuKernelTests : KernelComparisons
{
    private protected override BackendPair Pair(int seed, int multiprocessors = 4) => new(new CudaBackend(), seed);

    [GpuTheory]
    [InlineData(DType.F32, 1, 1, false)]
    [InlineData(DType.F32, 5, 33, true)]
    [InlineData(DType.BF16, 17, 64, false)]
    [InlineData(DType.F16, 3, 300, true)]
    [InlineData(DType.BF16, 2, 257, true)]
    public void Embed(DType dtype, int tokens, int dim, bool positions) => EmbedCase(dtype, tokens, dim, positions);

    [GpuTheory]
    [InlineData(NormKind.RmsNorm, 1, 1, false, false)]
    [InlineData(NormKind.RmsNorm, 3, 64, true, false)]
    [InlineData(NormKind.RmsNorm, 9, 1000, true, false)]
    [InlineData(NormKind.LayerNorm, 2, 7, false, true)]
    [InlineData(NormKind.LayerNorm, 5, 130, true, true)]
    [InlineData(NormKind.LayerNorm, 4, 4100, true, false)]
    public void AddNorm(NormKind kind, int rows, int dim, bool withDelta, bool withBias) => AddNormCase(kind, rows, dim, withDelta, withBias);

    [GpuTheory]
    [InlineData(DType.F32, 1, 1, 1, false)]
    [InlineData(DType.F32, 3, 17, 5, true)]
    [InlineData(DType.F32, 13, 64, 33, false)]
    [InlineData(DType.BF16, 1, 64, 9, true)]
    [InlineData(DType.BF16, 8, 96, 31, false)]
    [InlineData(DType.BF16, 9, 31, 7, true)]
    [InlineData(DType.F16, 2, 128, 6, true)]
    [InlineData(DType.F16, 11, 23, 3, false)]
    public void Linear(DType dtype, int rows, int inDim, int outDim, bool withBias) => LinearCase(dtype, rows, inDim, outDim, withBias);

    [GpuTheory]
    [InlineData(4, 2, 8, 4, true)]
    [InlineData(3, 3, 12, 16, true)]
    [InlineData(8, 2, 64, 16, true)]
    [InlineData(4, 4, 16, 4, false)]
    public void RopeAndCacheWrite(int heads, int kvHeads, int headDim, int blockSize, bool rotary) => RopeAndCacheWriteCase(heads, kvHeads, headDim, blockSize, rotary);

    [GpuTheory]
    [MemberData(nameof(AttentionCases), MemberType = typeof(KernelComparisons))]
    public void Attention(string shape, int heads, int kvHeads, int headDim, int blockSize) => AttentionCase(shape, heads, kvHeads, headDim, blockSize);

    [GpuTheory]
    [InlineData(1L)]
    [InlineData(1000L)]
    [InlineData(70_001L)]
    public void GeluTanh(long count) => GeluTanhCase(count);

    [GpuTheory]
    [InlineData(1, 1)]
    [InlineData(3, 257)]
    [InlineData(9, 64)]
    public void SiluGate(int rows, int ff) => SiluGateCase(rows, ff);

    [GpuFact]
    public void GatherRows() => GatherRowsCase();

    [GpuTheory]
    [InlineData(1, 1)]
    [InlineData(3, 7)]
    [InlineData(4, 1000)]
    [InlineData(2, 50257)]
    public void LogProbOfTargets(int rows, int vocab) => LogProbOfTargetsCase(rows, vocab);

    [GpuFact]
    public void LogProbRejectsATargetOutsideTheVocabulary() => LogProbRejectsATargetOutsideTheVocabularyCase();

    [GpuTheory]
    [InlineData(5)]
    [InlineData(100)]
    [InlineData(3001)]
    public void SampleMatchesTheCpuSamplerDrawForDraw(int vocab) => SampleMatchesTheCpuSamplerDrawForDrawCase(vocab);

    [GpuFact]
    public void GreedyRowsTakeTheFirstIndexOfTheMaximum() => GreedyRowsTakeTheFirstIndexOfTheMaximumCase();

    [GpuFact]
    public void CopyBlock() => CopyBlockCase();
}
