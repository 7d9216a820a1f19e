using System.Numerics.Tensors;
using static WeakToStrong.Backends.Cpu.CpuTensor;

namespace WeakToStrong.Backends.Cpu;

/// <summary>
/// The embedding gather (+ learned positions) of <see cref="CpuBackend"/>: the reference for kernels/embed.cu.
/// </summary>
internal static unsafe class CpuEmbed
{
    public static void Embed(BatchLayout layout, Tensor tokenEmbedding, Tensor? positionEmbedding, Tensor x, int dim)
    {
        var table = AsCpu(tokenEmbedding);
        float* xp = P(x);
        for (int t = 0; t < layout.TokenCount; t++)
        {
            var row = new Span<float>(xp + (long)t * dim, dim);
            if (table.PackedRows > 0) CpuLinear.Row(table, layout.Tokens[t], row);
            else RowToFloat(table, layout.Tokens[t], dim, row);
            if (positionEmbedding is not null)
                TensorPrimitives.Add(row, new ReadOnlySpan<float>(P(positionEmbedding) + (long)layout.Positions[t] * dim, dim), row);
        }
    }

    private static void RowToFloat(CpuTensor table, int row, int dim, Span<float> destination)
    {
        long offset = (long)row * dim;
        switch (table.DType)
        {
            case DType.F32:
                new ReadOnlySpan<float>(table.F32 + offset, dim).CopyTo(destination);
                break;
            case DType.F16:
                TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>((Half*)table.Pointer + offset, dim), destination);
                break;
            case DType.BF16:
                var source = new ReadOnlySpan<ushort>((ushort*)table.Pointer + offset, dim);
                for (int i = 0; i < dim; i++) destination[i] = BitConverter.Int32BitsToSingle(source[i] << 16);
                break;
            default:
                throw new ArgumentException($"embedding dtype {table.DType} is not a float type");
        }
    }
}
