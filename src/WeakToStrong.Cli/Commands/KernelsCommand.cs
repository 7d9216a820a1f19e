using System.CommandLine;
using WeakToStrong.Backends.Cuda;

namespace WeakToStrong.Cli.Commands;

/// <summary>
/// <c>w2s kernels [--arch sm_80|sm_90]… [--json]</c>: compiles every CUDA kernel with NVRTC (no GPU needed) and
/// prints registers, shared memory and spills per kernel; exits 1 on a compile error or any spill.
/// </summary>
internal static class KernelsCommand
{
    public static Command Create()
    {
        var arch = new Option<string[]>("--arch") { Description = "target architecture(s), e.g. sm_80 sm_90 (default: both)", AllowMultipleArgumentsPerToken = true };
        var json = Cli.Json();
        var command = new Command("kernels", "Compile every CUDA kernel with NVRTC and report registers, shared memory and spills") { arch, json };
        command.SetAction(r => Cli.Run(() => KernelCheck.Run(r.GetValue(arch) ?? [], r.GetValue(json), Console.Out, Console.Error)));
        return command;
    }
}
