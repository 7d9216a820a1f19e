using static WeakToStrong.Backends.Cpu.CpuTensor;

namespace WeakToStrong.Backends.Cpu;

/// <summary>
/// Data movement (row gather, paged-KV block copy) of <see cref="CpuBackend"/>: the reference for kernels/copy.cu
/// (whose dtype conversions and bias add serve only the cuBLAS path and have no CPU twin).
/// </summary>
internal static unsafe class CpuCopy
{
    public static void GatherRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination, int dim)
    {
        float* s = P(source), d = P(destination);
        for (int i = 0; i < rows.Length; i++)
            new ReadOnlySpan<float>(s + (long)rows[i] * dim, dim).CopyTo(new Span<float>(d + (long)i * dim, dim));
    }

    public static void CopyBlock(Tensor keyCache, Tensor valueCache, KvGeometry geometry, int sourceBlock, int destinationBlock)
    {
        long n = geometry.BlockElements;
        foreach (var pool in new[] { keyCache, valueCache })
        {
            float* p = P(pool);
            new ReadOnlySpan<float>(p + sourceBlock * n, (int)n).CopyTo(new Span<float>(p + destinationBlock * n, (int)n));
        }
    }
}
