using System.Diagnostics;
using WeakToStrong.Backends.Cuda.Interop;

namespace WeakToStrong.Tests.Cuda;

/// <summary>What a machine offers for the CUDA tests; each property is null when present, else the reason it is not.</summary>
internal static class Requirements
{
    private static readonly Lazy<string?> NvrtcReason = new(() =>
        NativeLibraries.TryLoad(CudaLibrary.Nvrtc, out string reason) ? null : reason + " (tools/ci/kernels.sh installs libnvrtc11.2)");

    private static readonly Lazy<string?> CompilerReason = new(() =>
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("g++", "--version") { RedirectStandardOutput = true, RedirectStandardError = true });
            if (p is null) return "g++ not found: the emulated kernels cannot be built (tools/ci/kernels.sh installs it)";
            p.WaitForExit();
            return p.ExitCode == 0 ? null : "g++ --version failed: the emulated kernels cannot be built";
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return "g++ not found: the emulated kernels cannot be built (tools/ci/kernels.sh installs it)";
        }
    });

    private static readonly Lazy<string?> DeviceReason = new(() =>
    {
        try
        {
            Cu.OpenDevice(0);
            return null;
        }
        catch (CudaUnavailableException e)
        {
            return e.Message;
        }
    });

    public static string? Nvrtc => NvrtcReason.Value;

    public static string? Compiler => CompilerReason.Value;

    public static string? Device => DeviceReason.Value;
}

/// <summary>A fact that needs NVRTC; skipped, with the reason, where there is none.</summary>
public sealed class NvrtcFactAttribute : FactAttribute
{
    public NvrtcFactAttribute() => Skip = Requirements.Nvrtc;
}

/// <summary>A fact that runs kernels in the host emulator; skipped, with the reason, where g++ is missing.</summary>
public sealed class EmulatorFactAttribute : FactAttribute
{
    public EmulatorFactAttribute() => Skip = Requirements.Compiler;
}

/// <summary>A theory that runs kernels in the host emulator; skipped, with the reason, where g++ is missing.</summary>
public sealed class EmulatorTheoryAttribute : TheoryAttribute
{
    public EmulatorTheoryAttribute() => Skip = Requirements.Compiler;
}

/// <summary>A fact that needs a CUDA device; skipped, with the reason, where there is none.</summary>
public sealed class GpuFactAttribute : FactAttribute
{
    public GpuFactAttribute() => Skip = Requirements.Device;
}

/// <summary>A theory that needs a CUDA device; skipped, with the reason, where there is none.</summary>
public sealed class GpuTheoryAttribute : TheoryAttribute
{
    public GpuTheoryAttribute() => Skip = Requirements.Device;
}
