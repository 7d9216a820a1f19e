using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using WeakToStrong.Backends;
using WeakToStrong.Checkpoints;

namespace WeakToStrong.Engine;

/// <summary>One transformer layer's tensors, normalised: matrices are [out, in] in their stored dtype,
/// q|k|v fused into one matrix (and gate|up into one for gated MLPs); norms and biases are F32 (widened exactly
/// from F16/BF16 at load).</summary>
public sealed class LayerWeights
{
    public required Tensor AttentionNorm { get; init; }       // [dim]
    public Tensor? AttentionNormBias { get; init; }           // [dim]
    public required Tensor Qkv { get; init; }                 // [(heads + 2·kvHeads)·headDim, dim]
    public Tensor? QkvBias { get; init; }                     // [(heads + 2·kvHeads)·headDim]
    public required Tensor Output { get; init; }              // [dim, heads·headDim]
    public Tensor? OutputBias { get; init; }                  // [dim]
    public required Tensor MlpNorm { get; init; }             // [dim]
    public Tensor? MlpNormBias { get; init; }                 // [dim]
    public required Tensor Up { get; init; }                  // [ff, dim] or gate|up [2·ff, dim]
    public Tensor? UpBias { get; init; }                      // [ff]
    public required Tensor Down { get; init; }                // [dim, ff]
    public Tensor? DownBias { get; init; }                    // [dim]

    internal IEnumerable<Tensor?> All => [AttentionNorm, AttentionNormBias, Qkv, QkvBias, Output, OutputBias, MlpNorm, MlpNormBias, Up, UpBias, Down, DownBias];
}

/// <summary>A model's weights resident in a backend's memory.</summary>
public sealed class ModelWeights : IDisposable
{
    public required Tensor TokenEmbedding { get; init; }      // [vocab, dim]
    public Tensor? PositionEmbedding { get; init; }           // [maxPositions, dim], F32 whatever the stored dtype
    public required LayerWeights[] Layers { get; init; }
    public required Tensor FinalNorm { get; init; }           // [dim]
    public Tensor? FinalNormBias { get; init; }               // [dim]
    public required Tensor LmHead { get; init; }              // [vocab, dim]; the embedding itself when tied

    /// <summary>Dtype of the large matrices (the lm_head's: <see cref="DType.I8"/> for int8 weights, else the embedding's).</summary>
    public DType WeightDType => LmHead.DType;

    /// <summary>Bytes of all weights held by the backend.</summary>
    public long ResidentBytes => AllTensors().Distinct().Sum(t => t.ByteLength);

    /// <summary>Bytes read per decoded token: every matrix once (the embedding row read is negligible).</summary>
    public long BytesPerDecodeStep => Layers.Sum(l => l.Qkv.ByteLength + l.Output.ByteLength + l.Up.ByteLength + l.Down.ByteLength) + LmHead.ByteLength;

    private IEnumerable<Tensor> AllTensors() =>
        new Tensor?[] { TokenEmbedding, PositionEmbedding, FinalNorm, FinalNormBias, LmHead }
            .Concat(Layers.SelectMany(l => l.All)).OfType<Tensor>();

    public void Dispose()
    {
        foreach (var t in AllTensors().Distinct()) t.Dispose();
    }

    /// <summary>
    /// Loads and validates every tensor the spec needs (presence, shape, dtype). Each tensor's pages of the mapped
    /// file are released once the backend holds it, so the file is not kept resident beside the weights.
    /// </summary>
    public static ModelWeights Load(Checkpoint checkpoint, IBackend backend) => Load(checkpoint, backend, LinearWeights.Stored);

    /// <summary>
    /// <see cref="Load(Checkpoint, IBackend)"/> with the linear weights (every layer's matrices and the lm_head, a
    /// tied embedding included) held as <paramref name="weights"/> says; an untied embedding, the norms and the
    /// biases stay as stored.
    /// </summary>
    public static ModelWeights Load(Checkpoint checkpoint, IBackend backend, LinearWeights weights)
    {
        ArgumentNullException.ThrowIfNull(backend);
        return Run(checkpoint, backend, weights);
    }

