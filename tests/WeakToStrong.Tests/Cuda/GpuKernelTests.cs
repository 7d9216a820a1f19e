using WeakToStrong.Backends;
using WeakToStrong.Backends.Cuda;
using WeakToStrong.Backends.Cuda.Kernels;

namespace WeakToStrong.Tests.Cuda;

/// <summary>The kernel comparisons on CUDA device 0 (cuBLAS included for the larger linear layers); skipped, with the reason, without one.</summary>
[Trait("Category", "Integration")]
public class GpuKernelTests : KernelComparisons
{
    private protected override BackendPair Pair(int seed, int multiprocessors = 4) => new(new CudaBackend(), seed);

    [GpuTheory]
    [MemberData(nameof(EmbedShapes), MemberType = typeof(KernelComparisons))]
    public void Embed(DType dtype, int tokens, int dim, bool positions) => EmbedCase(dtype, tokens, dim, positions);

    [GpuTheory]
    [MemberData(nameof(AddNormShapes), MemberType = typeof(KernelComparisons))]
    public void AddNorm(NormKind kind, int rows, int dim, bool withDelta, bool withBias) => AddNormCase(kind, rows, dim, withDelta, withBias);

    [GpuTheory]
    [MemberData(nameof(LinearShapes), MemberType = typeof(KernelComparisons))]
    public void Linear(DType dtype, int rows, int inDim, int outDim, bool withBias) => LinearCase(dtype, rows, inDim, outDim, withBias);

    [GpuTheory]
    [MemberData(nameof(RopeAndCacheWriteShapes), MemberType = typeof(KernelComparisons))]
    public void RopeAndCacheWrite(int heads, int kvHeads, int headDim, int blockSize, bool rotary) => RopeAndCacheWriteCase(heads, kvHeads, headDim, blockSize, rotary);

    [GpuTheory]
    [MemberData(nameof(AttentionCases), MemberType = typeof(KernelComparisons))]
    public void Attention(string shape, int heads, int kvHeads, int headDim, int blockSize) => AttentionCase(shape, heads, kvHeads, headDim, blockSize);

    [GpuTheory]
    [MemberData(nameof(GeluTanhShapes), MemberType = typeof(KernelComparisons))]
    public void GeluTanh(long count) => GeluTanhCase(count);

    [GpuTheory]
    [MemberData(nameof(SiluGateShapes), MemberType = typeof(KernelComparisons))]
    public void SiluGate(int rows, int ff) => SiluGateCase(rows, ff);

    [GpuFact]
    public void GatherRows() => GatherRowsCase();

    [GpuTheory]
    [MemberData(nameof(LogProbOfTargetsShapes), MemberType = typeof(KernelComparisons))]
    public void LogProbOfTargets(int rows, int vocab) => LogProbOfTargetsCase(rows, vocab);

    [GpuFact]
    public void LogProbRejectsATargetOutsideTheVocabulary() => LogProbRejectsATargetOutsideTheVocabularyCase();

    [GpuTheory]
    [MemberData(nameof(SampleMatchesTheCpuSamplerDrawForDrawShapes), MemberType = typeof(KernelComparisons))]
    public void SampleMatchesTheCpuSamplerDrawForDraw(int vocab) => SampleMatchesTheCpuSamplerDrawForDrawCase(vocab);

    [GpuFact]
    public void GreedyRowsTakeTheFirstIndexOfTheMaximum() => GreedyRowsTakeTheFirstIndexOfTheMaximumCase();

    [GpuFact]
    public void CopyBlock() => CopyBlockCase();
}
