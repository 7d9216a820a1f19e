using System.Runtime.CompilerServices;
using WeakToStrong.Backends;
using WeakToStrong.Chat;
using WeakToStrong.Checkpoints;
using WeakToStrong.Engine;
using WeakToStrong.Engine.KvCache;
using WeakToStrong.Engine.Scheduling;
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

    /// <summary>The large model's linear weights when they differ from <see cref="ModelOptions.Weights"/> of
    /// <see cref="Model"/> (e.g. an int8 large model steered by a stored small pair); null: the same.</summary>
    public LinearWeights? LargeWeights { get; init; }

    /// <summary>The small pair's linear weights when they differ from <see cref="ModelOptions.Weights"/> of
    /// <see cref="Model"/>; null: the same.</summary>
    public LinearWeights? SmallWeights { get; init; }

    /// <summary>Chat templates per model; null picks the one tokenizer_config.json names (none when it names none).</summary>
    public ChatTemplate? LargeTemplate { get; init; }

    public ChatTemplate? TunedTemplate { get; init; }

    public ChatTemplate? UntunedTemplate { get; init; }

    /// <summary>
    /// Run every forward of the local models on one <see cref="EngineLoop"/>, so that concurrent requests are
    /// batched step by step instead of running one at a time.
    /// </summary>
    public bool ContinuousBatching { get; init; }
}

/// <summary>
/// The search entry point: a large model and the small pair that steers it. Without an engine loop, requests run
/// one at a time on the shared models (the engine's forward is not re-entrant); with one
/// (<see cref="SearchModelOptions.ContinuousBatching"/>), any number run at once and their forward steps are
/// merged into one ragged forward per model.
/// </summary>
public sealed class WeakToStrongSearch : IDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly IDisposable[] _owned;

    public WeakToStrongSearch(ILargeModel large, ChatModel tuned, ChatModel untuned)
        : this(new SearchContext(large, tuned, untuned), [], null)
    {
    }

    /// <summary>
    /// A search over models built elsewhere whose forwards run on a new <see cref="EngineLoop"/> (continuous
    /// batching); the search owns and stops the loop, not the models.
    /// </summary>
    public static WeakToStrongSearch WithEngineLoop(ILargeModel large, ChatModel tuned, ChatModel untuned)
    {
        ArgumentNullException.ThrowIfNull(large);
        ArgumentNullException.ThrowIfNull(tuned);
        ArgumentNullException.ThrowIfNull(untuned);
        var loop = new EngineLoop();
        if (large is LocalLargeModel local) loop.Attach(local.Model.Transformer);
        loop.Attach(tuned.Transformer);
        loop.Attach(untuned.Transformer);
        return new WeakToStrongSearch(new SearchContext(large, tuned, untuned), [loop], loop);
    }

    private WeakToStrongSearch(SearchContext context, IDisposable[] owned, EngineLoop? loop)
    {
        ArgumentNullException.ThrowIfNull(context.Large);
        ArgumentNullException.ThrowIfNull(context.Tuned);
        ArgumentNullException.ThrowIfNull(context.Untuned);
        Context = context;
        _owned = owned;
        Loop = loop;
        string[] roles = context.Large is LocalLargeModel ? ["large", "tuned", "untuned"] : ["tuned", "untuned"];
        Admission = new KvAdmission(LocalModels.Select((m, i) => (roles[i], m.Transformer.Cache)).ToList());
    }

    public SearchContext Context { get; }

    /// <summary>The loop that batches the local models' forwards, or null when requests run one at a time.</summary>
    public EngineLoop? Loop { get; }

    /// <summary>The local models (large when local, tuned, untuned) with their KV pools, for monitoring.</summary>
    public IReadOnlyList<ChatModel> LocalModels =>
        Context.Large is LocalLargeModel local ? [local.Model, Context.Tuned, Context.Untuned] : [Context.Tuned, Context.Untuned];

    /// <summary>
    /// Admission control over the local models' KV pools (named by role: large, tuned, untuned), shared by every
    /// front end of this search: the server and the chat clients reserve a request's
    /// <see cref="SearchCapacity.Plan"/> here before running it, so concurrent requests never run out of KV half-way.
    /// <see cref="RunAsync"/> and <see cref="StreamAsync"/> do not reserve; a caller running requests concurrently
    /// on an engine loop reserves first.
    /// </summary>
    public KvAdmission Admission { get; }

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
        var localModels = new[] { (options.LargeModel is null ? options.LargeDirectory : null, false), (options.TunedDirectory, true), (options.UntunedDirectory, true) }
            .Where(m => m.Item1 is not null).Select(m => (Name: m.Item1!, Spec: ValidatedSpec(m.Item1!), Scorer: m.Item2)).ToArray();
        var specs = localModels.Select(m => m.Spec).ToArray();
        var budget = modelOptions.KvBlocks is null ? modelOptions.KvBudget ?? KvBudget.Default(specs) : null;
        int blocks = modelOptions.KvBlocks ?? budget!.BlocksPerModel(specs, modelOptions.KvBlockSize);
        if (shape is not null) SearchCapacity.CheckBeforeLoading(shape, localModels, blocks, modelOptions.KvBlockSize);
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
                var model = ChatModel.Load(options.LargeDirectory, modelOptions with { Weights = options.LargeWeights ?? modelOptions.Weights }, options.LargeTemplate, backend);
                owned.Add(model);
                large = new LocalLargeModel(model);
            }
            var small = modelOptions with { Weights = options.SmallWeights ?? modelOptions.Weights };
            var tuned = ChatModel.Load(options.TunedDirectory, small, options.TunedTemplate, backend);
            owned.Add(tuned);
            var untuned = ChatModel.Load(options.UntunedDirectory, small, options.UntunedTemplate, backend);
            owned.Add(untuned);
            owned.Add(backend); // disposed after the models that use it
            EngineLoop? loop = null;
            if (options.ContinuousBatching)
            {
                loop = new EngineLoop();
                owned.Insert(0, loop); // stopped before the models it runs are disposed
                if (large is LocalLargeModel localLarge) loop.Attach(localLarge.Model.Transformer);
                loop.Attach(tuned.Transformer);
                loop.Attach(untuned.Transformer);
            }
            return new WeakToStrongSearch(new SearchContext(large, tuned, untuned), [.. owned], loop) { KvBudget = budget, KvBlocksPerModel = blocks };
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
        if (Loop is not null)
            return await SearchMethods.For(request.Method).RunAsync(Context, request, cancellationToken).ConfigureAwait(false);
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

    /// <summary>
    /// Runs one request, yielding its response text as it becomes final (see <see cref="SearchUpdate"/>); the last
    /// update carries the result. Same seed, same text as <see cref="RunAsync"/>. Cancelling (checked between
    /// steps) or leaving the enumeration early frees every KV block the request holds.
    /// </summary>
    public IAsyncEnumerable<SearchUpdate> StreamAsync(SearchRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        request.Validate();
        return Stream(request, cancellationToken);
    }

    private async IAsyncEnumerable<SearchUpdate> Stream(SearchRequest request, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        if (Loop is not null)
        {
            await foreach (var update in SearchMethods.For(request.Method).StreamAsync(Context, request, cancellationToken).ConfigureAwait(false))
                yield return update;
            yield break;
        }
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await foreach (var update in SearchMethods.For(request.Method).StreamAsync(Context, request, cancellationToken).ConfigureAwait(false))
                yield return update;
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
