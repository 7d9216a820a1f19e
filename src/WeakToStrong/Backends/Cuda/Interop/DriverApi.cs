using System.Runtime.InteropServices;

namespace WeakToStrong.Backends.Cuda.Interop;

/// <summary>
/// Raw imports of the CUDA driver API (<c>cuda.h</c>), exactly as the C signatures in the comments. Handles are
/// <c>nint</c>, device pointers <c>ulong</c>. Nothing here checks a status: <see cref="Cu"/> does.
/// </summary>
internal static unsafe partial class DriverApi
{
    private const string Lib = NativeLibraries.DriverName;

    // CUresult cuInit(unsigned int Flags)
    [LibraryImport(Lib, EntryPoint = "cuInit")]
    public static partial CuResult Init(uint flags);

    // CUresult cuDriverGetVersion(int* driverVersion)
    [LibraryImport(Lib, EntryPoint = "cuDriverGetVersion")]
    public static partial CuResult DriverGetVersion(out int version);

    // CUresult cuGetErrorName(CUresult error, const char** pStr)
    [LibraryImport(Lib, EntryPoint = "cuGetErrorName")]
    public static partial CuResult GetErrorName(CuResult error, out nint name);

    // CUresult cuDeviceGetCount(int* count)
    [LibraryImport(Lib, EntryPoint = "cuDeviceGetCount")]
    public static partial CuResult DeviceGetCount(out int count);

    // CUresult cuDeviceGet(CUdevice* device, int ordinal)
    [LibraryImport(Lib, EntryPoint = "cuDeviceGet")]
    public static partial CuResult DeviceGet(out int device, int ordinal);

    // CUresult cuDeviceGetName(char* name, int len, CUdevice dev)
    [LibraryImport(Lib, EntryPoint = "cuDeviceGetName")]
    public static partial CuResult DeviceGetName(byte* name, int length, int device);

    // CUresult cuDeviceGetAttribute(int* pi, CUdevice_attribute attrib, CUdevice dev)
    [LibraryImport(Lib, EntryPoint = "cuDeviceGetAttribute")]
    public static partial CuResult DeviceGetAttribute(out int value, DeviceAttribute attribute, int device);

    // CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice dev)
    [LibraryImport(Lib, EntryPoint = "cuDeviceTotalMem_v2")]
    public static partial CuResult DeviceTotalMem(out nuint bytes, int device);

    // CUresult cuDevicePrimaryCtxRetain(CUcontext* pctx, CUdevice dev)
    [LibraryImport(Lib, EntryPoint = "cuDevicePrimaryCtxRetain")]
    public static partial CuResult DevicePrimaryCtxRetain(out nint context, int device);

    // CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
    [LibraryImport(Lib, EntryPoint = "cuDevicePrimaryCtxRelease_v2")]
    public static partial CuResult DevicePrimaryCtxRelease(int device);

    // CUresult cuCtxSetCurrent(CUcontext ctx)
    [LibraryImport(Lib, EntryPoint = "cuCtxSetCurrent")]
    public static partial CuResult CtxSetCurrent(nint context);

    // CUresult cuCtxSynchronize(void)
    [LibraryImport(Lib, EntryPoint = "cuCtxSynchronize")]
    public static partial CuResult CtxSynchronize();

    // CUresult cuMemAlloc_v2(CUdeviceptr* dptr, size_t bytesize)
    [LibraryImport(Lib, EntryPoint = "cuMemAlloc_v2")]
    public static partial CuResult MemAlloc(out ulong pointer, nuint bytes);

    // CUresult cuMemFree_v2(CUdeviceptr dptr)
    [LibraryImport(Lib, EntryPoint = "cuMemFree_v2")]
    public static partial CuResult MemFree(ulong pointer);

    // CUresult cuMemGetInfo_v2(size_t* free, size_t* total)
    [LibraryImport(Lib, EntryPoint = "cuMemGetInfo_v2")]
    public static partial CuResult MemGetInfo(out nuint free, out nuint total);

