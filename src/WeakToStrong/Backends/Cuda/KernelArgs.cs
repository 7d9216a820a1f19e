using System.Runtime.InteropServices;

namespace WeakToStrong.Backends.Cuda;

/// <summary>
/// A reusable kernel-parameter block in cuLaunchKernel's convention: an array of pointers, each to one
/// parameter's value. Values live in 8-byte native slots, so the block can be handed to the driver (or the
/// emulator) without pinning. Not thread-safe: one per owner (the backend, its graph cache).
/// </summary>
internal sealed unsafe class KernelArgs : IDisposable
{
    private const int Capacity = 32;
    private ulong* _values = (ulong*)NativeMemory.AllocZeroed(Capacity * sizeof(ulong));
    private void** _pointers = (void**)NativeMemory.AllocZeroed(Capacity * (nuint)sizeof(void*));

    public int Count { get; private set; }

    public void** Pointers => _pointers;

    public KernelArgs Begin()
    {
        ObjectDisposedException.ThrowIf(_values == null, this);
        Count = 0;
        return this;
    }

    private ulong* Next()
    {
        if (Count == Capacity) throw new InvalidOperationException($"more than {Capacity} kernel parameters");
        ulong* slot = _values + Count;
        *slot = 0;
        _pointers[Count++] = slot;
        return slot;
    }

    /// <summary>A device pointer (0 for a null pointer parameter).</summary>
    public KernelArgs Ptr(ulong address)
    {
        *Next() = address;
        return this;
    }

    public KernelArgs I32(int value)
    {
        *(int*)Next() = value;
        return this;
    }

    public KernelArgs I64(long value)
    {
        *(long*)Next() = value;
        return this;
    }

    public KernelArgs F32(float value)
    {
        *(float*)Next() = value;
        return this;
    }

    /// <summary>The parameter slots as they are now.</summary>
    public ulong[] Snapshot() => new ReadOnlySpan<ulong>(_values, Count).ToArray();

    /// <summary>Refills the block from a <see cref="Snapshot"/>.</summary>
    public KernelArgs Load(ulong[] slots)
    {
        Begin();
        foreach (ulong v in slots) *Next() = v;
        return this;
    }

    public void Dispose()
    {
        NativeMemory.Free(_values);
        NativeMemory.Free(_pointers);
        _values = null;
        _pointers = null;
    }
}
