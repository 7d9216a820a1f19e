using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using WeakToStrong.Backends.Cuda;
using WeakToStrong.Backends.Cuda.Interop;
using WeakToStrong.Backends.Cuda.Kernels;

namespace WeakToStrong.Tests.Cuda;

/// <summary>
/// Builds every kernel file with g++ and kernels/emu/cuda_emu.h into a host shared library (one per file), once
/// per content hash of the sources, header, emulator and flags, under the system temp folder.
/// </summary>
internal static class EmulatorBuild
{
    public static readonly string[] Flags =
    [
        "-std=c++17", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter",
        "-Wno-unknown-pragmas", // #pragma unroll is for nvcc/NVRTC
        // Each library keeps its own registry and emulator state: nothing but the emu_* entry points is exported.
        "-fvisibility=hidden", "-fvisibility-inlines-hidden", "-fno-gnu-unique",
    ];

    private static readonly Lazy<Dictionary<string, string>> Libraries = new(Build);

    /// <summary>Kernel file → path of its emulated library.</summary>
    public static IReadOnlyDictionary<string, string> Paths => Libraries.Value;

    public static string KernelsFolder { get; } = KernelSources.FindFolder(AppContext.BaseDirectory)
        ?? throw new DirectoryNotFoundException("kernels/ not found above " + AppContext.BaseDirectory);

    private static Dictionary<string, string> Build()
    {
        string emulator = Path.Combine(KernelsFolder, "emu", "cuda_emu.h");
        var hash = new StringBuilder(string.Join(' ', Flags));
        foreach (string f in KernelCatalog.Modules.Select(m => m.File).Append(KernelCatalog.Header))
            hash.Append(f).Append(File.ReadAllText(Path.Combine(KernelsFolder, f)));
        hash.Append(File.ReadAllText(emulator));
        string key = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(hash.ToString())))[..24];
        string folder = Path.Combine(Path.GetTempPath(), "w2s-emu-" + key);
        Directory.CreateDirectory(folder);
        var result = new Dictionary<string, string>();
        var errors = new List<string>();
        Parallel.ForEach(KernelCatalog.Modules, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) }, module =>
        {
            string output = Path.Combine(folder, "lib" + Path.GetFileNameWithoutExtension(module.File) + ".so");
            lock (result) result[module.File] = output;
            if (File.Exists(output)) return;
            string temporary = output + "." + Environment.ProcessId + ".tmp";
            var start = new ProcessStartInfo("g++") { RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (string flag in Flags) start.ArgumentList.Add(flag);
            foreach (string a in new[] { "-include", emulator, "-I", KernelsFolder, "-x", "c++", Path.Combine(KernelsFolder, module.File), "-o", temporary })
                start.ArgumentList.Add(a);
            using var p = Process.Start(start)!;
            string stderr = p.StandardError.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0)
            {
                lock (errors) errors.Add($"g++ {module.File}:\n{stderr}");
                return;
            }
            File.Move(temporary, output, overwrite: true);
        });
        if (errors.Count > 0) throw new InvalidOperationException(string.Join("\n", errors));
        return result;
    }
}

/// <summary>
/// <see cref="IDeviceRuntime"/> over the emulated kernels: "device" memory is host memory, a launch runs the
/// kernel's blocks on the calling thread (kernels/emu/cuda_emu.h). No GEMM, so <see cref="CudaBackend"/> runs every
/// linear layer through linear.cu.
/// </summary>
internal sealed unsafe class EmulatorRuntime(int multiprocessors = 4) : IDeviceRuntime
{
    private static readonly Dictionary<string, nint> Launchers = [];

    private readonly HashSet<ulong> _allocations = [];

    public string Description => "host emulator";

    /// <summary>Small, so that split-K attention is exercised by short contexts.</summary>
    public int Multiprocessors { get; } = multiprocessors;

    public bool HasGemm => false;

    /// <summary>Kernel launches so far, by name.</summary>
    public Dictionary<string, int> Launches { get; } = [];

    public ulong Allocate(long bytes)
    {
        void* p = NativeMemory.AlignedAlloc((nuint)Math.Max(bytes, 16), 256);
        NativeMemory.Clear(p, (nuint)Math.Max(bytes, 16));
        lock (_allocations) _allocations.Add((ulong)p);
        return (ulong)p;
    }

