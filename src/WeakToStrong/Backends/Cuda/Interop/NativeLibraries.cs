using System.Reflection;
using System.Runtime.InteropServices;

namespace WeakToStrong.Backends.Cuda.Interop;

/// <summary>The native libraries the CUDA backend binds to.</summary>
internal enum CudaLibrary
{
    /// <summary>The driver API, installed with the NVIDIA driver.</summary>
    Driver,

    /// <summary>Run-time compilation of CUDA C++ (toolkit or a distribution package).</summary>
    Nvrtc,

    /// <summary>BLAS for the large GEMMs.</summary>
    Cublas,
}

/// <summary>
/// Finds and loads the CUDA libraries. The raw imports name logical libraries (<see cref="DriverName"/> …) that
/// a <see cref="DllImportResolver"/> maps onto the first file that loads, in <see cref="Candidates"/> order:
/// newest major version first, each tried on the loader's search path, then under <c>$CUDA_PATH/lib64</c>, then
/// under <c>/usr/local/cuda/lib64</c>.
/// </summary>
internal static class NativeLibraries
{
    public const string DriverName = "w2s-cuda";
    public const string NvrtcName = "w2s-nvrtc";
    public const string CublasName = "w2s-cublas";

    private static readonly Lock Gate = new();
    private static readonly Dictionary<CudaLibrary, nint> Loaded = [];
    private static bool _resolverSet;

    /// <summary>File names, newest first.</summary>
    public static IReadOnlyList<string> FileNames(CudaLibrary library) => library switch
    {
        CudaLibrary.Driver => ["libcuda.so.1", "libcuda.so"],
        CudaLibrary.Nvrtc => ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"],
        CudaLibrary.Cublas => ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"],
        _ => throw new ArgumentOutOfRangeException(nameof(library)),
    };

    /// <summary>Every path tried for <paramref name="library"/>, in order.</summary>
    public static IReadOnlyList<string> Candidates(CudaLibrary library, string? cudaPath)
    {
        var folders = new List<string>();
        if (!string.IsNullOrWhiteSpace(cudaPath)) folders.Add(Path.Combine(cudaPath, "lib64"));
        folders.Add("/usr/local/cuda/lib64");
        var result = new List<string>();
        foreach (string name in FileNames(library))
        {
            result.Add(name);
            if (library != CudaLibrary.Driver)
                foreach (string folder in folders) result.Add(Path.Combine(folder, name));
        }
        return result;
    }

    /// <summary>Loads <paramref name="library"/> (once); false with a one-line reason when no candidate loads.</summary>
    public static bool TryLoad(CudaLibrary library, out string reason)
    {
        EnsureResolver();
        lock (Gate)
        {
            reason = "";
            if (Loaded.ContainsKey(library)) return true;
            foreach (string candidate in Candidates(library, Environment.GetEnvironmentVariable("CUDA_PATH")))
            {
                if (NativeLibrary.TryLoad(candidate, out nint handle))
                {
                    Loaded[library] = handle;
                    return true;
                }
            }
            reason = library switch
            {
                CudaLibrary.Driver => "no CUDA driver: libcuda.so.1 not found",
                CudaLibrary.Nvrtc => "no NVRTC: none of libnvrtc.so.13/.12/.11.2 found (searched the loader path, $CUDA_PATH/lib64, /usr/local/cuda/lib64)",
                _ => "no cuBLAS: none of libcublas.so.13/.12/.11 found (searched the loader path, $CUDA_PATH/lib64, /usr/local/cuda/lib64)",
            };
            return false;
        }
    }

    /// <summary>Loads <paramref name="library"/> or throws <see cref="CudaUnavailableException"/> with the reason.</summary>
    public static void Require(CudaLibrary library)
    {
        if (!TryLoad(library, out string reason)) throw new CudaUnavailableException(reason);
    }

    /// <summary>Whether <paramref name="library"/> has been loaded.</summary>
    public static bool IsLoaded(CudaLibrary library)
    {
        lock (Gate) return Loaded.ContainsKey(library);
    }

    private static void EnsureResolver()
    {
        lock (Gate)
        {
            if (_resolverSet) return;
            NativeLibrary.SetDllImportResolver(typeof(NativeLibraries).Assembly, Resolve);
            _resolverSet = true;
        }
    }

    private static nint Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        CudaLibrary? library = name switch
        {
            DriverName => CudaLibrary.Driver,
            NvrtcName => CudaLibrary.Nvrtc,
            CublasName => CudaLibrary.Cublas,
            _ => null,
        };
        if (library is null) return 0;
        if (!TryLoad(library.Value, out _)) return 0;
        lock (Gate) return Loaded[library.Value];
    }
}