    // CUresult cuMemHostAlloc(void** pp, size_t bytesize, unsigned int Flags)
    [LibraryImport(Lib, EntryPoint = "cuMemHostAlloc")]
    public static partial CuResult MemHostAlloc(out nint pointer, nuint bytes, uint flags);

    // CUresult cuMemFreeHost(void* p)
    [LibraryImport(Lib, EntryPoint = "cuMemFreeHost")]
    public static partial CuResult MemFreeHost(nint pointer);

    // CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dstDevice, const void* srcHost, size_t ByteCount, CUstream hStream)
    [LibraryImport(Lib, EntryPoint = "cuMemcpyHtoDAsync_v2")]
    public static partial CuResult MemcpyHtoDAsync(ulong destination, void* source, nuint bytes, nint stream);

    // CUresult cuMemcpyDtoHAsync_v2(void* dstHost, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream)
    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoHAsync_v2")]
    public static partial CuResult MemcpyDtoHAsync(void* destination, ulong source, nuint bytes, nint stream);

    // CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dstDevice, CUdeviceptr srcDevice, size_t ByteCount, CUstream hStream)
    [LibraryImport(Lib, EntryPoint = "cuMemcpyDtoDAsync_v2")]
    public static partial CuResult MemcpyDtoDAsync(ulong destination, ulong source, nuint bytes, nint stream);

    // CUresult cuMemsetD8Async(CUdeviceptr dstDevice, unsigned char uc, size_t N, CUstream hStream)
    [LibraryImport(Lib, EntryPoint = "cuMemsetD8Async")]
    public static partial CuResult MemsetD8Async(ulong destination, byte value, nuint count, nint stream);

    // CUresult cuStreamCreate(CUstream* phStream, unsigned int Flags)
    [LibraryImport(Lib, EntryPoint = "cuStreamCreate")]
    public static partial CuResult StreamCreate(out nint stream, uint flags);

    // CUresult cuStreamDestroy_v2(CUstream hStream)
    [LibraryImport(Lib, EntryPoint = "cuStreamDestroy_v2")]
    public static partial CuResult StreamDestroy(nint stream);

    // CUresult cuStreamSynchronize(CUstream hStream)
    [LibraryImport(Lib, EntryPoint = "cuStreamSynchronize")]
    public static partial CuResult StreamSynchronize(nint stream);

    // CUresult cuEventCreate(CUevent* phEvent, unsigned int Flags)
    [LibraryImport(Lib, EntryPoint = "cuEventCreate")]
    public static partial CuResult EventCreate(out nint @event, uint flags);

    // CUresult cuEventDestroy_v2(CUevent hEvent)
    [LibraryImport(Lib, EntryPoint = "cuEventDestroy_v2")]
    public static partial CuResult EventDestroy(nint @event);

    // CUresult cuEventRecord(CUevent hEvent, CUstream hStream)
    [LibraryImport(Lib, EntryPoint = "cuEventRecord")]
    public static partial CuResult EventRecord(nint @event, nint stream);

    // CUresult cuEventSynchronize(CUevent hEvent)
    [LibraryImport(Lib, EntryPoint = "cuEventSynchronize")]
    public static partial CuResult EventSynchronize(nint @event);

    // CUresult cuEventElapsedTime(float* pMilliseconds, CUevent hStart, CUevent hEnd)
    [LibraryImport(Lib, EntryPoint = "cuEventElapsedTime")]
    public static partial CuResult EventElapsedTime(out float milliseconds, nint start, nint end);

    // CUresult cuModuleLoadData(CUmodule* module, const void* image)
    [LibraryImport(Lib, EntryPoint = "cuModuleLoadData")]
    public static partial CuResult ModuleLoadData(out nint module, void* image);

    // CUresult cuModuleUnload(CUmodule hmod)
    [LibraryImport(Lib, EntryPoint = "cuModuleUnload")]
    public static partial CuResult ModuleUnload(nint module);