    /// <summary>
    /// The checks of <see cref="Load(Checkpoint, IBackend)"/> (every tensor the spec needs is present, with the config's shape and a
    /// usable dtype; fused tensors share one) without reading a byte of weights or allocating for them. Throws the
    /// same <see cref="CheckpointException"/> that loading would.
    /// </summary>
    public static void Validate(Checkpoint checkpoint) => Run(checkpoint, backend: null, LinearWeights.Stored);

    private static ModelWeights Run(Checkpoint checkpoint, IBackend? backend, LinearWeights weights)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        var loader = new Loader(checkpoint, backend, weights);
        try
        {
            return checkpoint.Spec.Family == "gpt2" ? loader.Gpt2() : loader.LlamaLike();
        }
        catch
        {
            loader.DisposeLoaded();
            throw;
        }
    }

    /// <summary>Stands for a tensor when only validating: its dtype and length, no memory.</summary>
    private sealed class Unloaded(DType dtype, long length) : Tensor(dtype, length)
    {
        protected override void Release()
        {
        }
    }

    /// <summary>Finds, checks and (with a backend) loads each tensor; without a backend it only checks.</summary>
    private sealed class Loader(Checkpoint checkpoint, IBackend? backend, LinearWeights weights)
    {
        private readonly ModelSpec _spec = checkpoint.Spec;
        private readonly List<Tensor> _loaded = [];
        private string _prefix = "";

        public void DisposeLoaded()
        {
            foreach (var t in _loaded) t.Dispose();
        }

        public ModelWeights Gpt2()
        {
            // The original gpt2 file has no prefix; anything else is named (and reported missing) the HF way.
            _prefix = checkpoint.Contains("wte.weight") && !checkpoint.Contains("transformer.wte.weight") ? "" : "transformer.";
            int d = _spec.Dim, ff = _spec.FeedForwardDim;
            var wte = _spec.TiedEmbeddings ? Linear(_prefix + "wte.weight", _spec.VocabSize, d) : Matrix("wte.weight", _spec.VocabSize, d);
            var layers = new List<LayerWeights>(); // grown, not pre-sized: a bogus layer count fails at its first missing layer
            for (int i = 0; i < _spec.Layers; i++)
            {
                string p = $"h.{i}.";
                layers.Add(new LayerWeights
                {
                    AttentionNorm = Vector(p + "ln_1.weight", d),
                    AttentionNormBias = Vector(p + "ln_1.bias", d),
                    Qkv = Conv1D(p + "attn.c_attn.weight", d, 3 * d),
                    QkvBias = Vector(p + "attn.c_attn.bias", 3 * d),
                    Output = Conv1D(p + "attn.c_proj.weight", d, d),
                    OutputBias = Vector(p + "attn.c_proj.bias", d),
                    MlpNorm = Vector(p + "ln_2.weight", d),
                    MlpNormBias = Vector(p + "ln_2.bias", d),
                    Up = Conv1D(p + "mlp.c_fc.weight", d, ff),
                    UpBias = Vector(p + "mlp.c_fc.bias", ff),
                    Down = Conv1D(p + "mlp.c_proj.weight", ff, d),
                    DownBias = Vector(p + "mlp.c_proj.bias", d),
                });
            }
            var lmHead = _spec.TiedEmbeddings ? wte : Linear("lm_head.weight", _spec.VocabSize, d);
            return new ModelWeights
            {
                TokenEmbedding = wte,
                // The forward adds positions in F32 (IBackend.Embed): an F16/BF16 table is widened exactly here.
                PositionEmbedding = Float32Table("wpe.weight", _spec.MaxPositions, d),
                Layers = [.. layers],
                FinalNorm = Vector("ln_f.weight", d),
                FinalNormBias = Vector("ln_f.bias", d),
                LmHead = lmHead,
            };
        }

        public ModelWeights LlamaLike()
        {
            _prefix = "model.";
            int d = _spec.Dim, ff = _spec.FeedForwardDim;
            int q = _spec.Heads * _spec.HeadDim, kv = _spec.KvHeads * _spec.HeadDim;
            var embed = _spec.TiedEmbeddings ? Linear(_prefix + "embed_tokens.weight", _spec.VocabSize, d) : Matrix("embed_tokens.weight", _spec.VocabSize, d);
            var layers = new List<LayerWeights>(); // grown, not pre-sized: a bogus layer count fails at its first missing layer
            for (int i = 0; i < _spec.Layers; i++)
            {
                string p = $"layers.{i}.";
                string a = p + "self_attn.";
                layers.Add(new LayerWeights
                {
                    AttentionNorm = Vector(p + "input_layernorm.weight", d),
                    Qkv = Fused(d, (a + "q_proj.weight", q), (a + "k_proj.weight", kv), (a + "v_proj.weight", kv)),
                    QkvBias = _spec.QkvBias ? FusedVector((a + "q_proj.bias", q), (a + "k_proj.bias", kv), (a + "v_proj.bias", kv)) : null,
                    Output = Linear(_prefix + a + "o_proj.weight", d, q),
                    OutputBias = _spec.OutputBias ? Vector(a + "o_proj.bias", d) : null,
                    MlpNorm = Vector(p + "post_attention_layernorm.weight", d),
                    Up = Fused(d, (p + "mlp.gate_proj.weight", ff), (p + "mlp.up_proj.weight", ff)),
                    UpBias = _spec.MlpBias ? FusedVector((p + "mlp.gate_proj.bias", ff), (p + "mlp.up_proj.bias", ff)) : null,
                    Down = Linear(_prefix + p + "mlp.down_proj.weight", d, ff),
                    DownBias = _spec.MlpBias ? Vector(p + "mlp.down_proj.bias", d) : null,
                });
            }
            var lmHead = _spec.TiedEmbeddings ? embed : Linear("lm_head.weight", _spec.VocabSize, d);
            return new ModelWeights
            {
                TokenEmbedding = embed,
                Layers = [.. layers],
                FinalNorm = Vector("norm.weight", d),
                LmHead = lmHead,
            };
        }

        private (SafeTensorsFile File, SafeTensorInfo Info, DType DType) Find(string fullName, params long[] shape)
        {
            if (!checkpoint.TryFind(fullName, out var file, out var info))
            {
                string where = checkpoint.Files.Count == 1 ? checkpoint.Files[0].FilePath : Path.Combine(checkpoint.Directory, "model.safetensors.index.json");
                throw new CheckpointException(where, fullName, $"required tensor is missing (expected shape [{string.Join(", ", shape)}])");
            }
            if (!info.Shape.SequenceEqual(shape))
                throw new CheckpointException(file.FilePath, fullName, $"shape {info.ShapeText} does not match the config (expected [{string.Join(", ", shape)}])");
            return (file, info, file.WeightDType(info));
        }

        private Tensor Track(Tensor t)
        {
            _loaded.Add(t);
            return t;
        }

        private Tensor Allocate(DType dtype, long length) => Track(backend is null ? new Unloaded(dtype, length) : backend.Allocate(dtype, length));

        /// <summary>A linear weight in the backend's layout (the row-major copy is released).</summary>
        private Tensor Prepared(Tensor rowMajor, int rows, int cols)
        {
            if (backend is null) return rowMajor;
            if (weights != LinearWeights.Stored)
                throw new NotSupportedException($"a [{rows}, {cols}] weight of {rowMajor.ByteLength} bytes is too large for {weights.Name()} weights (quantized from one span of at most 2 GiB)");
            var prepared = backend.PrepareLinear(rowMajor, rows, cols);
            if (ReferenceEquals(prepared, rowMajor)) return prepared;
            _loaded.Remove(rowMajor);
            return Track(prepared);
        }

        private Tensor Matrix(string name, int rows, int cols) => MatrixNoPrefix(_prefix + name, rows, cols);

        private Tensor MatrixNoPrefix(string fullName, int rows, int cols)
        {
            var (file, info, dtype) = Find(fullName, rows, cols);
            var tensor = Allocate(dtype, (long)rows * cols);
            CopyRaw(file, info, tensor, 0);
            return tensor;
        }

        /// <summary>
        /// A linear weight [rows, cols] in the backend's layout, built straight from the mapped file (the backend
        /// packs from the file's pages; nothing else is copied), whose pages are then released.
        /// </summary>
        private Tensor Linear(string fullName, int rows, int cols)
        {
            var (file, info, dtype) = Find(fullName, rows, cols);
            if (backend is null) return Allocate(dtype, (long)rows * cols);
            if (info.ByteLength > int.MaxValue) return Prepared(MatrixNoPrefix(fullName, rows, cols), rows, cols); // a span holds < 2 GiB
            var tensor = Track(backend.LoadLinear(file.Bytes(info, 0, (int)info.ByteLength), dtype, rows, cols, transposed: false, weights));
            file.Release(info);
            return tensor;
        }

        /// <summary>Linear weights stacked along the output dimension into one [Σ rows, cols] weight (q|k|v, gate|up).</summary>
        private Tensor Fused(int cols, params (string Name, int Rows)[] parts)
        {
            var found = parts.Select(p => Find(_prefix + p.Name, p.Rows, cols)).ToArray();
            var dtype = found[0].DType;
            foreach (var f in found)
                if (f.DType != dtype) throw new CheckpointException(f.File.FilePath, f.Info.Name, $"dtype {f.DType} differs from {found[0].Info.Name} ({dtype}); fused tensors need one dtype");
            int rows = parts.Sum(p => p.Rows);
            long bytes = found.Sum(f => f.Info.ByteLength);
            if (backend is null) return Allocate(dtype, (long)rows * cols);
            if (backend is IStackedLinearLoad direct && weights == LinearWeights.Stored && found.All(f => f.Info.ByteLength <= int.MaxValue))
                return Track(StackedFromFile(direct, found, parts.Select(p => p.Rows).ToArray(), dtype, cols));
            if (bytes > Array.MaxLength) return Prepared(Stacked(found, dtype, (long)rows * cols), rows, cols);
            var stacked = Scratch(bytes);
            long offset = 0;
            foreach (var (file, info, _) in found)
            {
                CopyFromFile(file, info, stacked[(int)offset..]);
                offset += info.ByteLength;
            }
            return Track(backend.LoadLinear(stacked, dtype, rows, cols, transposed: false, weights));
        }

        /// <summary>A fused weight packed by the backend straight from each part's mapped bytes (no stacked copy);
        /// each part's file pages are released afterwards.</summary>
        private static unsafe Tensor StackedFromFile(IStackedLinearLoad direct, (SafeTensorsFile File, SafeTensorInfo Info, DType DType)[] found, int[] rows, DType dtype, int cols)
        {
            var parts = new nint[found.Length];
            for (int i = 0; i < found.Length; i++)
            {
                var (file, info, _) = found[i];
                // The span is a view of the file's mapping, not of managed memory: its address stays put.
                parts[i] = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetReference(file.Bytes(info, 0, (int)info.ByteLength)));
            }
            var tensor = direct.LoadLinearStacked(parts, rows, dtype, cols);
            foreach (var (file, info, _) in found) file.Release(info);
            return tensor;
        }

        /// <summary>Parts stacked in one backend tensor (for a fused weight too large for one span).</summary>
        private Tensor Stacked((SafeTensorsFile File, SafeTensorInfo Info, DType DType)[] found, DType dtype, long elements)
        {
            var tensor = Allocate(dtype, elements);
            long offset = 0;
            foreach (var f in found)
            {
                CopyRaw(f.File, f.Info, tensor, offset);
                offset += f.Info.ElementCount;
            }
            return tensor;
        }

        private byte[] _scratch = [];

        /// <summary>A host buffer reused for every fused or transposed weight (its pages are faulted in once).</summary>
        private Span<byte> Scratch(long bytes)
        {
            if (_scratch.Length < bytes) _scratch = GC.AllocateUninitializedArray<byte>((int)bytes);
            return _scratch.AsSpan(0, (int)bytes);
        }

        private static void CopyFromFile(SafeTensorsFile file, SafeTensorInfo info, Span<byte> destination)
        {
            const int chunk = 64 << 20;
            for (long done = 0; done < info.ByteLength; done += chunk)
            {
                int count = (int)Math.Min(chunk, info.ByteLength - done);
                file.Bytes(info, done, count).CopyTo(destination[(int)done..]);
            }
            file.Release(info);
        }

        /// <summary>A GPT-2 Conv1D weight, stored [in, out] (Wᵀ): the backend builds W [out, in] from the file's bytes.</summary>
        private Tensor Conv1D(string name, int inDim, int outDim)
        {
            var (file, info, dtype) = Find(_prefix + name, inDim, outDim);
            if (backend is null) return Allocate(dtype, (long)inDim * outDim);
            if (info.ByteLength > int.MaxValue) throw new CheckpointException(file.FilePath, info.Name, $"a Conv1D weight of {info.ByteLength} bytes is larger than this loader handles (2 GiB)");
            var tensor = Track(backend.LoadLinear(file.Bytes(info, 0, (int)info.ByteLength), dtype, outDim, inDim, transposed: true, weights));
            file.Release(info);
            return tensor;
        }

        private Tensor Vector(string name, int length) => FusedVector((name, length));

        /// <summary>A [rows, cols] table widened to F32.</summary>
        private Tensor Float32Table(string name, int rows, int cols)
        {
            var (file, info, dtype) = Find(_prefix + name, rows, cols);
            var tensor = Allocate(DType.F32, (long)rows * cols);
            if (backend is null) return tensor;
            var row = new float[cols];
            for (int r = 0; r < rows; r++)
            {
                long rowBytes = (long)cols * dtype.Size();
                ToFloat32(file.Bytes(info, r * rowBytes, checked((int)rowBytes)), dtype, row);
                backend.Upload(tensor, MemoryMarshal.AsBytes(row.AsSpan()), (long)r * cols);
            }
            file.Release(info);
            return tensor;
        }

        /// <summary>Vectors (norm weights, biases) concatenated and converted to F32.</summary>
        private Tensor FusedVector(params (string Name, int Length)[] parts)
        {
            var found = parts.Select(p => Find(_prefix + p.Name, p.Length)).ToArray(); // before allocating for the config's sizes
            if (backend is null) return Allocate(DType.F32, parts.Sum(p => (long)p.Length));
            var values = new float[parts.Sum(p => p.Length)];
            int offset = 0;
            for (int i = 0; i < parts.Length; i++)
            {
                var (file, info, dtype) = found[i];
                ToFloat32(file.Bytes(info, 0, checked((int)info.ByteLength)), dtype, values.AsSpan(offset, parts[i].Length));
                file.Release(info);
                offset += parts[i].Length;
            }
            var tensor = Allocate(DType.F32, values.Length);
            backend.Upload(tensor, MemoryMarshal.AsBytes(values.AsSpan()));
            return tensor;
        }

        private void CopyRaw(SafeTensorsFile file, SafeTensorInfo info, Tensor tensor, long elementOffset)
        {
            if (backend is null) return;
            const int chunk = 64 << 20;
            int size = tensor.DType.Size();
            for (long done = 0; done < info.ByteLength; done += chunk)
            {
                int count = (int)Math.Min(chunk, info.ByteLength - done);
                backend.Upload(tensor, file.Bytes(info, done, count), elementOffset + done / size);
            }
            file.Release(info);
        }
    }

    internal static void ToFloat32(ReadOnlySpan<byte> bytes, DType dtype, Span<float> destination)
    {
        switch (dtype)
        {
            case DType.F32:
                MemoryMarshal.Cast<byte, float>(bytes).CopyTo(destination);
                break;
            case DType.BF16:
                for (int i = 0; i < destination.Length; i++)
                    destination[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(bytes[(2 * i)..]) << 16);
                break;
            case DType.F16:
                for (int i = 0; i < destination.Length; i++)
                    destination[i] = (float)BitConverter.UInt16BitsToHalf(BinaryPrimitives.ReadUInt16LittleEndian(bytes[(2 * i)..]));
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a float type");
        }
    }
}