    public void Free(ulong address)
    {
        lock (_allocations)
            if (!_allocations.Remove(address)) throw new ArgumentException("not an allocation of this runtime", nameof(address));
        NativeMemory.AlignedFree((void*)address);
    }

    public void CopyToDevice(ulong destination, ReadOnlySpan<byte> source) => source.CopyTo(new Span<byte>((void*)destination, source.Length));

    public void CopyToHost(ulong source, Span<byte> destination) => new ReadOnlySpan<byte>((void*)source, destination.Length).CopyTo(destination);

    public void CopyOnDevice(ulong destination, ulong source, long bytes) => Buffer.MemoryCopy((void*)source, (void*)destination, bytes, bytes);

    private List<(string Kernel, Dim3 Grid, Dim3 Block, int Shared, ulong[] Args)>? _capturing;

    public bool CanCapture => true;

    /// <summary>Graphs replayed so far.</summary>
    public int Replays { get; private set; }

    /// <summary>A "graph" here is the recorded launch list with its argument values, replayed in order.</summary>
    public IDisposable Capture(Action issue)
    {
        _capturing = [];
        try
        {
            issue();
            return new Recorded(_capturing);
        }
        finally
        {
            _capturing = null;
        }
    }

    public void Replay(IDisposable graph)
    {
        Replays++;
        ulong* slots = stackalloc ulong[32];
        void** pointers = stackalloc void*[32];
        foreach (var l in ((Recorded)graph).Launches)
        {
            for (int i = 0; i < l.Args.Length; i++)
            {
                slots[i] = l.Args[i];
                pointers[i] = slots + i;
            }
            Launch(l.Kernel, l.Grid, l.Block, l.Shared, pointers, l.Args.Length);
        }
    }

    private sealed record Recorded(List<(string Kernel, Dim3 Grid, Dim3 Block, int Shared, ulong[] Args)> Launches) : IDisposable
    {
        public void Dispose()
        {
        }
    }

    public void Launch(string kernel, Dim3 grid, Dim3 block, int sharedBytes, void** args, int argCount)
    {
        if (_capturing is not null)
        {
            var values = new ulong[argCount];
            for (int i = 0; i < argCount; i++) values[i] = *(ulong*)args[i];
            _capturing.Add((kernel, grid, block, sharedBytes, values));
            return;
        }
        var launch = (delegate* unmanaged<byte*, uint, uint, uint, uint, uint, uint, uint, void**, int>)Launcher(kernel);
        Launches[kernel] = Launches.GetValueOrDefault(kernel) + 1;
        byte[] name = Encoding.ASCII.GetBytes(kernel + "\0");
        fixed (byte* n = name)
        {
            if (launch(n, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z, (uint)sharedBytes, args) != 0)
                throw new InvalidOperationException(LastError(kernel));
        }
    }

    private static string LastError(string kernel)
    {
        var error = (delegate* unmanaged<byte*>)NativeLibrary.GetExport(Library(KernelCatalog.ModuleOf(kernel).File), "emu_last_error");
        return Marshal.PtrToStringUTF8((nint)error()) ?? "emulator error";
    }

    private static nint Library(string file)
    {
        lock (Launchers)
        {
            if (!Launchers.TryGetValue("lib:" + file, out nint handle))
                Launchers["lib:" + file] = handle = NativeLibrary.Load(EmulatorBuild.Paths[file]);
            return handle;
        }
    }

    private static nint Launcher(string kernel)
    {
        nint library = Library(KernelCatalog.ModuleOf(kernel).File);
        return NativeLibrary.GetExport(library, "emu_launch");
    }

    /// <summary>The kernel names a module's emulated library registered.</summary>
    public static string[] RegisteredKernels(string file)
    {
        var names = (delegate* unmanaged<byte*, int, int>)NativeLibrary.GetExport(Library(file), "emu_kernel_names");
        int length = names(null, 0);
        var buffer = new byte[length];
        fixed (byte* b = buffer) names(b, length);
        return Encoding.ASCII.GetString(buffer, 0, length - 1).Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    public void Gemm(ulong x, CudaDataType xType, ulong w, CudaDataType wType, ulong y, int rows, int inDim, int outDim, int ldy) =>
        throw new NotSupportedException("the emulator has no GEMM");

    public void Synchronize()
    {
    }

    public void Dispose()
    {
        lock (_allocations)
        {
            foreach (ulong p in _allocations) NativeMemory.AlignedFree((void*)p);
            _allocations.Clear();
        }
    }
}
