using System.Security.Cryptography;
using System.Text;
using WeakToStrong.Backends.Cuda.Interop;

namespace WeakToStrong.Backends.Cuda.Kernels;

/// <summary>
/// Compiles kernel modules with NVRTC for one architecture and caches the CUBIN on disk. The cache key is the
/// SHA-256 of the module source, the shared header, the options (architecture included) and NVRTC's version,
/// so any change to any of them compiles afresh; files live under
/// <c>$XDG_CACHE_HOME/weaktostrong/kernels</c> (or <c>~/.cache/weaktostrong/kernels</c>).
/// </summary>
internal sealed class KernelCompiler(KernelSources sources, string architecture, string? cacheFolder = null)
{
    /// <summary>The options every compile uses (the architecture comes first).</summary>
    public static IReadOnlyList<string> Options(string architecture, bool verbose = false)
    {
        var options = new List<string> { $"--gpu-architecture={architecture}", "-default-device", "--std=c++17" };
        if (verbose) options.Add("--ptxas-options=-v");
        return options;
    }

    /// <summary>"sm_80" from a compute capability.</summary>
    public static string Architecture(int major, int minor) => $"sm_{major}{minor}";

    /// <summary>True for names of the form sm_XX / sm_XXX.</summary>
    public static bool IsArchitecture(string name) =>
        name.StartsWith("sm_", StringComparison.Ordinal) && name.Length is >= 5 and <= 6 && name[3..].All(char.IsAsciiDigit);

    public static string DefaultCacheFolder()
    {
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        string root = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache");
        return Path.Combine(root, "weaktostrong", "kernels");
    }

    /// <summary>The cache key of a module: hex SHA-256 over everything that changes the binary.</summary>
    public static string CacheKey(string source, string header, IReadOnlyList<string> options, string compilerVersion)
    {
        var text = new StringBuilder();
        text.Append("source\n").Append(source).Append("\nheader\n").Append(header).Append("\noptions\n");
        foreach (string o in options) text.Append(o).Append('\n');
        text.Append("nvrtc ").Append(compilerVersion);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    public string Target { get; } = architecture;

    private string CacheFolder { get; } = cacheFolder ?? DefaultCacheFolder();

    /// <summary>The module's CUBIN: from the cache when the key matches, else compiled (and cached).</summary>
    public byte[] Image(KernelModule module)
    {
        var (major, minor) = Nvrtc.Version();
        var options = Options(Target);
        string key = CacheKey(sources[module.File], sources.Header, options, $"{major}.{minor}");
        string path = Path.Combine(CacheFolder, $"{Path.GetFileNameWithoutExtension(module.File)}-{Target}-{key[..32]}.cubin");
        if (File.Exists(path)) return File.ReadAllBytes(path);
        var output = Compile(module, verbose: false);
        try
        {
            Directory.CreateDirectory(CacheFolder);
            string temporary = path + "." + Environment.ProcessId + ".tmp";
            File.WriteAllBytes(temporary, output.Image);
            File.Move(temporary, path, overwrite: true);
        }
        catch (IOException)
        {
            // A read-only or full cache costs a recompile next time, nothing more.
        }
        catch (UnauthorizedAccessException)
        {
        }
        return output.Image;
    }

    /// <summary>Compiles a module (no cache); verbose adds ptxas' resource report to the log.</summary>
    public NvrtcOutput Compile(KernelModule module, bool verbose) =>
        Nvrtc.Compile(sources[module.File], module.File, [(KernelCatalog.Header, sources.Header)], Options(Target, verbose));
}
