using WeakToStrong.Backends.Cpu;

namespace WeakToStrong.Backends;

/// <summary>Creates a backend by name.</summary>
public static class BackendFactory
{
    public static IReadOnlyList<string> Names { get; } = ["cpu", "cuda"];

    /// <summary>
    /// "cpu" or "cuda"; anything else throws <see cref="ArgumentException"/>, and a CUDA device that cannot run here
    /// throws <see cref="Cuda.Interop.CudaUnavailableException"/> with the reason (no driver, no device, no NVRTC).
    /// </summary>
    public static IBackend Create(string device)
    {
        ArgumentException.ThrowIfNullOrEmpty(device);
        return device switch
        {
            "cpu" => new CpuBackend(),
            "cuda" => new Cuda.CudaBackend(),
            _ => throw new ArgumentException($"unknown device '{device}' (known: {string.Join(", ", Names)})", nameof(device)),
        };
    }
}
