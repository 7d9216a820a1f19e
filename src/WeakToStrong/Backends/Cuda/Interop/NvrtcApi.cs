using System.Runtime.InteropServices;

namespace WeakToStrong.Backends.Cuda.Interop;

/// <summary>Raw imports of NVRTC (<c>nvrtc.h</c>); statuses are checked by <see cref="Nvrtc"/>.</summary>
internal static unsafe partial class NvrtcApi
{
    private const string Lib = NativeLibraries.NvrtcName;

    // const char* nvrtcGetErrorString(nvrtcResult result)
    [LibraryImport(Lib, EntryPoint = "nvrtcGetErrorString")]
    public static partial nint GetErrorString(NvrtcResult result);

    // nvrtcResult nvrtcVersion(int* major, int* minor)
    [LibraryImport(Lib, EntryPoint = "nvrtcVersion")]
    public static partial NvrtcResult Version(out int major, out int minor);

    // nvrtcResult nvrtcCreateProgram(nvrtcProgram* prog, const char* src, const char* name, int numHeaders,
    //     const char* const* headers, const char* const* includeNames)
    [LibraryImport(Lib, EntryPoint = "nvrtcCreateProgram")]
    public static partial NvrtcResult CreateProgram(out nint program, byte* source, byte* name, int headerCount, byte** headers, byte** includeNames);

    // nvrtcResult nvrtcDestroyProgram(nvrtcProgram* prog)
    [LibraryImport(Lib, EntryPoint = "nvrtcDestroyProgram")]
    public static partial NvrtcResult DestroyProgram(ref nint program);

    // nvrtcResult nvrtcCompileProgram(nvrtcProgram prog, int numOptions, const char* const* options)
    [LibraryImport(Lib, EntryPoint = "nvrtcCompileProgram")]
    public static partial NvrtcResult CompileProgram(nint program, int optionCount, byte** options);

    // nvrtcResult nvrtcGetPTXSize(nvrtcProgram prog, size_t* ptxSizeRet)
    [LibraryImport(Lib, EntryPoint = "nvrtcGetPTXSize")]
    public static partial NvrtcResult GetPtxSize(nint program, out nuint size);

    // nvrtcResult nvrtcGetPTX(nvrtcProgram prog, char* ptx)
    [LibraryImport(Lib, EntryPoint = "nvrtcGetPTX")]
    public static partial NvrtcResult GetPtx(nint program, byte* ptx);

    // nvrtcResult nvrtcGetCUBINSize(nvrtcProgram prog, size_t* cubinSizeRet)   (NVRTC ≥ 11.1)
    [LibraryImport(Lib, EntryPoint = "nvrtcGetCUBINSize")]
    public static partial NvrtcResult GetCubinSize(nint program, out nuint size);

    // nvrtcResult nvrtcGetCUBIN(nvrtcProgram prog, char* cubin)   (NVRTC ≥ 11.1)
    [LibraryImport(Lib, EntryPoint = "nvrtcGetCUBIN")]
    public static partial NvrtcResult GetCubin(nint program, byte* cubin);

    // nvrtcResult nvrtcGetProgramLogSize(nvrtcProgram prog, size_t* logSizeRet)
    [LibraryImport(Lib, EntryPoint = "nvrtcGetProgramLogSize")]
    public static partial NvrtcResult GetProgramLogSize(nint program, out nuint size);

    // nvrtcResult nvrtcGetProgramLog(nvrtcProgram prog, char* log)
    [LibraryImport(Lib, EntryPoint = "nvrtcGetProgramLog")]
    public static partial NvrtcResult GetProgramLog(nint program, byte* log);

    // nvrtcResult nvrtcGetNumSupportedArchs(int* numArchs)   (NVRTC ≥ 11.2)
    [LibraryImport(Lib, EntryPoint = "nvrtcGetNumSupportedArchs")]
    public static partial NvrtcResult GetNumSupportedArchs(out int count);

    // nvrtcResult nvrtcGetSupportedArchs(int* supportedArchs)   (NVRTC ≥ 11.2)
    [LibraryImport(Lib, EntryPoint = "nvrtcGetSupportedArchs")]
    public static partial NvrtcResult GetSupportedArchs(int* archs);
}
