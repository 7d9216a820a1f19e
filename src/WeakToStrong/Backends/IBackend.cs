namespace WeakToStrong.Backends;

/// <summary>Normalisation applied before attention, before the MLP and at the end of the stack.</summary>
public enum NormKind
{
    /// <summary>y = (x − mean) / sqrt(var + eps) · w + b (GPT-2).</summary>
    LayerNorm,

    /// <summary>y = x / sqrt(mean(x²) + eps) · w (Llama, Mistral, Qwen2).</summary>
    RmsNorm,
}

/// <summary>
/// How a ragged batch of tokens maps onto sequences and onto the paged KV cache. Built on the host once per
/// forward call; a device backend uploads it once (<see cref="IBackend.BeginBatch"/>) and every layer reuses it.
/// </summary>
public sealed class BatchLayout
{
    /// <summary>Tokens fed in this call, sequence after sequence. [tokens]</summary>
    public required int[] Tokens { get; init; }

    /// <summary>Absolute position of each token in its sequence. [tokens]</summary>
    public required int[] Positions { get; init; }

    /// <summary>Index (into the block tables) of the sequence each token belongs to. [tokens]</summary>
    public required int[] TokenSequence { get; init; }

    /// <summary>KV slot (block · blockSize + offset) each token's key and value are written to. [tokens]</summary>
    public required int[] SlotMapping { get; init; }

    /// <summary>Block tables of the batch's sequences, row-major, padded with −1. [sequences, MaxBlocksPerSequence]</summary>
    public required int[] BlockTables { get; init; }

    public required int MaxBlocksPerSequence { get; init; }

    public int TokenCount => Tokens.Length;

    public int SequenceCount => MaxBlocksPerSequence == 0 ? 0 : BlockTables.Length / MaxBlocksPerSequence;
}

/// <summary>Geometry of one model's paged KV cache: every layer has a key pool and a value pool.</summary>
/// <param name="Layers">Transformer layers.</param>
/// <param name="Blocks">Blocks in the pool.</param>
/// <param name="BlockSize">Tokens per block.</param>
/// <param name="KvHeads">Key/value heads.</param>
/// <param name="HeadDim">Elements per head.</param>
public readonly record struct KvGeometry(int Layers, int Blocks, int BlockSize, int KvHeads, int HeadDim)
{
    /// <summary>Elements of one layer's key (or value) pool: [blocks, blockSize, kvHeads, headDim].</summary>
    public long LayerElements => (long)Blocks * BlockSize * KvHeads * HeadDim;

    /// <summary>Elements of one block of one layer's key (or value) pool.</summary>
    public long BlockElements => (long)BlockSize * KvHeads * HeadDim;
}

/// <summary>Rotary position embedding parameters; inverse frequencies are precomputed (incl. llama3 scaling).</summary>
/// <param name="InverseFrequencies">θ_i for i in [0, headDim/2): angle = position · θ_i. Rotate-half pairing (i, i + headDim/2).</param>
public sealed record RopeTable(double[] InverseFrequencies);

/// <summary>Per-row sampling settings.</summary>
/// <param name="Temperature">0 = greedy (argmax).</param>
/// <param name="TopK">0 = no top-k cut.</param>
/// <param name="TopP">1 = no nucleus cut.</param>
/// <param name="Seed">Run seed.</param>
/// <param name="SequenceKey">Identifies the sequence for the counter-based RNG.</param>
/// <param name="Position">Position of the token being sampled (the RNG counter).</param>
public readonly record struct SamplingRow(float Temperature, int TopK, float TopP, ulong Seed, ulong SequenceKey, int Position);

/// <summary>
/// The ops interface: memory plus every operation the transformer forward needs. The CPU backend is the
/// reference; every other backend is tested against it. All activations are F32; weights may be F32, F16 or BF16.
/// Operations are issued in order; <see cref="Download"/> and the host-returning ops synchronise.
/// </summary>
public interface IBackend : IDisposable
{
    /// <summary>"cpu" or "cuda".</summary>
    string Name { get; }

    /// <summary>A zero-filled tensor.</summary>
    Tensor Allocate(DType dtype, long length);

    /// <summary>Copies raw bytes (already in the tensor's element type) into the tensor at an element offset.</summary>
    void Upload(Tensor destination, ReadOnlySpan<byte> source, long elementOffset = 0);

    /// <summary>Copies an F32 tensor (or its first <paramref name="destination"/>.Length elements) to the host.</summary>
    void Download(Tensor source, Span<float> destination);

    /// <summary>Makes the batch layout visible to the ops that take it (uploads it on a device backend).</summary>
    void BeginBatch(BatchLayout layout);

    /// <summary>x[t] = tokenEmbedding[tokens[t]] (+ positionEmbedding[positions[t]]). x: [tokens, dim].</summary>
    void Embed(BatchLayout layout, Tensor tokenEmbedding, Tensor? positionEmbedding, Tensor x, int dim);