    // CUresult cuModuleGetFunction(CUfunction* hfunc, CUmodule hmod, const char* name)
    [LibraryImport(Lib, EntryPoint = "cuModuleGetFunction", StringMarshalling = StringMarshalling.Utf8)]
    public static partial CuResult ModuleGetFunction(out nint function, nint module, string name);

    // CUresult cuFuncGetAttribute(int* pi, CUfunction_attribute attrib, CUfunction hfunc)
    [LibraryImport(Lib, EntryPoint = "cuFuncGetAttribute")]
    public static partial CuResult FuncGetAttribute(out int value, FunctionAttribute attribute, nint function);

    // CUresult cuFuncSetAttribute(CUfunction hfunc, CUfunction_attribute attrib, int value)
    [LibraryImport(Lib, EntryPoint = "cuFuncSetAttribute")]
    public static partial CuResult FuncSetAttribute(nint function, FunctionAttribute attribute, int value);

    // CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,
    //     unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ, unsigned int sharedMemBytes,
    //     CUstream hStream, void** kernelParams, void** extra)
    [LibraryImport(Lib, EntryPoint = "cuLaunchKernel")]
    public static partial CuResult LaunchKernel(nint function, uint gridX, uint gridY, uint gridZ, uint blockX, uint blockY,
        uint blockZ, uint sharedBytes, nint stream, void** parameters, void** extra);

    // CUresult cuStreamBeginCapture_v2(CUstream hStream, CUstreamCaptureMode mode)
    [LibraryImport(Lib, EntryPoint = "cuStreamBeginCapture_v2")]
    public static partial CuResult StreamBeginCapture(nint stream, StreamCaptureMode mode);

    // CUresult cuStreamEndCapture(CUstream hStream, CUgraph* phGraph)
    [LibraryImport(Lib, EntryPoint = "cuStreamEndCapture")]
    public static partial CuResult StreamEndCapture(nint stream, out nint graph);

    // CUresult cuGraphInstantiateWithFlags(CUgraphExec* phGraphExec, CUgraph hGraph, unsigned long long flags)
    [LibraryImport(Lib, EntryPoint = "cuGraphInstantiateWithFlags")]
    public static partial CuResult GraphInstantiateWithFlags(out nint graphExec, nint graph, ulong flags);

    // CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream)
    [LibraryImport(Lib, EntryPoint = "cuGraphLaunch")]
    public static partial CuResult GraphLaunch(nint graphExec, nint stream);

    // CUresult cuGraphExecDestroy(CUgraphExec hGraphExec)
    [LibraryImport(Lib, EntryPoint = "cuGraphExecDestroy")]
    public static partial CuResult GraphExecDestroy(nint graphExec);

    // CUresult cuGraphDestroy(CUgraph hGraph)
    [LibraryImport(Lib, EntryPoint = "cuGraphDestroy")]
    public static partial CuResult GraphDestroy(nint graph);
}

/// <summary>CUdevice_attribute values we read.</summary>
internal enum DeviceAttribute
{
    MaxThreadsPerBlock = 1,
    MaxSharedMemoryPerBlock = 8,
    MultiprocessorCount = 16,
    MemoryClockRate = 36,
    GlobalMemoryBusWidth = 37,
    ComputeCapabilityMajor = 75,
    ComputeCapabilityMinor = 76,
    MaxSharedMemoryPerBlockOptin = 97,
}

/// <summary>CUfunction_attribute values we read or set.</summary>
internal enum FunctionAttribute
{
    MaxThreadsPerBlock = 0,
    SharedSizeBytes = 1,
    ConstSizeBytes = 2,
    LocalSizeBytes = 3,
    NumRegs = 4,
    PtxVersion = 5,
    BinaryVersion = 6,
    MaxDynamicSharedSizeBytes = 8,
}

/// <summary>CUstreamCaptureMode.</summary>
internal enum StreamCaptureMode
{
    Global = 0,
    ThreadLocal = 1,
    Relaxed = 2,
}
