using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using WeakToStrong.Backends.Cuda.Interop;
using WeakToStrong.Backends.Cuda.Kernels;
using K = WeakToStrong.Backends.Cuda.Kernels.KernelCatalog;

namespace WeakToStrong.Backends.Cuda;

/// <summary>
/// The CUDA backend: every op of <see cref="IBackend"/> as our kernels (kernels/*.cu, compiled by NVRTC for the
/// device) plus cuBLAS for large GEMMs, issued in order on one stream. Host-returning ops (Download,
/// LogProbOfTargets, Sample) synchronise. The same host code drives the kernel emulator in the tests.
/// <para>
/// With <see cref="CudaBackendOptions.DecodeGraphs"/>, a decode step (one new token per sequence, at most
/// <see cref="CudaBackendOptions.SmallBatchRows"/> sequences) is recorded instead of launched, from BeginBatch to the
/// first op that needs the host (GatherRows, a download …): every layer. The recording is captured once as a CUDA
/// graph and replayed by every later step whose launches are identical — block tables are padded to a power-of-two
/// width and attention is split for that padded context, so steps stay identical until the context crosses a power
/// of two. Per-step data (tokens, positions, slots, tables) lives in device buffers uploaded before the replay.
/// Recording, capture and replay are <see cref="CudaGraphCache"/>'s; this class decides what is recorded.
/// </para>
/// </summary>
public sealed unsafe class CudaBackend : IBackend
{
    private const int DefaultBlock = 256;

    private readonly IDeviceRuntime _runtime;
    private readonly CudaBackendOptions _options;
    private readonly KernelArgs _args = new();
    private readonly ConditionalWeakTable<RopeTable, DeviceBuffer> _ropeTables = new();
    private readonly DeviceBuffer _batch, _tiles, _partials, _small, _scratch;
    private BatchLayout? _layout;
    private long _tokensAt, _positionsAt, _sequencesAt, _slotsAt, _tablesAt; // element offsets into _batch
    private (int Heads, int KvHeads, int Tiles, int MaxContext)? _tileShape;
    private int _tableWidth;
    private readonly CudaGraphCache _graphs;

    /// <summary>Decode graphs captured so far (each costs a capture; every other step with the same launches is a replay).</summary>
    public int GraphsCaptured => _graphs.GraphsCaptured;

    /// <summary>Decode steps run as a graph replay.</summary>
    public int GraphReplays => _graphs.GraphReplays;

    /// <summary>Opens the device named by <paramref name="options"/>; throws <see cref="CudaUnavailableException"/> with the reason when CUDA cannot run here.</summary>
    public CudaBackend(CudaBackendOptions? options = null) : this(new DriverRuntime(options ?? new CudaBackendOptions()), options)
    {
    }

    internal CudaBackend(IDeviceRuntime runtime, CudaBackendOptions? options = null)
    {
        _runtime = runtime;
        _options = options ?? new CudaBackendOptions();
        _batch = new DeviceBuffer(runtime);
        _tiles = new DeviceBuffer(runtime);
        _partials = new DeviceBuffer(runtime);
        _small = new DeviceBuffer(runtime);
        _scratch = new DeviceBuffer(runtime);
        _graphs = new CudaGraphCache(runtime);
    }

    public string Name => "cuda";

    /// <summary>The device in words.</summary>
    public string Device => _runtime.Description;

    /// <summary>The device runtime (the op checks measure its copy bandwidth and GEMM rate).</summary>
    internal IDeviceRuntime Runtime => _runtime;

    /// <summary>
    /// Null when a CUDA device can be opened here, else the one-line reason (no driver, no device …), without
    /// keeping anything open.
    /// </summary>
    public static string? Unavailable(int device = 0)
    {
        try
        {
            Cu.OpenDevice(device);
            return null;
        }
        catch (CudaUnavailableException e)
        {
            return e.Message;
        }
    }

    public Tensor Allocate(DType dtype, long length)
    {
        Flush();
        return new CudaTensor(_runtime, dtype, length);
    }