    /// <summary>
    /// residual += delta (when given), then y = norm(residual) · weight (+ bias). residual, delta, y: [rows, dim].
    /// </summary>
    void AddNorm(Tensor residual, Tensor? delta, Tensor weight, Tensor? bias, Tensor y, int rows, int dim, NormKind kind, float eps);

    /// <summary>
    /// Puts a row-major [outDim, inDim] weight into the layout this backend's <see cref="Linear"/> reads, taking
    /// ownership of <paramref name="w"/>: the result is <paramref name="w"/> itself or a new tensor (then
    /// <paramref name="w"/> is disposed). <see cref="Embed"/> accepts the result too, for tied embeddings.
    /// </summary>
    Tensor PrepareLinear(Tensor w, int outDim, int inDim);

    /// <summary>
    /// The weight <see cref="PrepareLinear"/> would give for host bytes in <paramref name="dtype"/>, built straight
    /// from them (the loader passes spans of the mapped file: no intermediate copy is made where the layout
    /// differs). The bytes are W [outDim, inDim] row-major, or with <paramref name="transposed"/> Wᵀ [inDim, outDim]
    /// row-major (GPT-2's Conv1D).
    /// </summary>
    Tensor LoadLinear(ReadOnlySpan<byte> bytes, DType dtype, int outDim, int inDim, bool transposed = false);

    /// <summary>
    /// <see cref="LoadLinear(ReadOnlySpan{byte}, DType, int, int, bool)"/> held as <paramref name="format"/> says:
    /// <see cref="LinearWeights.Stored"/> is that method; a format this backend does not have throws
    /// <see cref="NotSupportedException"/> with one line naming it (<see cref="LinearWeights.Int8"/> is CPU-only).
    /// </summary>
    Tensor LoadLinear(ReadOnlySpan<byte> bytes, DType dtype, int outDim, int inDim, bool transposed, LinearWeights format) =>
        format == LinearWeights.Stored ? LoadLinear(bytes, dtype, outDim, inDim, transposed)
            : throw new NotSupportedException($"the {Name} backend has no {format.Name()} weights: --weights {format.Name()} runs on the cpu backend only");

    /// <summary>y = x · Wᵀ (+ bias). x: [rows, inDim] F32; w: a weight from <see cref="PrepareLinear"/>, any weight
    /// type; y: [rows, outDim].</summary>
    void Linear(Tensor x, Tensor w, Tensor? bias, Tensor y, int rows, int inDim, int outDim);

    /// <summary>
    /// qkv: [tokens, (heads + 2·kvHeads)·headDim] laid out q | k | v. Applies rotary embedding to q and k in place
    /// (when <paramref name="rope"/> is given) and writes k and v into the layer's cache pools at each token's slot.
    /// </summary>
    void RopeAndCacheWrite(BatchLayout layout, Tensor qkv, Tensor keyCache, Tensor valueCache, RopeTable? rope, int heads, int kvHeads, int headDim, int blockSize);

    /// <summary>
    /// Causal attention over the paged cache: token t attends to positions [0, positions[t]] of its sequence.
    /// qkv as in <see cref="RopeAndCacheWrite"/> (only q is read); output: [tokens, heads·headDim]. Query head h
    /// uses KV head h / (heads / kvHeads).
    /// </summary>
    void Attention(BatchLayout layout, Tensor qkv, Tensor keyCache, Tensor valueCache, Tensor output, int heads, int kvHeads, int headDim, int blockSize);

    /// <summary>x = gelu_tanh(x) elementwise over the first <paramref name="count"/> elements.</summary>
    void GeluTanh(Tensor x, long count);

    /// <summary>y[r, i] = silu(gateUp[r, i]) · gateUp[r, ff + i]. gateUp: [rows, 2·ff]; y: [rows, ff].</summary>
    void SiluGate(Tensor gateUp, Tensor y, int rows, int ff);

    /// <summary>dst[i] = src[rows[i]] for rows of <paramref name="dim"/> elements.</summary>
    void GatherRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination, int dim);

    /// <summary>
    /// Fused log-sum-exp + gather: result[r] = logits[r, targets[r]] − log Σ_v exp(logits[r, v]); no softmax is
    /// materialised. logits: [rows, vocab].
    /// </summary>
    void LogProbOfTargets(Tensor logits, int rows, int vocab, ReadOnlySpan<int> targets, Span<float> result);

    /// <summary>Samples one token per row of logits [rows, vocab] (greedy when temperature is 0).</summary>
    void Sample(Tensor logits, int vocab, ReadOnlySpan<SamplingRow> rows, Span<int> result);

    /// <summary>Copies one block of one layer's key and value pools (copy-on-write of a shared block).</summary>
    void CopyBlock(Tensor keyCache, Tensor valueCache, KvGeometry geometry, int sourceBlock, int destinationBlock);
}
