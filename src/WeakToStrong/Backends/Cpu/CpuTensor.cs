using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace WeakToStrong.Backends.Cpu;

/// <summary>A tensor in 64-byte-aligned native host memory.</summary>
public sealed unsafe class CpuTensor : Tensor
{
    private const int Alignment = 64;

    private void* _allocation;

    internal CpuTensor(DType dtype, long length) : base(dtype, length)
    {
        // calloc rather than alloc + clear: a large block comes fresh from the kernel already zeroed, so its pages
        // stay unbacked until written (a KV pool costs resident memory only as far as it is used).
        nuint bytes = (nuint)Math.Max(ByteLength, Alignment);
        _allocation = NativeMemory.AllocZeroed(bytes + Alignment);
        Pointer = (byte*)(((nuint)_allocation + Alignment) & ~(nuint)(Alignment - 1));
    }

    internal byte* Pointer { get; private set; }

    internal float* F32 => (float*)Pointer;

    /// <summary>Output rows of a linear weight packed in panels (see <see cref="CpuLinear.Pack"/>); 0 when the
    /// tensor is plain row-major.</summary>
    internal int PackedRows { get; init; }

    /// <summary>Input columns of a packed linear weight.</summary>
    internal int PackedColumns { get; init; }

    /// <summary>Inputs per scale of an int8 linear weight (<see cref="CpuLinear.PackInt8"/>); 0 for float weights.</summary>
    internal int PackedGroup { get; init; }

    /// <summary>The CPU tensor behind <paramref name="t"/>; a tensor of another backend is refused.</summary>
    internal static CpuTensor AsCpu(Tensor t) => t as CpuTensor ?? throw new ArgumentException($"tensor belongs to another backend ({t.GetType().Name})");

    /// <summary>An F32 tensor's data; any other dtype is refused (reading F16/BF16 bytes as floats gives garbage).</summary>
    internal static float* P(Tensor t, [CallerArgumentExpression(nameof(t))] string name = "")
    {
        var c = AsCpu(t);
        if (c.DType != DType.F32) throw new ArgumentException($"{name} must be F32, is {c.DType}", name);
        return c.F32;
    }

    internal static float* POrNull(Tensor? t, [CallerArgumentExpression(nameof(t))] string name = "") => t is null ? null : P(t, name);

    /// <summary>The elements as floats (F32 tensors; at most 2^31 − 1 elements per span).</summary>
    public Span<float> AsFloats(long offset, int count)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        if (DType != DType.F32) throw new InvalidOperationException($"tensor is {DType}, not F32");
        if (offset < 0 || count < 0 || offset + count > Length) throw new ArgumentOutOfRangeException(nameof(offset));
        return new Span<float>(F32 + offset, count);
    }

    protected override void Release()
    {
        NativeMemory.Free(_allocation);
        _allocation = null;
        Pointer = null;
    }
}
