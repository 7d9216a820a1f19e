using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace WeakToStrong.Backends.Cuda.Interop;

/// <summary>What NVRTC produced for one program.</summary>
/// <param name="Image">CUBIN for a real sm_XX architecture, else PTX (NUL-terminated), loadable by cuModuleLoadData.</param>
/// <param name="IsCubin">Whether <paramref name="Image"/> is CUBIN.</param>
/// <param name="Log">The program log (with --ptxas-options=-v, ptxas' register/shared/spill report).</param>
internal sealed record NvrtcOutput(byte[] Image, bool IsCubin, string Log);

/// <summary>Typed wrapper over <see cref="NvrtcApi"/>.</summary>
internal static unsafe class Nvrtc
{
    public static void ThrowIfFailed(NvrtcResult status, [CallerArgumentExpression(nameof(status))] string call = "", string log = "")
    {
        if (status != NvrtcResult.Success) throw new NvrtcException(Cu.CallName(call), status, ErrorName(status), log);
    }

    public static string ErrorName(NvrtcResult status) => Marshal.PtrToStringUTF8(NvrtcApi.GetErrorString(status)) ?? status.ToString();

    /// <summary>NVRTC's version, e.g. (11, 8); throws <see cref="CudaUnavailableException"/> when there is no NVRTC.</summary>
    public static (int Major, int Minor) Version()
    {
        NativeLibraries.Require(CudaLibrary.Nvrtc);
        ThrowIfFailed(NvrtcApi.Version(out int major, out int minor));
        return (major, minor);
    }

    /// <summary>The sm_XX numbers this NVRTC can target.</summary>
    public static int[] SupportedArchitectures()
    {
        NativeLibraries.Require(CudaLibrary.Nvrtc);
        ThrowIfFailed(NvrtcApi.GetNumSupportedArchs(out int count));
        var archs = new int[count];
        fixed (int* p = archs) ThrowIfFailed(NvrtcApi.GetSupportedArchs(p));
        return archs;
    }

    /// <summary>Compiles one translation unit; a compile error throws <see cref="NvrtcException"/> with the log.</summary>
    public static NvrtcOutput Compile(string source, string name, IReadOnlyList<(string Name, string Source)> headers, IReadOnlyList<string> options)
    {
        NativeLibraries.Require(CudaLibrary.Nvrtc);
        using var strings = new Utf8Strings();
        byte* src = strings.Add(source), fileName = strings.Add(name);
        byte** headerSources = stackalloc byte*[Math.Max(headers.Count, 1)];
        byte** headerNames = stackalloc byte*[Math.Max(headers.Count, 1)];
        for (int i = 0; i < headers.Count; i++)
        {
            headerSources[i] = strings.Add(headers[i].Source);
            headerNames[i] = strings.Add(headers[i].Name);
        }
        byte** opts = stackalloc byte*[Math.Max(options.Count, 1)];
        for (int i = 0; i < options.Count; i++) opts[i] = strings.Add(options[i]);

        ThrowIfFailed(NvrtcApi.CreateProgram(out nint program, src, fileName, headers.Count, headerSources, headerNames));
        try
        {
            var status = NvrtcApi.CompileProgram(program, options.Count, opts);
            string log = Log(program);
            ThrowIfFailed(status, $"nvrtcCompileProgram({name})", log);
            bool cubin = options.Any(o => o.StartsWith("--gpu-architecture=sm_", StringComparison.Ordinal));
            byte[] image;
            if (cubin)
            {
                ThrowIfFailed(NvrtcApi.GetCubinSize(program, out nuint size));
                image = new byte[(int)size];
                fixed (byte* p = image) ThrowIfFailed(NvrtcApi.GetCubin(program, p));
            }
            else
            {
                ThrowIfFailed(NvrtcApi.GetPtxSize(program, out nuint size));
                image = new byte[(int)size];
                fixed (byte* p = image) ThrowIfFailed(NvrtcApi.GetPtx(program, p));
            }
            return new NvrtcOutput(image, cubin, log);
        }
        finally
        {
            // Status ignored on purpose: this runs while a compile error may be propagating, and a failure to free the
            // program must not replace it (the program holds host memory only).
            _ = NvrtcApi.DestroyProgram(ref program);
        }
    }

    private static string Log(nint program)
    {
        ThrowIfFailed(NvrtcApi.GetProgramLogSize(program, out nuint size));
        if (size <= 1) return "";
        var bytes = new byte[(int)size];
        fixed (byte* p = bytes) ThrowIfFailed(NvrtcApi.GetProgramLog(program, p));
        return Encoding.UTF8.GetString(bytes, 0, bytes.Length - 1);
    }

    /// <summary>NUL-terminated UTF-8 copies in native memory, freed together.</summary>
    private sealed class Utf8Strings : IDisposable
    {
        private readonly List<nint> _allocations = [];

        public byte* Add(string s)
        {
            int n = Encoding.UTF8.GetByteCount(s);
            byte* p = (byte*)NativeMemory.Alloc((nuint)n + 1);
            Encoding.UTF8.GetBytes(s, new Span<byte>(p, n));
            p[n] = 0;
            _allocations.Add((nint)p);
            return p;
        }

        public void Dispose()
        {
            foreach (nint p in _allocations) NativeMemory.Free((void*)p);
        }
    }
}
