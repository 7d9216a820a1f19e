using System.Buffers.Binary;
using System.Runtime.InteropServices;
using WeakToStrong.Backends;
using WeakToStrong.Checkpoints;

namespace WeakToStrong.Engine;

/// <summary>One transformer layer's tensors, normalised: matrices are [out, in] in their stored dtype,
/// q|k|v fused into one matrix (and gate|up into one for gated MLPs); norms and biases are F32.</summary>
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
    public Tensor? PositionEmbedding { get; init; }           // [maxPositions, dim]
    public required LayerWeights[] Layers { get; init; }
    public required Tensor FinalNorm { get; init; }           // [dim]
    public Tensor? FinalNormBias { get; init; }               // [dim]
    public required Tensor LmHead { get; init; }              // [vocab, dim]; the embedding itself when tied

    /// <summary>Dtype of the large matrices (the embedding's).</summary>
    public DType WeightDType => TokenEmbedding.DType;

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

    /// <summary>Loads and validates every tensor the spec needs (presence, shape, dtype).</summary>
    public static ModelWeights Load(Checkpoint checkpoint, IBackend backend)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(backend);
        var loader = new Loader(checkpoint, backend);
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

    private sealed class Loader(Checkpoint checkpoint, IBackend backend)
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
            var wte = Matrix("wte.weight", _spec.VocabSize, d);
            if (_spec.TiedEmbeddings) wte = Prepared(wte, _spec.VocabSize, d);
            var layers = new List<LayerWeights>(); // grown, not pre-sized: a bogus layer count fails at its first missing layer
            for (int i = 0; i < _spec.Layers; i++)
            {
                string p = $"h.{i}.";
                layers.Add(new LayerWeights
                {
                    AttentionNorm = Vector(p + "ln_1.weight", d),
                    AttentionNormBias = Vector(p + "ln_1.bias", d),
                    Qkv = Prepared(Conv1D(p + "attn.c_attn.weight", d, 3 * d), 3 * d, d),
                    QkvBias = Vector(p + "attn.c_attn.bias", 3 * d),
                    Output = Prepared(Conv1D(p + "attn.c_proj.weight", d, d), d, d),
                    OutputBias = Vector(p + "attn.c_proj.bias", d),
                    MlpNorm = Vector(p + "ln_2.weight", d),
                    MlpNormBias = Vector(p + "ln_2.bias", d),
                    Up = Prepared(Conv1D(p + "mlp.c_fc.weight", d, ff), ff, d),
                    UpBias = Vector(p + "mlp.c_fc.bias", ff),
                    Down = Prepared(Conv1D(p + "mlp.c_proj.weight", ff, d), d, ff),
                    DownBias = Vector(p + "mlp.c_proj.bias", d),
                });
            }
            var lmHead = _spec.TiedEmbeddings ? wte : Prepared(MatrixNoPrefix("lm_head.weight", _spec.VocabSize, d), _spec.VocabSize, d);
            return new ModelWeights
            {
                TokenEmbedding = wte,
                PositionEmbedding = Matrix("wpe.weight", _spec.MaxPositions, d),
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
            var embed = Matrix("embed_tokens.weight", _spec.VocabSize, d);
            if (_spec.TiedEmbeddings) embed = Prepared(embed, _spec.VocabSize, d);
            var layers = new List<LayerWeights>(); // grown, not pre-sized: a bogus layer count fails at its first missing layer
            for (int i = 0; i < _spec.Layers; i++)
            {
                string p = $"layers.{i}.";
                string a = p + "self_attn.";
                layers.Add(new LayerWeights
                {
                    AttentionNorm = Vector(p + "input_layernorm.weight", d),
                    Qkv = Prepared(Fused(d, (a + "q_proj.weight", q), (a + "k_proj.weight", kv), (a + "v_proj.weight", kv)), q + 2 * kv, d),
                    QkvBias = _spec.QkvBias ? FusedVector((a + "q_proj.bias", q), (a + "k_proj.bias", kv), (a + "v_proj.bias", kv)) : null,
                    Output = Prepared(Matrix(a + "o_proj.weight", d, q), d, q),
                    OutputBias = _spec.OutputBias ? Vector(a + "o_proj.bias", d) : null,
                    MlpNorm = Vector(p + "post_attention_layernorm.weight", d),
                    Up = Prepared(Fused(d, (p + "mlp.gate_proj.weight", ff), (p + "mlp.up_proj.weight", ff)), 2 * ff, d),
                    UpBias = _spec.MlpBias ? FusedVector((p + "mlp.gate_proj.bias", ff), (p + "mlp.up_proj.bias", ff)) : null,
                    Down = Prepared(Matrix(p + "mlp.down_proj.weight", d, ff), d, ff),
                    DownBias = _spec.MlpBias ? Vector(p + "mlp.down_proj.bias", d) : null,
                });
            }
            var lmHead = _spec.TiedEmbeddings ? embed : Prepared(MatrixNoPrefix("lm_head.weight", _spec.VocabSize, d), _spec.VocabSize, d);
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

        /// <summary>A linear weight in the backend's layout (the row-major copy is released).</summary>
        private Tensor Prepared(Tensor rowMajor, int rows, int cols)
        {
            var prepared = backend.PrepareLinear(rowMajor, rows, cols);
            if (ReferenceEquals(prepared, rowMajor)) return prepared;
            _loaded.Remove(rowMajor);
            return Track(prepared);
        }

        private Tensor Matrix(string name, int rows, int cols) => MatrixNoPrefix(_prefix + name, rows, cols);

        private Tensor MatrixNoPrefix(string fullName, int rows, int cols)
        {
            var (file, info, dtype) = Find(fullName, rows, cols);
            var tensor = Track(backend.Allocate(dtype, (long)rows * cols));
            CopyRaw(file, info, tensor, 0);
            return tensor;
        }

        /// <summary>Matrices stacked along the output dimension into one [Σ rows, cols] tensor.</summary>
        private Tensor Fused(int cols, params (string Name, int Rows)[] parts)
        {
            var found = parts.Select(p => Find(_prefix + p.Name, p.Rows, cols)).ToArray();
            var dtype = found[0].DType;
            foreach (var f in found)
                if (f.DType != dtype) throw new CheckpointException(f.File.FilePath, f.Info.Name, $"dtype {f.DType} differs from {found[0].Info.Name} ({dtype}); fused tensors need one dtype");
            var tensor = Track(backend.Allocate(dtype, (long)parts.Sum(p => p.Rows) * cols));
            long offset = 0;
            foreach (var f in found)
            {
                CopyRaw(f.File, f.Info, tensor, offset);
                offset += f.Info.ElementCount;
            }
            return tensor;
        }

        /// <summary>A GPT-2 Conv1D weight stored [in, out], transposed to [out, in].</summary>
        private Tensor Conv1D(string name, int inDim, int outDim)
        {
            var (file, info, dtype) = Find(_prefix + name, inDim, outDim);
            var source = file.Bytes(info, 0, checked((int)info.ByteLength));
            var transposed = new byte[source.Length];
            if (dtype.Size() == 4) Transpose(MemoryMarshal.Cast<byte, int>(source), MemoryMarshal.Cast<byte, int>(transposed.AsSpan()), inDim, outDim);
            else Transpose(MemoryMarshal.Cast<byte, short>(source), MemoryMarshal.Cast<byte, short>(transposed.AsSpan()), inDim, outDim);
            var tensor = Track(backend.Allocate(dtype, (long)inDim * outDim));
            backend.Upload(tensor, transposed);
            return tensor;
        }

        private static void Transpose<T>(ReadOnlySpan<T> source, Span<T> destination, int rows, int cols)
        {
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++)
                    destination[c * rows + r] = source[r * cols + c];
        }

        private Tensor Vector(string name, int length) => FusedVector((name, length));

        /// <summary>Vectors (norm weights, biases) concatenated and converted to F32.</summary>
        private Tensor FusedVector(params (string Name, int Length)[] parts)
        {
            var found = parts.Select(p => Find(_prefix + p.Name, p.Length)).ToArray(); // before allocating for the config's sizes
            var values = new float[parts.Sum(p => p.Length)];
            int offset = 0;
            for (int i = 0; i < parts.Length; i++)
            {
                var (file, info, dtype) = found[i];
                ToFloat32(file.Bytes(info, 0, checked((int)info.ByteLength)), dtype, values.AsSpan(offset, parts[i].Length));
                offset += parts[i].Length;
            }
            var tensor = Track(backend.Allocate(DType.F32, values.Length));
            backend.Upload(tensor, MemoryMarshal.AsBytes(values.AsSpan()));
            return tensor;
        }

        private void CopyRaw(SafeTensorsFile file, SafeTensorInfo info, Tensor tensor, long elementOffset)
        {
            const int chunk = 64 << 20;
            int size = tensor.DType.Size();
            for (long done = 0; done < info.ByteLength; done += chunk)
            {
                int count = (int)Math.Min(chunk, info.ByteLength - done);
                backend.Upload(tensor, file.Bytes(info, done, count), elementOffset + done / size);
            }
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
