using WeakToStrong.Backends.Cuda.Interop;

namespace WeakToStrong.Backends.Cuda;

/// <summary>A launch dimension (cuLaunchKernel's grid or block).</summary>
internal readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1);

/// <summary>
/// What <see cref="CudaBackend"/> needs from a device: memory, copies, kernel launches by registry name (with
/// cuLaunchKernel's argument convention) and, where present, a GEMM. Two implementations: the CUDA driver
/// (<see cref="DriverRuntime"/>) and, in the tests, the host emulator of the same kernel files — so the backend's
/// host code (geometry, argument marshalling, op sequencing) is exercised without a GPU.
/// Addresses are 64-bit device pointers (host pointers under the emulator). Work is issued in order.
/// </summary>
internal interface IDeviceRuntime : IDisposable
{
    /// <summary>The device in words.</summary>
    string Description { get; }

    /// <summary>Streaming multiprocessors (sizes split-K launches).</summary>
    int Multiprocessors { get; }

    /// <summary>Zero-filled memory.</summary>
    ulong Allocate(long bytes);

    void Free(ulong address);

    /// <summary>Copies host bytes to the device; the source may be reused when the call returns.</summary>
    void CopyToDevice(ulong destination, ReadOnlySpan<byte> source);

    /// <summary>Waits for the work issued so far, then copies device bytes to the host.</summary>
    void CopyToHost(ulong source, Span<byte> destination);

    void CopyOnDevice(ulong destination, ulong source, long bytes);

    /// <summary>
    /// Launches a kernel of <see cref="Kernels.KernelCatalog"/>; <paramref name="args"/>[i] points at parameter i's
    /// value (8-byte slots), <paramref name="argCount"/> of them.
    /// </summary>
    unsafe void Launch(string kernel, Dim3 grid, Dim3 block, int sharedBytes, void** args, int argCount);

    /// <summary>Whether launches can be captured into replayable graphs.</summary>
    bool CanCapture { get; }

    /// <summary>Captures the launches <paramref name="issue"/> makes into a graph; nothing runs until <see cref="Replay"/>.</summary>
    IDisposable Capture(Action issue);

    /// <summary>Runs a captured graph, in order with the other work.</summary>
    void Replay(IDisposable graph);

    /// <summary>Whether <see cref="Gemm"/> is available (cuBLAS loaded).</summary>
    bool HasGemm { get; }

    /// <summary>y[rows, ·] (row stride ldy) = x[rows, inDim] · W[outDim, inDim]ᵀ with F32 accumulation and F32 output.</summary>
    void Gemm(ulong x, CudaDataType xType, ulong w, CudaDataType wType, ulong y, int rows, int inDim, int outDim, int ldy);

    /// <summary>Waits for all issued work.</summary>
    void Synchronize();
}