    private CudaTensor Dev(Tensor t, [CallerArgumentExpression(nameof(t))] string name = "")
    {
        ArgumentNullException.ThrowIfNull(t, name);
        var c = t as CudaTensor ?? throw new ArgumentException($"tensor belongs to another backend ({t.GetType().Name})", name);
        ObjectDisposedException.ThrowIf(c.IsDisposed, c);
        if (!ReferenceEquals(c.Runtime, _runtime)) throw new ArgumentException("tensor belongs to another CUDA backend", name);
        return c;
    }

    private ulong A(Tensor t, [CallerArgumentExpression(nameof(t))] string name = "") => Dev(t, name).Address;

    private ulong AOrNull(Tensor? t) => t is null ? 0 : A(t);

    private static void RequireF32(Tensor t, [CallerArgumentExpression(nameof(t))] string name = "")
    {
        if (t.DType != DType.F32) throw new ArgumentException($"{name} must be F32, is {t.DType}", name);
    }

    private static void RequireLength(Tensor t, long elements, [CallerArgumentExpression(nameof(t))] string name = "")
    {
        if (t.Length < elements) throw new ArgumentException($"{name} has {t.Length} elements, needs {elements}", name);
    }

    private void Launch(string kernel, Dim3 grid, Dim3 block, KernelArgs args, int sharedBytes = 0) => _graphs.Launch(kernel, grid, block, args, sharedBytes);

    /// <summary>Ends a decode recording (replaying its graph); a no-op when none is open.</summary>
    private void Flush() => _graphs.Flush();

    public void Upload(Tensor destination, ReadOnlySpan<byte> source, long elementOffset = 0)
    {
        Flush();
        var d = Dev(destination);
        long byteOffset = elementOffset * d.DType.Size();
        if (byteOffset < 0 || byteOffset + source.Length > d.ByteLength) throw new ArgumentOutOfRangeException(nameof(elementOffset));
        _runtime.CopyToDevice(d.Address + (ulong)byteOffset, source);
    }

    public void Download(Tensor source, Span<float> destination)
    {
        Flush();
        var s = Dev(source);
        if (s.DType != DType.F32) throw new ArgumentException("only F32 tensors can be downloaded", nameof(source));
        if (destination.Length > s.Length) throw new ArgumentOutOfRangeException(nameof(destination));
        _runtime.CopyToHost(s.Address, MemoryMarshal.AsBytes(destination));
    }

