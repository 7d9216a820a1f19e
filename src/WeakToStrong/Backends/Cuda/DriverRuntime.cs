using System.Runtime.InteropServices;
using WeakToStrong.Backends.Cuda.Interop;
using WeakToStrong.Backends.Cuda.Kernels;

namespace WeakToStrong.Backends.Cuda;

/// <summary>
/// <see cref="IDeviceRuntime"/> on the CUDA driver: the device's primary context, one non-blocking stream,
/// kernel modules compiled by NVRTC for the device's architecture on first use (cached on disk), cuBLAS on the
/// same stream, and a pinned staging buffer in two halves so that a large upload overlaps the host copy of one
/// half with the DMA of the other.
/// </summary>
internal sealed unsafe class DriverRuntime : IDeviceRuntime
{
    /// <summary>Dynamic shared memory a kernel may use without opting in.</summary>
    private const int DefaultSharedLimit = 48 * 1024;

    private readonly int _device;
    private readonly PrimaryContextHandle _context;
    private readonly StreamHandle _stream;
    private readonly Cublas? _blas;
    private readonly KernelCompiler _compiler;
    private readonly Dictionary<string, CudaModuleHandle> _modules = [];
    private readonly Dictionary<string, (nint Function, int SharedOptIn)> _functions = [];
    private readonly Dictionary<ulong, DeviceMemoryHandle> _allocations = [];
    private readonly PinnedMemoryHandle _staging;
    private readonly EventHandle[] _stagingDone;
    private readonly int _sharedOptInLimit;

    /// <summary>Opens the device; every native object is created here, after the driver check, never in a field initialiser.</summary>
    public DriverRuntime(CudaBackendOptions options)
    {
        _device = Cu.OpenDevice(options.Device);
        NativeLibraries.Require(CudaLibrary.Nvrtc);
        _context = new PrimaryContextHandle(_device);
        try
        {
            MakeCurrent();
            _stream = new StreamHandle();
            int major = Cu.Attribute(_device, DeviceAttribute.ComputeCapabilityMajor), minor = Cu.Attribute(_device, DeviceAttribute.ComputeCapabilityMinor);
            Architecture = KernelCompiler.Architecture(major, minor);
            Multiprocessors = Cu.Attribute(_device, DeviceAttribute.MultiprocessorCount);
            _sharedOptInLimit = Cu.Attribute(_device, DeviceAttribute.MaxSharedMemoryPerBlockOptin);
            Description = $"{Cu.DeviceName(_device)} ({Architecture}, {Multiprocessors} SMs)";
            _compiler = new KernelCompiler(KernelSources.Load(), Architecture);
            _staging = new PinnedMemoryHandle(Math.Max(options.StagingBytes, 1 << 20) & ~255);
            _stagingDone = [new EventHandle(), new EventHandle()];
            if (NativeLibraries.TryLoad(CudaLibrary.Cublas, out _)) _blas = new Cublas(_stream.DangerousGetHandle());
        }
        catch
        {
            _staging?.Dispose();
            _stream?.Dispose();
            _context.Dispose();
            throw;
        }
    }

    public string Description { get; }

    public string Architecture { get; }

    public int Multiprocessors { get; }

    public bool HasGemm => _blas is not null;

    private nint Stream => _stream.DangerousGetHandle();

    private void MakeCurrent() => Cu.ThrowIfFailed(DriverApi.CtxSetCurrent(_context.DangerousGetHandle()));

    public ulong Allocate(long bytes)
    {
        MakeCurrent();
        var memory = new DeviceMemoryHandle(bytes);
        Cu.ThrowIfFailed(DriverApi.MemsetD8Async(memory.Address, 0, (nuint)Math.Max(bytes, 1), Stream));
        _allocations[memory.Address] = memory;
        return memory.Address;
    }

    public void Free(ulong address)
    {
        if (!_allocations.Remove(address, out var memory)) throw new ArgumentException("not an allocation of this device", nameof(address));
        MakeCurrent();
        memory.Dispose();
    }

    public void CopyToDevice(ulong destination, ReadOnlySpan<byte> source)
    {
        MakeCurrent();
        long half = _staging.Bytes / 2;
        int turn = 0;
        for (long done = 0; done < source.Length; done += half, turn ^= 1)
        {
            int n = (int)Math.Min(half, source.Length - done);
            byte* slot = _staging.Pointer + turn * half;
            Cu.ThrowIfFailed(DriverApi.EventSynchronize(_stagingDone[turn].DangerousGetHandle()));
            source.Slice((int)done, n).CopyTo(new Span<byte>(slot, n));
            Cu.ThrowIfFailed(DriverApi.MemcpyHtoDAsync(destination + (ulong)done, slot, (nuint)n, Stream));
            Cu.ThrowIfFailed(DriverApi.EventRecord(_stagingDone[turn].DangerousGetHandle(), Stream));
        }
    }

