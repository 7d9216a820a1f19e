using System.Reflection;

namespace WeakToStrong.Backends.Cuda.Kernels;

/// <summary>
/// The text of the kernel files. Looked up, in order: the folder named by <c>W2S_KERNELS_DIR</c>; resources
/// embedded in this assembly as <c>kernels/&lt;file&gt;</c>; a <c>kernels/</c> folder holding <c>common.cuh</c> in the
/// application's folder or any folder above it (a source checkout).
/// </summary>
internal sealed class KernelSources
{
    private readonly Dictionary<string, string> _files;

    private KernelSources(Dictionary<string, string> files, string origin)
    {
        _files = files;
        Origin = origin;
    }

    /// <summary>Where the sources came from (for messages).</summary>
    public string Origin { get; }

    public string this[string file] =>
        _files.TryGetValue(file, out string? text) ? text : throw new FileNotFoundException($"kernel file '{file}' not found in {Origin}");

    public string Header => this[KernelCatalog.Header];

    private static readonly Lazy<KernelSources> Default = new(Locate);

    public static KernelSources Load() => Default.Value;

    /// <summary>Reads every catalog file from <paramref name="folder"/>.</summary>
    public static KernelSources FromFolder(string folder)
    {
        var files = new Dictionary<string, string>();
        foreach (string name in KernelCatalog.Modules.Select(m => m.File).Append(KernelCatalog.Header))
            files[name] = File.ReadAllText(Path.Combine(folder, name));
        return new KernelSources(files, folder);
    }

    /// <summary>The kernels/ folder of a source checkout above <paramref name="start"/>, or null.</summary>
    public static string? FindFolder(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "kernels");
            if (File.Exists(Path.Combine(candidate, KernelCatalog.Header))) return candidate;
        }
        return null;
    }

    private static KernelSources Locate()
    {
        string? fromEnvironment = Environment.GetEnvironmentVariable("W2S_KERNELS_DIR");
        if (!string.IsNullOrEmpty(fromEnvironment)) return FromFolder(fromEnvironment);

        var assembly = typeof(KernelSources).Assembly;
        var embedded = new Dictionary<string, string>();
        foreach (string name in KernelCatalog.Modules.Select(m => m.File).Append(KernelCatalog.Header))
        {
            using var stream = assembly.GetManifestResourceStream("kernels/" + name);
            if (stream is null) break;
            using var reader = new StreamReader(stream);
            embedded[name] = reader.ReadToEnd();
        }
        if (embedded.Count == KernelCatalog.Modules.Count + 1) return new KernelSources(embedded, "resources of " + assembly.GetName().Name);

        string? folder = FindFolder(AppContext.BaseDirectory);
        if (folder is not null) return FromFolder(folder);
        throw new FileNotFoundException("the kernel sources are neither embedded nor found in a kernels/ folder above " + AppContext.BaseDirectory + "; set W2S_KERNELS_DIR");
    }
}
