using WeakToStrong.Backends;
using WeakToStrong.Chat;
using WeakToStrong.Checkpoints;
using WeakToStrong.Engine;
using WeakToStrong.Engine.KvCache;
using WeakToStrong.Search.LargeModels;

namespace WeakToStrong.Search;

/// <summary>Where the three models of a search come from.</summary>
public sealed record SearchModelOptions
{
    /// <summary>Folder of the large model (unused when <see cref="LargeModel"/> is given).</summary>
    public string? LargeDirectory { get; init; }

    /// <summary>A large model built elsewhere, e.g. a remote completions endpoint; the search takes ownership.</summary>
    public ILargeModel? LargeModel { get; init; }

    public required string TunedDirectory { get; init; }

    public required string UntunedDirectory { get; init; }

    /// <summary>
    /// Device and KV pool of the local models. <see cref="ModelOptions.KvBudget"/> (or the default chosen from
    /// memory) is shared by the local models: each gets the same number of blocks.
    /// </summary>
    public ModelOptions Model { get; init; } = new();

    /// <summary>Chat templates per model; null picks the one tokenizer_config.json names (none when it names none).</summary>
    public ChatTemplate? LargeTemplate { get; init; }

    public ChatTemplate? TunedTemplate { get; init; }

    public ChatTemplate? UntunedTemplate { get; init; }
}

/// <summary>
/// The search entry point: a large model and the small pair that steers it. Requests run one at a time on the
/// shared models (the engine's forward is not re-entrant).
/// </summary>
public sealed class WeakToStrongSearch : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly IDisposable[] _owned;

    public WeakToStrongSearch(ILargeModel large, ChatModel tuned, ChatModel untuned)
        : this(new SearchContext(large, tuned, untuned), [])
    {
    }

    private WeakToStrongSearch(SearchContext context, IDisposable[] owned)
    {
        ArgumentNullException.ThrowIfNull(context.Large);
        ArgumentNullException.ThrowIfNull(context.Tuned);
        ArgumentNullException.ThrowIfNull(context.Untuned);
        Context = context;
        _owned = owned;
    }

    public SearchContext Context { get; }

    /// <summary>The KV budget the local models share (null when every pool was sized by <see cref="ModelOptions.KvBlocks"/>).</summary>
    public KvBudget? KvBudget { get; private init; }

    /// <summary>Blocks in each local model's KV pool.</summary>
    public int KvBlocksPerModel { get; private init; }

    /// <summary>
    /// Loads the models (each with its tokenizer and template) on one shared backend, so that on a GPU the large
    /// model's sampling and the small models' scoring are issued on one stream; the search owns and disposes them.
    /// </summary>
    /// <param name="options">The models and their pools.</param>
    /// <param name="shape">A request whose shape is checked against the pools before any weights are read
    /// (<see cref="SearchCapacity.CheckBeforeLoading"/>); every request is checked exactly when it runs anyway.</param>
    public static WeakToStrongSearch Load(SearchModelOptions options, SearchRequest? shape = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var owned = new List<IDisposable>();
        var modelOptions = options.Model ?? new ModelOptions();
        // Pools are sized before any weights are read (a broken checkpoint is named first), so a budget too small fails at once.
        var local = new[] { (options.LargeModel is null ? options.LargeDirectory : null, false), (options.TunedDirectory, true), (options.UntunedDirectory, true) }
            .Where(m => m.Item1 is not null).Select(m => (Name: m.Item1!, Spec: ValidatedSpec(m.Item1!), Scorer: m.Item2)).ToArray();
        var specs = local.Select(m => m.Spec).ToArray();
        var budget = modelOptions.KvBlocks is null ? modelOptions.KvBudget ?? KvBudget.Default(specs) : null;
        int blocks = modelOptions.KvBlocks ?? budget!.BlocksPerModel(specs, modelOptions.KvBlockSize);
        if (shape is not null) SearchCapacity.CheckBeforeLoading(shape, local, blocks, modelOptions.KvBlockSize);
        modelOptions = modelOptions with { KvBlocks = blocks };
        var backend = BackendFactory.Create(modelOptions.Device);
        try
        {
            ILargeModel large;
            if (options.LargeModel is not null)
            {
                large = options.LargeModel;
                owned.Add(large);
            }
            else
            {
                ArgumentException.ThrowIfNullOrWhiteSpace(options.LargeDirectory, nameof(options.LargeDirectory));
                var model = ChatModel.Load(options.LargeDirectory, modelOptions, options.LargeTemplate, backend);
                owned.Add(model);
                large = new LocalLargeModel(model);
            }
            var tuned = ChatModel.Load(options.TunedDirectory, modelOptions, options.TunedTemplate, backend);
            owned.Add(tuned);
            var untuned = ChatModel.Load(options.UntunedDirectory, modelOptions, options.UntunedTemplate, backend);
            owned.Add(untuned);
            owned.Add(backend); // disposed after the models that use it
            return new WeakToStrongSearch(new SearchContext(large, tuned, untuned), [.. owned]) { KvBudget = budget, KvBlocksPerModel = blocks };
        }
        catch
        {
            foreach (var d in owned) d.Dispose();
            backend.Dispose();
            throw;
        }
    }

    private static ModelSpec ValidatedSpec(string directory)
    {
        using var checkpoint = Checkpoint.Open(directory);
        ModelWeights.Validate(checkpoint);
        return checkpoint.Spec;
    }

    /// <summary>Runs one request with the method it names.</summary>
    public async Task<SearchResult> RunAsync(SearchRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        request.Validate();
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await SearchMethods.For(request.Method).RunAsync(Context, request, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    public void Dispose()
    {
        foreach (var d in _owned) d.Dispose();
        _gate.Dispose();
    }
}
