using System.Runtime.InteropServices;
using WeakToStrong.Backends;
using WeakToStrong.Backends.Cuda;

namespace WeakToStrong.Diagnostics.Ops;

/// <summary>
/// One backend op at one shape, on inputs drawn from a seed: run on a backend (<see cref="Prepare"/>), or
/// evaluated from its definition in float64 (<see cref="Reference"/>). The same seed gives the same inputs to both
/// and to every backend, so any two can be compared output by output.
/// </summary>
public abstract class OpCase
{
    protected OpCase(string op, string dtype, string shape, bool modelSized)
    {
        Op = op;
        Dtype = dtype;
        Shape = shape;
        ModelSized = modelSized;
    }

    /// <summary>The op's name in <c>w2s ops --op</c> (embed, linear, attention …).</summary>
    public string Op { get; }

    /// <summary>The weight type for ops that read weights (f32, bf16, f16); f32 for the others.</summary>
    public string Dtype { get; }

    /// <summary>The shape in words, e.g. "rows=3 in=17 out=5 +bias".</summary>
    public string Shape { get; }

    /// <summary>A model-sized shape (left out of the emulated-kernel tests, which would take minutes on it).</summary>
    public bool ModelSized { get; }

    /// <summary>Largest error a backend may show against the reference (see <see cref="OpThresholds"/>).</summary>
    public double Threshold => OpThresholds.For(Op, Dtype);

    /// <summary>False where only another backend can serve as reference (stochastic sampling: the draws follow
    /// the CPU sampler's counter-based generator, which a plain float64 evaluation does not reproduce).</summary>
    public virtual bool HasFloat64Reference => true;

    /// <summary>
    /// Most calls in one timed sample. An op that works in place runs on its own output from the second call on;
    /// where that drifts (GELU halves small negative values each call, reaching subnormals after ~126 calls and
    /// zeros after ~150), the samples stay short and the inputs are restored between them.
    /// </summary>
    public virtual int MaxCallsPerSample => 10_000;

    /// <summary>The fewest bytes the op moves (inputs read once, outputs written once) and its floating-point operations.</summary>
    public abstract (double Bytes, double Flops) Cost { get; }

    /// <summary>Uploads the inputs drawn from <paramref name="seed"/> to <paramref name="backend"/>; nothing runs until <see cref="OpRun.Invoke"/>.</summary>
    public abstract OpRun Prepare(IBackend backend, int seed);

    /// <summary>The outputs in float64, evaluated from the op's definition on the inputs drawn from <paramref name="seed"/>.</summary>
    public abstract double[][] Reference(int seed);

    /// <summary>
    /// How far output <paramref name="actual"/> of the inputs drawn from <paramref name="seed"/> is from
    /// <paramref name="expected"/>: the normalised mean squared error Σ(a − r)² / Σr² (Σ(a − r)² where the
    /// reference is all zeros); infinity for a NaN or a length mismatch.
    /// </summary>
    public virtual double Error(int seed, double[] expected, float[] actual) => OpThresholds.NormalisedSquaredError(expected, actual);

    public override string ToString() => $"{Op} {Dtype} {Shape}";
}

/// <summary>An op with its inputs on a backend: <see cref="Invoke"/> runs it (again), <see cref="Outputs"/> reads the results back.</summary>
public sealed class OpRun : IDisposable
{
    private readonly IBackend _backend;
    private readonly List<Tensor> _owned;
    private readonly Action _invoke;
    private readonly Func<float[][]> _outputs;
    private readonly Action? _reset;

    internal OpRun(IBackend backend, List<Tensor> owned, Action invoke, Func<float[][]> outputs, Action? reset)
    {
        _backend = backend;
        _owned = owned;
        _invoke = invoke;
        _outputs = outputs;
        _reset = reset;
    }

    public void Invoke() => _invoke();

    /// <summary>Restores inputs an in-place op has overwritten (where the case says they drift).</summary>
    public void Reset() => _reset?.Invoke();

    public float[][] Outputs() => _outputs();

    /// <summary>Waits until the work issued on the backend is done (device backends run asynchronously).</summary>
    public void Synchronize()
    {
        if (_backend is CudaBackend cuda) cuda.Synchronize();
    }

    public void Dispose()
    {
        foreach (var t in _owned) t.Dispose();
        _owned.Clear();
    }
}

/// <summary>Host-side inputs: seeded uniform values, their bytes in a weight type, and the exact values those bytes hold.</summary>
public static class HostData
{
    public static float[] Uniform(Random random, long n, float scale = 1f)
    {
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = (float)(random.NextDouble() * 2 - 1) * scale;
        return a;
    }

    /// <summary>The bytes of <paramref name="values"/> in <paramref name="dtype"/> (BF16 by truncation, F16 rounded to nearest).</summary>
    public static byte[] Encode(float[] values, DType dtype) => dtype switch
    {
        DType.F32 => MemoryMarshal.AsBytes(values.AsSpan()).ToArray(),
        DType.BF16 => MemoryMarshal.AsBytes(values.Select(v => (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16)).ToArray().AsSpan()).ToArray(),
        DType.F16 => MemoryMarshal.AsBytes(values.Select(v => (Half)v).ToArray().AsSpan()).ToArray(),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "values are F32, BF16 or F16"),
    };

    /// <summary>The values <see cref="Encode"/>'s bytes hold, exactly, as float64.</summary>
    public static double[] Stored(float[] values, DType dtype) => dtype switch
    {
        DType.F32 => values.Select(v => (double)v).ToArray(),
        DType.BF16 => values.Select(v => (double)BitConverter.UInt32BitsToSingle(BitConverter.SingleToUInt32Bits(v) & 0xFFFF0000u)).ToArray(),
        DType.F16 => values.Select(v => (double)(Half)v).ToArray(),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "values are F32, BF16 or F16"),
    };
}

/// <summary>Allocates, uploads and reads back the tensors of one <see cref="OpRun"/>.</summary>
internal sealed class RunBuilder(IBackend backend)
{
    private readonly List<Tensor> _owned = [];

    public IBackend Backend => backend;

    public Tensor Upload(float[] values, DType dtype = DType.F32)
    {
        var t = Own(backend.Allocate(dtype, values.Length));
        backend.Upload(t, HostData.Encode(values, dtype));
        return t;
    }

    public Tensor? UploadOrNull(float[]? values) => values is null ? null : Upload(values);

    public Tensor Zeros(long n) => Own(backend.Allocate(DType.F32, n));

    public Tensor Own(Tensor t)
    {
        _owned.Add(t);
        return t;
    }

    /// <summary>Hands a tensor to <see cref="IBackend.PrepareLinear"/>, which may replace (and dispose) it.</summary>
    public Tensor PrepareLinear(Tensor w, int outDim, int inDim)
    {
        _owned.Remove(w);
        return Own(backend.PrepareLinear(w, outDim, inDim));
    }

    public float[] Read(Tensor t)
    {
        var a = new float[t.Length];
        backend.Download(t, a);
        return a;
    }

    public OpRun Build(Action invoke, Func<float[][]> outputs, Action? reset = null) => new(backend, _owned, invoke, outputs, reset);
}
