using WeakToStrong.Backends.Cpu;

namespace WeakToStrong.Backends;

/// <summary>Creates a backend by name.</summary>
public static class BackendFactory
{
    public static IReadOnlyList<string> Names { get; } = ["cpu", "cuda"];

    /// <summary>"cpu" or "cuda"; anything else, or a device that cannot run here, throws with the reason.</summary>
    public static IBackend Create(string device)
    {
        ArgumentException.ThrowIfNullOrEmpty(device);
        return device switch
        {
            "cpu" => new CpuBackend(),
            "cuda" => throw new NotSupportedException("the cuda backend is not built yet; use --device cpu"),
            _ => throw new ArgumentException($"unknown device '{device}' (known: {string.Join(", ", Names)})", nameof(device)),
        };
    }
}