    public void CopyToHost(ulong source, Span<byte> destination)
    {
        MakeCurrent();
        long chunk = _staging.Bytes;
        for (long done = 0; done < destination.Length; done += chunk)
        {
            int n = (int)Math.Min(chunk, destination.Length - done);
            Cu.ThrowIfFailed(DriverApi.MemcpyDtoHAsync(_staging.Pointer, source + (ulong)done, (nuint)n, Stream));
            Cu.ThrowIfFailed(DriverApi.StreamSynchronize(Stream));
            new ReadOnlySpan<byte>(_staging.Pointer, n).CopyTo(destination.Slice((int)done, n));
        }
    }

    public void CopyOnDevice(ulong destination, ulong source, long bytes)
    {
        MakeCurrent();
        Cu.ThrowIfFailed(DriverApi.MemcpyDtoDAsync(destination, source, (nuint)bytes, Stream));
    }

    public void Launch(string kernel, Dim3 grid, Dim3 block, int sharedBytes, void** args, int argCount)
    {
        MakeCurrent();
        var (function, optedIn) = Function(kernel);
        if (sharedBytes > DefaultSharedLimit && sharedBytes > optedIn)
        {
            if (sharedBytes > _sharedOptInLimit)
                throw new NotSupportedException($"{kernel} needs {sharedBytes} bytes of shared memory; the device allows {_sharedOptInLimit}");
            Cu.ThrowIfFailed(DriverApi.FuncSetAttribute(function, FunctionAttribute.MaxDynamicSharedSizeBytes, sharedBytes));
            _functions[kernel] = (function, sharedBytes);
        }
        Cu.ThrowIfFailed(DriverApi.LaunchKernel(function, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, (uint)sharedBytes, Stream, args, null));
    }

    private (nint Function, int SharedOptIn) Function(string kernel)
    {
        if (_functions.TryGetValue(kernel, out var known)) return known;
        var module = KernelCatalog.ModuleOf(kernel);
        if (!_modules.TryGetValue(module.File, out var handle))
        {
            handle = new CudaModuleHandle(_compiler.Image(module));
            _modules[module.File] = handle;
        }
        Cu.ThrowIfFailed(DriverApi.ModuleGetFunction(out nint function, handle.DangerousGetHandle(), kernel));
        _functions[kernel] = (function, 0);
        return (function, 0);
    }

    public void Gemm(ulong x, CudaDataType xType, ulong w, CudaDataType wType, ulong y, int rows, int inDim, int outDim, int ldy)
    {
        if (_blas is null) throw new CudaUnavailableException(NativeLibraries.TryLoad(CudaLibrary.Cublas, out string reason) ? "cuBLAS not initialised" : reason);
        MakeCurrent();
        _blas.LinearRowMajor(x, xType, w, wType, y, rows, inDim, outDim, ldy);
    }

    public void Synchronize()
    {
        MakeCurrent();
        Cu.ThrowIfFailed(DriverApi.StreamSynchronize(Stream));
    }

    public bool CanCapture => true;

    /// <summary>Captures the work <paramref name="issue"/> enqueues as a CUDA graph (nothing runs during capture).</summary>
    public IDisposable Capture(Action issue)
    {
        MakeCurrent();
        // Relaxed: the first launch of a kernel may load its module (cuModuleLoadData) inside the capture.
        Cu.ThrowIfFailed(DriverApi.StreamBeginCapture(Stream, StreamCaptureMode.Relaxed));
        try
        {
            issue();
        }
        catch
        {
            // Statuses ignored on purpose: the capture is abandoned and issue()'s exception is rethrown; a failure to end
            // or free the broken capture must not replace it.
            _ = DriverApi.StreamEndCapture(Stream, out nint broken);
            if (broken != 0) _ = DriverApi.GraphDestroy(broken);
            throw;
        }
        Cu.ThrowIfFailed(DriverApi.StreamEndCapture(Stream, out nint graph));
        using var g = new GraphHandle(graph);
        return new GraphExecHandle(g);
    }

    /// <summary>Replays a captured graph on the stream.</summary>
    public void Replay(IDisposable graph)
    {
        var exec = graph as GraphExecHandle ?? throw new ArgumentException("not a graph of this runtime", nameof(graph));
        MakeCurrent();
        Cu.ThrowIfFailed(DriverApi.GraphLaunch(exec.DangerousGetHandle(), Stream));
    }

    public void Dispose()
    {
        // Dispose releases everything below whatever the context's state: a failure here (a sticky error from earlier
        // work, already thrown by the call that hit it) is deliberately not thrown, so nothing is leaked.
        if (DriverApi.CtxSetCurrent(_context.DangerousGetHandle()) == CuResult.Success)
            _ = DriverApi.StreamSynchronize(Stream); // status ignored for the same reason
        _blas?.Dispose();
        foreach (var m in _allocations.Values) m.Dispose();
        _allocations.Clear();
        foreach (var m in _modules.Values) m.Dispose();
        foreach (var e in _stagingDone) e.Dispose();
        _staging.Dispose();
        _stream.Dispose();
        _context.Dispose();
    }
}
