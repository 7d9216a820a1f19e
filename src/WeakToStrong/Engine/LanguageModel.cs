using WeakToStrong.Backends;
using WeakToStrong.Backends.Cpu;
using WeakToStrong.Checkpoints;
using WeakToStrong.Engine.KvCache;
using WeakToStrong.Tokenization;

namespace WeakToStrong.Engine;

/// <summary>Options for loading a model.</summary>
public sealed record ModelOptions
{
    /// <summary>"cpu" (default) or "cuda".</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>KV blocks in the pool; null sizes the pool from <see cref="KvBudget"/>.</summary>
    public int? KvBlocks { get; init; }

    /// <summary>KV memory for the pool (for all models, when several are loaded together); null chooses it from
    /// the machine's memory (<see cref="KvCache.KvBudget.Default"/>).</summary>
    public KvBudget? KvBudget { get; init; }

    public int KvBlockSize { get; init; } = 16;

    /// <summary>How the linear weights are held: as stored (default) or <see cref="LinearWeights.Int8"/> (cpu only;
    /// see docs/int8.md for its measured error and speed).</summary>
    public LinearWeights Weights { get; init; } = LinearWeights.Stored;
}

/// <summary>
/// A loaded model: checkpoint, weights in a backend, KV pool. Token-level scoring and generation; every call
/// validates its input and names what is wrong.
/// </summary>
public sealed class LanguageModel : IDisposable
{
    private readonly Checkpoint _checkpoint;
    private readonly bool _ownsBackend;
    private readonly Lazy<(TextTokenizer? Tokenizer, TokenizerException? Error)> _tokenizer;

    private LanguageModel(Checkpoint checkpoint, Transformer transformer, bool ownsBackend)
    {
        _checkpoint = checkpoint;
        Transformer = transformer;
        _ownsBackend = ownsBackend;
        _tokenizer = new(() =>
        {
            try
            {
                return (TextTokenizer.Load(checkpoint.Directory), null);
            }
            catch (TokenizerException e)
            {
                return (null, e);
            }
        });
    }

    /// <summary>The folder's tokenizer (loaded on first use); throws <see cref="TokenizerException"/> when it has none.</summary>
    public TextTokenizer Tokenizer => _tokenizer.Value.Tokenizer ?? throw _tokenizer.Value.Error!;

    /// <summary>Whether the folder has a tokenizer we can load.</summary>
    public bool HasTokenizer => _tokenizer.Value.Tokenizer is not null;

    public Transformer Transformer { get; }

    public ModelSpec Spec => Transformer.Spec;

    public string Directory => _checkpoint.Directory;

    public Checkpoint Checkpoint => _checkpoint;

    /// <summary>Opens a Hugging Face model folder on the given device.</summary>
    public static LanguageModel Load(string directory, ModelOptions? options = null, IBackend? backend = null)
    {
        options ??= new ModelOptions();
        var checkpoint = Checkpoint.Open(directory);
        bool owns = backend is null;
        try
        {
            ModelWeights.Validate(checkpoint); // a broken checkpoint is named before its pool is sized
            backend ??= Backends.BackendFactory.Create(options.Device);
            int blocks = options.KvBlocks ?? (options.KvBudget ?? KvBudget.Default([checkpoint.Spec])).BlocksPerModel([checkpoint.Spec], options.KvBlockSize);
            var transformer = Transformer.Load(checkpoint, backend, blocks, options.KvBlockSize, options.Weights);
            return new LanguageModel(checkpoint, transformer, owns);
        }
        catch
        {
            checkpoint.Dispose();
            if (owns) backend?.Dispose();
            throw;
        }
    }

    /// <summary>log p(continuation[i] | prompt, continuation[&lt;i]) for every continuation token.</summary>
    public float[] Score(IReadOnlyList<int> prompt, IReadOnlyList<int> continuation, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(continuation);
        if (prompt.Count == 0) throw new ArgumentException("the prompt needs at least one token (e.g. BOS)", nameof(prompt));
        CheckLength(prompt.Count + continuation.Count);
        if (continuation.Count == 0) return [];
        using var sequence = Transformer.CreateSequence(prompt.Concat(continuation));
        var result = Transformer.Forward([new ForwardRequest(sequence, FeedUntil: sequence.Length - 1, TargetLogProbs: true)], cancellationToken)[0];
        return result.TargetLogProbs[(prompt.Count - 1)..];
    }

    /// <summary>
    /// Samples up to <paramref name="maxNewTokens"/> tokens (fewer if the context fills); stops after an EOS token
    /// (which is included). <paramref name="onToken"/> sees each token as it is sampled.
    /// </summary>
    public List<int> Generate(IReadOnlyList<int> prompt, int maxNewTokens, SamplingSettings sampling, ulong sequenceKey = 0, Action<int>? onToken = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(sampling);
        sampling.Validate();
        ArgumentOutOfRangeException.ThrowIfNegative(maxNewTokens);
        if (prompt.Count == 0) throw new ArgumentException("the prompt needs at least one token (e.g. BOS)", nameof(prompt));
        CheckLength(prompt.Count);
        maxNewTokens = Math.Min(maxNewTokens, Spec.MaxPositions - prompt.Count);
        var output = new List<int>();
        using var sequence = Transformer.CreateSequence(prompt, sequenceKey);
        for (int i = 0; i < maxNewTokens; i++)
        {
            int token = Transformer.Forward([new ForwardRequest(sequence, Sampling: sampling)], cancellationToken)[0].SampledToken;
            output.Add(token);
            sequence.Append(token);
            onToken?.Invoke(token);
            if (Spec.EosTokenIds.Contains(token)) break;
        }
        return output;
    }

    private void CheckLength(int tokens)
    {
        if (tokens > Spec.MaxPositions)
            throw new ArgumentException($"{tokens} tokens exceed the model's context of {Spec.MaxPositions} positions");
    }

    public void Dispose()
    {
        var backend = Transformer.Backend;
        Transformer.Dispose();
        _checkpoint.Dispose();
        if (_ownsBackend) backend.Dispose();
    }
}
