namespace WeakToStrong.Backends;

/// <summary>Element type of a tensor. Weights keep their stored type; activations are always <see cref="F32"/>.</summary>
public enum DType
{
    F32,
    F16,
    BF16,
    I32,

    /// <summary>
    /// Int8 linear weights with their F32 scales in the CPU backend's panel layout (<see cref="LinearWeights.Int8"/>):
    /// one element per byte, scales and padding included, so the length is the bytes held.
    /// </summary>
    I8,
}

/// <summary>Size and naming helpers for <see cref="DType"/>.</summary>
public static class DTypeInfo
{
    public static int Size(this DType dtype) => dtype switch
    {
        DType.F32 or DType.I32 => 4,
        DType.F16 or DType.BF16 => 2,
        DType.I8 => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    /// <summary>The safetensors spelling (F32, F16, BF16, I32, I8).</summary>
    public static string Name(this DType dtype) => dtype.ToString();
}
