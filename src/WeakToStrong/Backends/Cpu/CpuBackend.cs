using static WeakToStrong.Backends.Cpu.CpuTensor;

namespace WeakToStrong.Backends.Cpu;

/// <summary>
/// The CPU backend: SIMD (System.Numerics.Tensors, Vector256 and Vector512) and multi-threaded. It is the embedded
/// default and the reference every other backend is tested against, so each op is written for clarity first. Its
/// path (<see cref="Isa"/>) sets the vector width; sums run over 16 lanes in one fixed order on every path
/// (<see cref="CpuMath.Reduce"/>), so every path gives the same bits.
/// <para>
/// This class holds memory and dispatch; each op family lives in its own file, named after the kernel file
/// (kernels/*.cu) it is the reference for: <see cref="CpuEmbed"/> (embed.cu), <see cref="CpuNorm"/> (norm.cu),
/// <see cref="CpuLinear"/> (linear.cu), <see cref="CpuRope"/> (rope.cu), <see cref="CpuAttention"/>
/// (attention.cu), <see cref="CpuActivation"/> (activation.cu), <see cref="CpuLogProb"/> (logprob.cu),
/// <see cref="CpuSampler"/> (sample.cu), <see cref="CpuCopy"/> (copy.cu).
/// </para>
/// </summary>
public sealed unsafe class CpuBackend : IBackend, IBarrierClock, IStackedLinearLoad
{
    /// <summary>A backend on <see cref="CpuIsas.Default"/>: the widest vectors this CPU has, unless <c>W2S_CPU_ISA</c>
    /// forces a path.</summary>
    public CpuBackend() : this(CpuIsas.Default)
    {
    }

    /// <summary>A backend on the given path; throws <see cref="ArgumentException"/> if this CPU cannot run it.</summary>
    public CpuBackend(CpuIsa isa)
    {
        if (!CpuIsas.IsSupported(isa)) throw new ArgumentException($"this CPU cannot run the {CpuIsas.Name(isa)} path", nameof(isa));
        Isa = isa;
    }

    public string Name => "cpu";

    /// <summary>The vector width every op of this backend runs at (results are the same bits on every path).</summary>
    public CpuIsa Isa { get; }

    bool IBarrierClock.TimeWaits
    {
        get => CpuParallel.TimeWaits;
        set => CpuParallel.TimeWaits = value;
    }

    long IBarrierClock.WaitTicks => CpuParallel.WaitTicks;

    long IBarrierClock.Waits => CpuParallel.Waits;

    public Tensor Allocate(DType dtype, long length) => new CpuTensor(dtype, length);

    public void Upload(Tensor destination, ReadOnlySpan<byte> source, long elementOffset = 0)
    {
        var d = AsCpu(destination);
        long byteOffset = elementOffset * d.DType.Size();
        if (byteOffset < 0 || byteOffset + source.Length > d.ByteLength) throw new ArgumentOutOfRangeException(nameof(elementOffset));
        source.CopyTo(new Span<byte>(d.Pointer + byteOffset, source.Length));
    }

    public void Download(Tensor source, Span<float> destination)
    {
        var s = AsCpu(source);
        if (s.DType != DType.F32) throw new ArgumentException("only F32 tensors can be downloaded", nameof(source));
        if (destination.Length > s.Length) throw new ArgumentOutOfRangeException(nameof(destination));
        new ReadOnlySpan<float>(s.F32, destination.Length).CopyTo(destination);
    }

    public void BeginBatch(BatchLayout layout) => ArgumentNullException.ThrowIfNull(layout);

    public void Embed(BatchLayout layout, Tensor tokenEmbedding, Tensor? positionEmbedding, Tensor x, int dim) =>
        CpuEmbed.Embed(layout, tokenEmbedding, positionEmbedding, x, dim);

    public void AddNorm(Tensor residual, Tensor? delta, Tensor weight, Tensor? bias, Tensor y, int rows, int dim, NormKind kind, float eps) =>
        CpuNorm.AddNorm(Isa, residual, delta, weight, bias, y, rows, dim, kind, eps);