    public void BeginBatch(BatchLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        Flush();
        int n = layout.TokenCount;
        bool graph = _options.DecodeGraphs && _runtime.CanCapture && CudaGraphCache.IsDecodeStep(layout, _options.SmallBatchRows);
        int width = layout.MaxBlocksPerSequence;
        if (graph) width = (int)Math.Min(System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(width, 1)), int.MaxValue);
        var packed = new int[4 * n + layout.SequenceCount * width];
        layout.Tokens.CopyTo(packed, 0);
        layout.Positions.CopyTo(packed, n);
        layout.TokenSequence.CopyTo(packed, 2 * n);
        layout.SlotMapping.CopyTo(packed, 3 * n);
        for (int s = 0; s < layout.SequenceCount; s++)
        {
            var row = packed.AsSpan(4 * n + s * width, width);
            row.Fill(-1);
            layout.BlockTables.AsSpan(s * layout.MaxBlocksPerSequence, layout.MaxBlocksPerSequence).CopyTo(row);
        }
        (_tokensAt, _positionsAt, _sequencesAt, _slotsAt, _tablesAt) = (0, n, 2 * n, 3 * n, 4 * n);
        _batch.Upload(MemoryMarshal.AsBytes(packed.AsSpan()));
        _layout = layout;
        _tileShape = null;
        _tableWidth = width;
        if (graph) _graphs.BeginRecording();
    }

    private ulong BatchInts(long offset) => _batch.Address + (ulong)(offset * sizeof(int));

    private void RequireBatch(BatchLayout layout)
    {
        ArgumentNullException.ThrowIfNull(layout);
        if (!ReferenceEquals(layout, _layout)) throw new InvalidOperationException("the layout was not made current with BeginBatch");
    }

    public void Embed(BatchLayout layout, Tensor tokenEmbedding, Tensor? positionEmbedding, Tensor x, int dim)
    {
        RequireBatch(layout);
        RequireF32(x);
        RequireLength(x, (long)layout.TokenCount * dim);
        if (positionEmbedding is not null) RequireF32(positionEmbedding);
        if (layout.TokenCount == 0) return;
        string kernel = K.ForWeights(K.EmbedF32, K.EmbedBf16, K.EmbedF16, tokenEmbedding.DType);
        _args.Begin().Ptr(A(tokenEmbedding)).Ptr(AOrNull(positionEmbedding)).Ptr(BatchInts(_tokensAt)).Ptr(BatchInts(_positionsAt)).Ptr(A(x)).I32(dim);
        Launch(kernel, new Dim3((uint)layout.TokenCount), new Dim3((uint)Math.Min(DefaultBlock, LaunchGeometry.RoundUp(dim, 32))), _args);
    }

    public void AddNorm(Tensor residual, Tensor? delta, Tensor weight, Tensor? bias, Tensor y, int rows, int dim, NormKind kind, float eps)
    {
        RequireF32(residual);
        RequireF32(y);
        RequireF32(weight);
        if (delta is not null) RequireF32(delta);
        if (bias is not null) RequireF32(bias);
        RequireLength(residual, (long)rows * dim);
        RequireLength(y, (long)rows * dim);
        if (rows == 0) return;
        var block = new Dim3((uint)LaunchGeometry.ReductionBlock(dim));
        for (int r0 = 0; r0 < rows; r0 += LaunchGeometry.MaxGridY)
        {
            int n = Math.Min(LaunchGeometry.MaxGridY, rows - r0);
            ulong offset = (ulong)((long)r0 * dim * sizeof(float));
            _args.Begin().Ptr(A(residual) + offset).Ptr(delta is null ? 0 : A(delta) + offset).Ptr(A(weight));
            if (kind == NormKind.LayerNorm) _args.Ptr(AOrNull(bias));
            _args.Ptr(A(y) + offset).I32(dim).F32(eps);
            Launch(kind == NormKind.LayerNorm ? K.AddLayerNorm : K.AddRmsNorm, new Dim3((uint)n), block, _args);
        }
    }

    /// <summary>cuBLAS and the GEMV kernel read row-major [outDim, inDim] weights as they are.</summary>
    public Tensor PrepareLinear(Tensor w, int outDim, int inDim) => w;

    /// <summary>Row-major weights are uploaded as they are; a transposed one is transposed on the host first, a slab
    /// of output rows at a time.</summary>
    public Tensor LoadLinear(ReadOnlySpan<byte> bytes, DType dtype, int outDim, int inDim, bool transposed = false)
    {
        int size = dtype.Size();
        if (bytes.Length != (long)outDim * inDim * size) throw new ArgumentException($"{bytes.Length} bytes are not a [{outDim}, {inDim}] {dtype} weight", nameof(bytes));
        var w = Allocate(dtype, (long)outDim * inDim);
        try
        {
            if (!transposed)
            {
                Upload(w, bytes);
                return w;
            }
            const int slab = 64;
            var buffer = new byte[slab * inDim * size];
            for (int c0 = 0; c0 < outDim; c0 += slab)
            {
                int columns = Math.Min(slab, outDim - c0);
                var slice = buffer.AsSpan(0, columns * inDim * size);
                if (size == 4) TransposeSlab(MemoryMarshal.Cast<byte, int>(bytes), MemoryMarshal.Cast<byte, int>(slice), c0, columns, inDim, outDim);
                else TransposeSlab(MemoryMarshal.Cast<byte, short>(bytes), MemoryMarshal.Cast<byte, short>(slice), c0, columns, inDim, outDim);
                Upload(w, buffer.AsSpan(0, columns * inDim * size), (long)c0 * inDim);
            }
            return w;
        }
        catch
        {
            w.Dispose();
            throw;
        }
    }

    /// <summary>Rows c0 … c0 + columns − 1 of W [outDim, inDim] from Wᵀ [inDim, outDim].</summary>
    private static void TransposeSlab<T>(ReadOnlySpan<T> transposed, Span<T> slab, int c0, int columns, int inDim, int outDim)
    {
        for (int r = 0; r < inDim; r++)
            for (int c = 0; c < columns; c++)
                slab[c * inDim + r] = transposed[r * outDim + c0 + c];
    }

    public void Linear(Tensor x, Tensor w, Tensor? bias, Tensor y, int rows, int inDim, int outDim)
    {
        RequireF32(x);
        RequireF32(y);
        if (bias is not null) RequireF32(bias);
        RequireLength(x, (long)rows * inDim);
        RequireLength(y, (long)rows * outDim);
        RequireLength(w, (long)outDim * inDim);
        if (rows == 0) return;
        if (rows <= _options.SmallBatchRows || !_runtime.HasGemm)
        {
            string kernel = K.ForWeights(K.LinearF32, K.LinearBf16, K.LinearF16, w.DType);
            int maxRows = LaunchGeometry.MaxGridY * LaunchGeometry.LinearTokens;
            for (int r0 = 0; r0 < rows; r0 += maxRows)
            {
                int n = Math.Min(maxRows, rows - r0);
                var (grid, block) = LaunchGeometry.Linear(n, outDim);
                _args.Begin().Ptr(A(x) + (ulong)((long)r0 * inDim * 4)).Ptr(A(w)).Ptr(AOrNull(bias)).Ptr(A(y) + (ulong)((long)r0 * outDim * 4))
                    .I32(n).I32(inDim).I32(outDim);
                Launch(kernel, grid, block, _args);
            }
            return;
        }

        Flush(); // cuBLAS calls are not recorded
        if (w.DType == DType.F32) _runtime.Gemm(A(x), CudaDataType.R32F, A(w), CudaDataType.R32F, A(y), rows, inDim, outDim, outDim);
        else if (_options.TensorCoreGemm) TensorCoreGemm(x, w, y, rows, inDim, outDim);
        else WidenedGemm(x, w, y, rows, inDim, outDim);
        if (bias is not null)
        {
            for (int r0 = 0; r0 < rows; r0 += LaunchGeometry.MaxGridY)
            {
                int n = Math.Min(LaunchGeometry.MaxGridY, rows - r0);
                _args.Begin().Ptr(A(y) + (ulong)((long)r0 * outDim * 4)).Ptr(A(bias)).I32(outDim);
                Launch(K.AddBias, new Dim3((uint)LaunchGeometry.CeilDiv(outDim, DefaultBlock), (uint)n), new Dim3(DefaultBlock), _args);
            }
        }
    }

    private static CudaDataType BlasType(DType t) => t switch
    {
        DType.F32 => CudaDataType.R32F,
        DType.BF16 => CudaDataType.R16BF,
        DType.F16 => CudaDataType.R16F,
        _ => throw new ArgumentException($"weights of type {t} are not supported"),
    };

    /// <summary>Exact path: slices of W widened to F32 in scratch, then an F32 GEMM per slice.</summary>
    private void WidenedGemm(Tensor x, Tensor w, Tensor y, int rows, int inDim, int outDim)
    {
        int sliceRows = (int)Math.Clamp(_options.ScratchBytes / ((long)inDim * sizeof(float)), 1, outDim);
        _scratch.Ensure((long)sliceRows * inDim * sizeof(float));
        string widen = w.DType == DType.BF16 ? K.WidenBf16 : K.WidenF16;
        for (int n0 = 0; n0 < outDim; n0 += sliceRows)
        {
            int n = Math.Min(sliceRows, outDim - n0);
            long count = (long)n * inDim;
            _args.Begin().Ptr(A(w) + (ulong)((long)n0 * inDim * 2)).Ptr(_scratch.Address).I64(count);
            Launch(widen, new Dim3(LaunchGeometry.GridStrideBlocks(count, DefaultBlock)), new Dim3(DefaultBlock), _args);
            _runtime.Gemm(A(x), CudaDataType.R32F, _scratch.Address, CudaDataType.R32F, A(y) + (ulong)n0 * 4, rows, inDim, n, outDim);
        }
    }

    /// <summary>Fast path: x rounded to W's 16-bit type, then one tensor-core GEMM with F32 accumulation.</summary>
    private void TensorCoreGemm(Tensor x, Tensor w, Tensor y, int rows, int inDim, int outDim)
    {
        long count = (long)rows * inDim;
        _scratch.Ensure(count * 2);
        _args.Begin().Ptr(A(x)).Ptr(_scratch.Address).I64(count);
        Launch(w.DType == DType.BF16 ? K.ConvertBf16 : K.ConvertF16, new Dim3(LaunchGeometry.GridStrideBlocks(count, DefaultBlock)), new Dim3(DefaultBlock), _args);
        var type = BlasType(w.DType);
        _runtime.Gemm(_scratch.Address, type, A(w), type, A(y), rows, inDim, outDim, outDim);
    }

    public void RopeAndCacheWrite(BatchLayout layout, Tensor qkv, Tensor keyCache, Tensor valueCache, RopeTable? rope, int heads, int kvHeads, int headDim, int blockSize)
    {
        RequireBatch(layout);
        RequireF32(qkv);
        RequireF32(keyCache);
        RequireF32(valueCache);
        if (layout.TokenCount == 0) return;
        ulong frequencies = 0;
        if (rope is not null)
        {
            if (rope.InverseFrequencies.Length < headDim / 2) throw new ArgumentException($"the rope table has {rope.InverseFrequencies.Length} frequencies, needs {headDim / 2}", nameof(rope));
            frequencies = _ropeTables.GetValue(rope, r =>
            {
                var buffer = new DeviceBuffer(_runtime);
                buffer.Upload(MemoryMarshal.AsBytes(r.InverseFrequencies.AsSpan()));
                return buffer;
            }).Address;
        }
        _args.Begin().Ptr(A(qkv)).Ptr(A(keyCache)).Ptr(A(valueCache)).Ptr(frequencies).Ptr(BatchInts(_positionsAt)).Ptr(BatchInts(_slotsAt))
            .I32(heads).I32(kvHeads).I32(headDim);
        Launch(K.RopeKvWrite, new Dim3((uint)layout.TokenCount), new Dim3(128), _args);
    }

    public void Attention(BatchLayout layout, Tensor qkv, Tensor keyCache, Tensor valueCache, Tensor output, int heads, int kvHeads, int headDim, int blockSize)
    {
        RequireBatch(layout);
        RequireF32(qkv);
        RequireF32(output);
        if (headDim > LaunchGeometry.AttentionMaxHeadDim) throw new NotSupportedException($"head_dim {headDim} is above the attention kernel's {LaunchGeometry.AttentionMaxHeadDim}");
        if (layout.TokenCount == 0) return;
        if (_tileShape is not { } shape || shape.Heads != heads || shape.KvHeads != kvHeads)
        {
            int[] tiles = LaunchGeometry.AttentionTiles(layout, heads, kvHeads, out int maxContext);
            _tiles.Upload(MemoryMarshal.AsBytes(tiles.AsSpan()));
            _tileShape = shape = (heads, kvHeads, tiles.Length / 4, maxContext);
        }
        // A recorded decode step sizes the split for the padded table so that later steps launch the same grid.
        int context = _graphs.IsRecording ? _tableWidth * blockSize : shape.MaxContext;
        var (splits, splitLength) = LaunchGeometry.AttentionSplits(shape.Tiles, context, _runtime.Multiprocessors);
        if (shape.Tiles > int.MaxValue / Math.Max(splits, 1)) throw new NotSupportedException("attention batch too large");
        if (splits > 1) _partials.Ensure((long)shape.Tiles * splits * LaunchGeometry.AttentionMaxRows * (headDim + 2) * sizeof(float));
        float scale = 1f / MathF.Sqrt(headDim);
        _args.Begin().Ptr(A(qkv)).Ptr(A(keyCache)).Ptr(A(valueCache)).Ptr(_tiles.Address).Ptr(BatchInts(_positionsAt)).Ptr(BatchInts(_sequencesAt))
            .Ptr(BatchInts(_tablesAt)).I32(_tableWidth).I32(heads).I32(kvHeads).I32(headDim).I32(blockSize).I32(splitLength).F32(scale)
            .Ptr(A(output)).Ptr(splits > 1 ? _partials.Address : 0);
        var block = new Dim3(LaunchGeometry.AttentionWarps * 32);
        int shared = LaunchGeometry.AttentionSharedBytes(headDim);
        if (splits == 1)
        {
            Launch(K.AttentionPrefill, new Dim3((uint)shape.Tiles), block, _args, shared);
            return;
        }
        Launch(K.AttentionDecode, new Dim3((uint)shape.Tiles, (uint)splits), block, _args, shared);
        _args.Begin().Ptr(_partials.Address).Ptr(_tiles.Address).I32(splits).I32(heads).I32(headDim).Ptr(A(output));
        Launch(K.AttentionCombine, new Dim3((uint)shape.Tiles), new Dim3(128), _args);
    }

    public void GeluTanh(Tensor x, long count)
    {
        RequireF32(x);
        RequireLength(x, count);
        if (count == 0) return;
        _args.Begin().Ptr(A(x)).I64(count);
        Launch(K.GeluTanh, new Dim3(LaunchGeometry.GridStrideBlocks(count, DefaultBlock)), new Dim3(DefaultBlock), _args);
    }

    public void SiluGate(Tensor gateUp, Tensor y, int rows, int ff)
    {
        RequireF32(gateUp);
        RequireF32(y);
        RequireLength(gateUp, 2L * rows * ff);
        RequireLength(y, (long)rows * ff);
        for (int r0 = 0; r0 < rows; r0 += LaunchGeometry.MaxGridY)
        {
            int n = Math.Min(LaunchGeometry.MaxGridY, rows - r0);
            _args.Begin().Ptr(A(gateUp) + (ulong)(2L * r0 * ff * 4)).Ptr(A(y) + (ulong)((long)r0 * ff * 4)).I32(ff);
            Launch(K.SiluGate, new Dim3((uint)LaunchGeometry.CeilDiv(ff, DefaultBlock), (uint)n), new Dim3(DefaultBlock), _args);
        }
    }

    public void GatherRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination, int dim)
    {
        RequireF32(source);
        RequireF32(destination);
        RequireLength(destination, (long)rows.Length * dim);
        if (rows.Length == 0) return;
        foreach (int r in rows)
            if (r < 0 || (long)(r + 1) * dim > source.Length) throw new ArgumentOutOfRangeException(nameof(rows), r, "row outside the source");
        Flush();
        _small.Upload(MemoryMarshal.AsBytes(rows));
        _args.Begin().Ptr(A(source)).Ptr(_small.Address).Ptr(A(destination)).I32(dim);
        Launch(K.GatherRows, new Dim3((uint)rows.Length), new Dim3((uint)Math.Min(DefaultBlock, LaunchGeometry.RoundUp(dim, 32))), _args);
    }

    public void LogProbOfTargets(Tensor logits, int rows, int vocab, ReadOnlySpan<int> targets, Span<float> result)
    {
        RequireF32(logits);
        RequireLength(logits, (long)rows * vocab);
        if (targets.Length < rows || result.Length < rows) throw new ArgumentException("targets and result need one entry per row");
        for (int r = 0; r < rows; r++)
            if ((uint)targets[r] >= (uint)vocab) throw new ArgumentOutOfRangeException(nameof(targets), targets[r], $"target id outside the vocabulary [0, {vocab})");
        if (rows == 0) return;
        Flush();
        // [targets: rows ints | result: rows floats], 256-byte aligned halves.
        long half = LaunchGeometry.RoundUp(rows * sizeof(int), 256);
        _small.Ensure(2 * half);
        _small.Upload(MemoryMarshal.AsBytes(targets[..rows]));
        _args.Begin().Ptr(A(logits)).I32(vocab).Ptr(_small.Address).Ptr(_small.Address + (ulong)half);
        Launch(K.LogProbGather, new Dim3((uint)rows), new Dim3(DefaultBlock), _args);
        _runtime.CopyToHost(_small.Address + (ulong)half, MemoryMarshal.AsBytes(result[..rows]));
    }

    /// <summary>sample.cu's SampleRow.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal struct SampleRow
    {
        public float Temperature;
        public int TopK;
        public float TopP;
        public int Position;
        public ulong Seed;
        public ulong Key;
    }

    public void Sample(Tensor logits, int vocab, ReadOnlySpan<SamplingRow> rows, Span<int> result)
    {
        RequireF32(logits);
        RequireLength(logits, (long)rows.Length * vocab);
        if (result.Length < rows.Length) throw new ArgumentException("result needs one entry per row", nameof(result));
        if (rows.Length == 0) return;
        Flush();
        long half = LaunchGeometry.RoundUp(rows.Length * Marshal.SizeOf<SampleRow>(), 256);
        _small.Ensure(half + rows.Length * sizeof(int));
        bool greedy = true;
        var packed = new SampleRow[rows.Length];
        for (int i = 0; i < rows.Length; i++)
        {
            var r = rows[i];
            packed[i] = new SampleRow { Temperature = r.Temperature, TopK = r.TopK, TopP = r.TopP, Position = r.Position, Seed = r.Seed, Key = r.SequenceKey };
            greedy &= r.Temperature <= 0;
        }
        if (greedy) _args.Begin().Ptr(A(logits)).I32(vocab).Ptr(_small.Address + (ulong)half);
        else
        {
            _small.Upload(MemoryMarshal.AsBytes(packed.AsSpan()));
            _args.Begin().Ptr(A(logits)).I32(vocab).Ptr(_small.Address).Ptr(_small.Address + (ulong)half);
        }
        Launch(greedy ? K.ArgMax : K.Sample, new Dim3((uint)rows.Length), new Dim3(DefaultBlock), _args);
        _runtime.CopyToHost(_small.Address + (ulong)half, MemoryMarshal.AsBytes(result[..rows.Length]));
    }

    public void CopyBlock(Tensor keyCache, Tensor valueCache, KvGeometry geometry, int sourceBlock, int destinationBlock)
    {
        RequireF32(keyCache);
        RequireF32(valueCache);
        if ((uint)sourceBlock >= (uint)geometry.Blocks || (uint)destinationBlock >= (uint)geometry.Blocks)
            throw new ArgumentOutOfRangeException(nameof(sourceBlock), "block outside the pool");
        Flush();
        long n = geometry.BlockElements;
        _args.Begin().Ptr(A(keyCache)).Ptr(A(valueCache)).I64(n).I32(sourceBlock).I32(destinationBlock);
        Launch(K.CopyBlock, new Dim3(LaunchGeometry.GridStrideBlocks(n, DefaultBlock, 1024)), new Dim3(DefaultBlock), _args);
    }

    /// <summary>Waits for all issued work (for timing).</summary>
    public void Synchronize()
    {
        Flush();
        _runtime.Synchronize();
    }

    public void Dispose()
    {
        Flush();
        _graphs.Dispose();
        foreach (var b in new[] { _batch, _tiles, _partials, _small, _scratch }) b.Dispose();
        foreach (var pair in _ropeTables) pair.Value.Dispose();
        _args.Dispose();
        _runtime.Dispose();
    }

    /// <summary>A device buffer that grows (never shrinks) to the largest size asked for.</summary>
    private sealed class DeviceBuffer(IDeviceRuntime runtime) : IDisposable
    {
        public ulong Address { get; private set; }

        public long Bytes { get; private set; }

        public void Ensure(long bytes)
        {
            if (bytes <= Bytes) return;
            if (Address != 0) runtime.Free(Address);
            Bytes = Math.Max(bytes, Math.Max(256, Bytes * 2));
            Address = runtime.Allocate(Bytes);
        }

        public void Upload(ReadOnlySpan<byte> data)
        {
            Ensure(data.Length);
            runtime.CopyToDevice(Address, data);
        }

        public void Dispose()
        {
            if (Address != 0) runtime.Free(Address);
            Address = 0;
            Bytes = 0;
        }
    }
}
