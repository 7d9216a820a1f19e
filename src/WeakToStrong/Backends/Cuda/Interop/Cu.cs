using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace WeakToStrong.Backends.Cuda.Interop;

/// <summary>Typed wrappers over <see cref="DriverApi"/>: every status checked, handles wrapped in SafeHandles.</summary>
internal static unsafe class Cu
{
    /// <summary>Throws <see cref="CudaException"/> naming the call and the driver's error name.</summary>
    public static void ThrowIfFailed(CuResult status, [CallerArgumentExpression(nameof(status))] string call = "")
    {
        if (status != CuResult.Success) throw new CudaException(CallName(call), status, ErrorName(status));
    }

    /// <summary>
    /// The C name of a raw call from its C# expression: "DriverApi.MemAlloc(out p, n)" → "cuMemAlloc",
    /// "NvrtcApi.CompileProgram(…)" → "nvrtcCompileProgram", "CublasApi.GemmEx(…)" → "cublasGemmEx"; any other
    /// text is returned as it is.
    /// </summary>
    internal static string CallName(string expression)
    {
        foreach (var (type, prefix) in new[] { ("DriverApi.", "cu"), ("NvrtcApi.", "nvrtc"), ("CublasApi.", "cublas") })
        {
            if (!expression.StartsWith(type, StringComparison.Ordinal)) continue;
            string rest = expression[type.Length..];
            int open = rest.IndexOf('(');
            return prefix + (open < 0 ? rest : rest[..open]);
        }
        return expression;
    }

    public static string ErrorName(CuResult status)
    {
        try
        {
            if (DriverApi.GetErrorName(status, out nint name) == CuResult.Success && name != 0)
                return Marshal.PtrToStringUTF8(name) ?? status.ToString();
        }
        catch (DllNotFoundException)
        {
        }
        catch (EntryPointNotFoundException)
        {
        }
        return "CUDA_ERROR_" + status;
    }

    /// <summary>
    /// Initialises the driver and returns device <paramref name="ordinal"/>, or throws
    /// <see cref="CudaUnavailableException"/> saying why CUDA cannot run here.
    /// </summary>
    public static int OpenDevice(int ordinal)
    {
        NativeLibraries.Require(CudaLibrary.Driver);
        var status = DriverApi.Init(0);
        if (status == CuResult.NoDevice) throw new CudaUnavailableException("no CUDA device: the driver reports none");
        if (status != CuResult.Success) throw new CudaUnavailableException($"the CUDA driver failed to initialise: {ErrorName(status)}");
        ThrowIfFailed(DriverApi.DeviceGetCount(out int count));
        if (count == 0) throw new CudaUnavailableException("no CUDA device: the driver reports none");
        if ((uint)ordinal >= (uint)count) throw new CudaUnavailableException($"no CUDA device {ordinal}: the driver reports {count}");
        ThrowIfFailed(DriverApi.DeviceGet(out int device, ordinal));
        return device;
    }

    public static int Attribute(int device, DeviceAttribute attribute)
    {
        ThrowIfFailed(DriverApi.DeviceGetAttribute(out int value, attribute, device));
        return value;
    }

    public static string DeviceName(int device)
    {
        byte* name = stackalloc byte[256];
        ThrowIfFailed(DriverApi.DeviceGetName(name, 256, device));
        return Marshal.PtrToStringUTF8((nint)name) ?? "";
    }
}

/// <summary>The retained primary context of a device.</summary>
internal sealed class PrimaryContextHandle : SafeHandle
{
    private readonly int _device;

    public PrimaryContextHandle(int device) : base(0, true)
    {
        _device = device;
        Cu.ThrowIfFailed(DriverApi.DevicePrimaryCtxRetain(out nint context, device));
        SetHandle(context);
    }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle() => DriverApi.DevicePrimaryCtxRelease(_device) == CuResult.Success;
}

internal sealed class StreamHandle : SafeHandle
{
    public StreamHandle() : base(0, true)
    {
        Cu.ThrowIfFailed(DriverApi.StreamCreate(out nint stream, 1 /* CU_STREAM_NON_BLOCKING */));
        SetHandle(stream);
    }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle() => DriverApi.StreamDestroy(handle) == CuResult.Success;
}

internal sealed class EventHandle : SafeHandle
{
    public EventHandle(bool timing = false) : base(0, true)
    {
        Cu.ThrowIfFailed(DriverApi.EventCreate(out nint e, timing ? 0u : 2u /* CU_EVENT_DISABLE_TIMING */));
        SetHandle(e);
    }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle() => DriverApi.EventDestroy(handle) == CuResult.Success;
}

internal sealed unsafe class CudaModuleHandle : SafeHandle
{
    public CudaModuleHandle(ReadOnlySpan<byte> image) : base(0, true)
    {
        fixed (byte* p = image)
        {
            Cu.ThrowIfFailed(DriverApi.ModuleLoadData(out nint module, p));
            SetHandle(module);
        }
    }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle() => DriverApi.ModuleUnload(handle) == CuResult.Success;
}

/// <summary>Device memory from cuMemAlloc; the address is a 64-bit device pointer.</summary>
internal sealed class DeviceMemoryHandle : SafeHandle
{
    public DeviceMemoryHandle(long bytes) : base(0, true)
    {
        Cu.ThrowIfFailed(DriverApi.MemAlloc(out ulong pointer, (nuint)Math.Max(bytes, 1)));
        SetHandle((nint)pointer);
        Bytes = bytes;
    }

    public long Bytes { get; }

    public ulong Address => (ulong)handle;

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle() => DriverApi.MemFree((ulong)handle) == CuResult.Success;
}

/// <summary>Page-locked host memory (cuMemHostAlloc), the staging area for async copies.</summary>
internal sealed unsafe class PinnedMemoryHandle : SafeHandle
{
    public PinnedMemoryHandle(long bytes) : base(0, true)
    {
        Cu.ThrowIfFailed(DriverApi.MemHostAlloc(out nint pointer, (nuint)bytes, 0));
        SetHandle(pointer);
        Bytes = bytes;
    }

    public long Bytes { get; }

    public byte* Pointer => (byte*)handle;

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle() => DriverApi.MemFreeHost(handle) == CuResult.Success;
}

internal sealed class GraphHandle : SafeHandle
{
    public GraphHandle(nint graph) : base(0, true) => SetHandle(graph);

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle() => DriverApi.GraphDestroy(handle) == CuResult.Success;
}

internal sealed class GraphExecHandle : SafeHandle
{
    public GraphExecHandle(GraphHandle graph) : base(0, true)
    {
        Cu.ThrowIfFailed(DriverApi.GraphInstantiateWithFlags(out nint exec, graph.DangerousGetHandle(), 0));
        SetHandle(exec);
    }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle() => DriverApi.GraphExecDestroy(handle) == CuResult.Success;
}
