using WeakToStrong.Backends;
using WeakToStrong.Backends.Cpu;
using WeakToStrong.Backends.Cuda;
using WeakToStrong.Diagnostics.Ops;

namespace WeakToStrong.Tests.Cuda;

/// <summary>The CPU reference and a CUDA backend side by side, with helpers that put identical data in both.</summary>
internal sealed class BackendPair : IDisposable
{
    private readonly List<Tensor> _tensors = [];

    public BackendPair(IBackend cuda, int seed)
    {
        Cuda = cuda;
        Random = new Random(seed);
    }

    /// <summary>A pair on the kernel emulator.</summary>
    public static BackendPair Emulated(int seed, int multiprocessors = 4) =>
        new(new CudaBackend(new EmulatorRuntime(multiprocessors), new CudaBackendOptions()), seed);

    public CpuBackend Cpu { get; } = new();

    public IBackend Cuda { get; }

    public Random Random { get; }

    public float[] Uniform(long n, float scale = 1f) => HostData.Uniform(Random, n, scale);

    public (Tensor Cpu, Tensor Cuda) Tensors(float[] values, DType dtype = DType.F32)
    {
        byte[] bytes = HostData.Encode(values, dtype);
        var c = Cpu.Allocate(dtype, values.Length);
        var g = Cuda.Allocate(dtype, values.Length);
        Cpu.Upload(c, bytes);
        Cuda.Upload(g, bytes);
        _tensors.Add(c);
        _tensors.Add(g);
        return (c, g);
    }

    public (Tensor Cpu, Tensor Cuda) Zeros(long n) => Tensors(new float[n]);

    public (Tensor Cpu, Tensor Cuda)? Optional(float[]? values) => values is null ? null : Tensors(values);

    public static float[] Read(IBackend backend, Tensor t, long? count = null)
    {
        var a = new float[count ?? t.Length];
        backend.Download(t, a);
        return a;
    }

    /// <summary>Asserts both tensors of a pair agree within <paramref name="tolerance"/>.</summary>
    public void AssertClose((Tensor Cpu, Tensor Cuda) pair, Tolerance tolerance, string what, long? count = null) =>
        tolerance.AssertClose(Read(Cpu, pair.Cpu, count), Read(Cuda, pair.Cuda, count), what);

    public void Dispose()
    {
        foreach (var t in _tensors) t.Dispose();
        Cuda.Dispose();
        Cpu.Dispose();
    }
}