    /// <summary>Packs the weight into 16-row panels (<see cref="CpuLinear.Pack"/>), in its own dtype.</summary>
    public Tensor PrepareLinear(Tensor w, int outDim, int inDim)
    {
        var wt = AsCpu(w);
        if (wt.PackedRows > 0) throw new ArgumentException("weight is already prepared", nameof(w));
        var packed = CpuLinear.Pack(wt, outDim, inDim);
        w.Dispose();
        return packed;
    }

    public Tensor LoadLinear(ReadOnlySpan<byte> bytes, DType dtype, int outDim, int inDim, bool transposed = false)
    {
        if (bytes.Length != (long)outDim * inDim * dtype.Size()) throw new ArgumentException($"{bytes.Length} bytes are not a [{outDim}, {inDim}] {dtype} weight", nameof(bytes));
        fixed (byte* source = bytes)
            return transposed ? CpuLinear.PackFromTransposed(source, dtype, outDim, inDim) : CpuLinear.PackFrom(source, dtype, outDim, inDim);
    }

    Tensor IStackedLinearLoad.LoadLinearStacked(ReadOnlySpan<nint> parts, ReadOnlySpan<int> partRows, DType dtype, int inDim) =>
        CpuLinear.PackFromParts(parts, partRows, dtype, inDim);

    /// <summary><see cref="LinearWeights.Int8"/> quantizes straight from the bytes into int8 panels (CpuLinear.Int8.cs).</summary>
    public Tensor LoadLinear(ReadOnlySpan<byte> bytes, DType dtype, int outDim, int inDim, bool transposed, LinearWeights format)
    {
        if (format == LinearWeights.Stored) return LoadLinear(bytes, dtype, outDim, inDim, transposed);
        if (format != LinearWeights.Int8) throw new ArgumentOutOfRangeException(nameof(format), format, null);
        if (bytes.Length != (long)outDim * inDim * dtype.Size()) throw new ArgumentException($"{bytes.Length} bytes are not a [{outDim}, {inDim}] {dtype} weight", nameof(bytes));
        fixed (byte* source = bytes)
            return CpuLinear.PackInt8(source, dtype, outDim, inDim, transposed);
    }

    public void Linear(Tensor x, Tensor w, Tensor? bias, Tensor y, int rows, int inDim, int outDim) =>
        CpuLinear.Run(Isa, P(x), AsCpu(w), POrNull(bias), P(y), rows, inDim, outDim);

    public void RopeAndCacheWrite(BatchLayout layout, Tensor qkv, Tensor keyCache, Tensor valueCache, RopeTable? rope, int heads, int kvHeads, int headDim, int blockSize) =>
        CpuRope.RopeAndCacheWrite(layout, qkv, keyCache, valueCache, rope, heads, kvHeads, headDim);

    public void Attention(BatchLayout layout, Tensor qkv, Tensor keyCache, Tensor valueCache, Tensor output, int heads, int kvHeads, int headDim, int blockSize) =>
        CpuAttention.Attention(Isa, layout, qkv, keyCache, valueCache, output, heads, kvHeads, headDim, blockSize);

    public void GeluTanh(Tensor x, long count) => CpuActivation.GeluTanh(Isa, x, count);

    public void SiluGate(Tensor gateUp, Tensor y, int rows, int ff) => CpuActivation.SiluGate(Isa, gateUp, y, rows, ff);

    public void GatherRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination, int dim) => CpuCopy.GatherRows(source, rows, destination, dim);

    public void LogProbOfTargets(Tensor logits, int rows, int vocab, ReadOnlySpan<int> targets, Span<float> result) =>
        CpuLogProb.LogProbOfTargets(Isa, logits, rows, vocab, targets, result);

    public void Sample(Tensor logits, int vocab, ReadOnlySpan<SamplingRow> rows, Span<int> result)
    {
        nint l = (nint)P(logits);
        var settings = rows.ToArray();
        var tokens = new int[settings.Length];
        CpuParallel.For(settings.Length, r => tokens[r] = CpuSampler.Sample(new ReadOnlySpan<float>((float*)l + (long)r * vocab, vocab), settings[r]), serial: settings.Length == 1);
        tokens.CopyTo(result);
    }

    public void CopyBlock(Tensor keyCache, Tensor valueCache, KvGeometry geometry, int sourceBlock, int destinationBlock) =>
        CpuCopy.CopyBlock(keyCache, valueCache, geometry, sourceBlock, destinationBlock);

    public void Dispose()
    {
    }
}
