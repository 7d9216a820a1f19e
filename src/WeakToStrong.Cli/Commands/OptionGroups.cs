using System.CommandLine;
using WeakToStrong.Chat;
using WeakToStrong.Engine;
using WeakToStrong.Engine.KvCache;
using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;
using WeakToStrong.Tokenization;

namespace WeakToStrong.Cli.Commands;

/// <summary>
/// --temperature, --top-k, --top-p, --seed and --max-new-tokens, declared once for <c>w2s search</c>, <c>eval</c>
/// and <c>generate</c>. The defaults are each command's own: a search samples as the published settings do, one
/// model alone samples its full distribution.
/// </summary>
internal sealed class SamplingOptions
{
    /// <summary>The published search settings (temperature 0.7, top-k 50, top-p 1, 50 new tokens).</summary>
    public static SamplingOptions ForSearch()
    {
        var defaults = new SearchRequest { Prompt = "" };
        return new(defaults.Sampling, defaults.MaxNewTokens, "longest response in large-model tokens");
    }

    /// <summary>The full distribution (temperature 1, no top-k or top-p); the number of new tokens is required.</summary>
    public static SamplingOptions ForGenerate() => new(new SamplingSettings(), maxNewTokens: null, "most tokens to generate");

    private SamplingOptions(SamplingSettings defaults, int? maxNewTokens, string maxNewTokensDescription)
    {
        Temperature = new("--temperature") { Description = "sampling temperature (0 = greedy)", DefaultValueFactory = _ => defaults.Temperature };
        TopK = new("--top-k") { Description = "keep the K most likely tokens (0 = all)", DefaultValueFactory = _ => defaults.TopK };
        TopP = new("--top-p") { Description = "nucleus probability (1 = all)", DefaultValueFactory = _ => defaults.TopP };
        Seed = new("--seed") { Description = "RNG seed", DefaultValueFactory = _ => defaults.Seed };
        MaxNewTokens = maxNewTokens is { } max
            ? new("--max-new-tokens") { Description = maxNewTokensDescription, DefaultValueFactory = _ => max }
            : new("--max-new-tokens") { Description = maxNewTokensDescription, Required = true };
    }

    public Option<float> Temperature { get; }

    public Option<int> TopK { get; }

    public Option<float> TopP { get; }

    public Option<ulong> Seed { get; }

    public Option<int> MaxNewTokens { get; }

    public IEnumerable<Option> All => [Temperature, TopK, TopP, Seed, MaxNewTokens];

    /// <summary>The sampling settings given; <paramref name="seed"/> overrides --seed. Not validated here.</summary>
    public SamplingSettings Settings(ParseResult r, ulong? seed = null) =>
        new(r.GetValue(Temperature), r.GetValue(TopK), r.GetValue(TopP), seed ?? r.GetValue(Seed));
}

/// <summary>
/// One input given either as text or as token ids (<c>--prompt</c> / <c>--prompt-tokens</c>, <c>--continuation</c> /
/// <c>--continuation-tokens</c>), exactly one of the two, declared once for <c>w2s score</c> and <c>generate</c>.
/// </summary>
internal sealed class TextOrTokensOptions(string name)
{
    public Option<string> Text { get; } = new("--" + name) { Description = name + " text" };

    public Option<string> Tokens { get; } = new("--" + name + "-tokens") { Description = name + " token ids, e.g. 1,2,3" };

    public IEnumerable<Option> All => [Text, Tokens];

    /// <summary>The token ids given, or the text's tokens (with the tokenizer's BOS when <paramref name="addBos"/>); never empty.</summary>
    public int[] Read(ParseResult r, Func<TextTokenizer> tokenizer, bool addBos)
    {
        string? text = r.GetValue(Text), tokens = r.GetValue(Tokens);
        if ((text is null) == (tokens is null)) throw new UsageException($"give exactly one of {Text.Name} and {Tokens.Name}");
        int[] ids = tokens is not null ? Cli.ParseTokens(tokens, Tokens.Name) : [.. tokenizer().Encode(text!, addBos)];
        if (ids.Length == 0) throw new UsageException($"{(text is not null ? Text.Name : Tokens.Name)} gives no tokens");
        return ids;
    }

    /// <summary>Refuses token ids the model has no row for, naming the option they came from.</summary>
    public void CheckVocabulary(ParseResult r, int[] ids, int vocabSize)
    {
        foreach (int id in ids)
            if (id >= vocabSize)
                throw new UsageException($"{(r.GetValue(Tokens) is not null ? Tokens.Name : Text.Name)}: token id {id} is outside the vocabulary [0, {vocabSize})");
    }
}

/// <summary>
/// The KV pools of the local models: --kv-memory (a budget they share; by default chosen from memory) or
/// --kv-blocks (a block count each), declared once for <c>w2s search</c>, <c>eval</c> and <c>serve</c>.
/// </summary>
internal sealed class KvOptions
{
    public Option<int?> Blocks { get; } = new("--kv-blocks") { Description = "KV cache blocks of 16 tokens per model (instead of --kv-memory)" };

    public Option<string> Memory { get; } = new(OptionNames.KvMemory) { Description = "KV cache memory shared by the local models, e.g. 512MiB, 2GB (default: 1/8 of memory, at most 8 full contexts per model)" };

    public IEnumerable<Option> All => [Blocks, Memory];

    /// <summary>A block count each, or a budget shared by the models (null: the default from memory).</summary>
    public (int? Blocks, KvBudget? Budget) Pools(ParseResult r)
    {
        int? blocks = r.GetValue(Blocks);
        string? memory = r.GetValue(Memory);
        if (blocks is not null && memory is not null) throw new UsageException($"give at most one of {Memory.Name} and {Blocks.Name}");
        if (blocks is < 1) throw new UsageException($"{Blocks.Name}: {blocks} is not a positive block count");
        return (blocks, Cli.KvMemory(memory));
    }
}

/// <summary>
/// The three models of a search: a local large model (--large) or an OpenAI-compatible endpoint (--large-url …),
/// the small tuned/untuned pair, their chat templates and the device; declared once for <c>w2s search</c>,
/// <c>eval</c> and <c>serve</c>. Without --large/--tuned/--untuned the bundled sentiment models are loaded.
/// </summary>
internal sealed class ModelSelectionOptions
{
    public Option<string> Large { get; } = new("--large") { Description = "large model folder (the model being steered)" };
    public Option<string> LargeUrl { get; } = new("--large-url") { Description = "instead of --large: an OpenAI-compatible completions endpoint, e.g. http://host:8000/v1" };
    public Option<string> LargeApiModel { get; } = new("--large-api-model") { Description = "the endpoint's model name (with --large-url)" };
    public Option<string> ApiKeyEnv { get; } = new("--api-key-env") { Description = "environment variable holding the endpoint's API key", DefaultValueFactory = _ => "OPENAI_API_KEY" };
    public Option<bool> NoTopK { get; } = new("--no-top-k-param") { Description = "do not send top_k to the endpoint (OpenAI's API rejects it)" };
    public Option<string> Tuned { get; } = new("--tuned") { Description = "small tuned model folder (e.g. DPO/SFT-aligned); without --large/--tuned/--untuned the bundled sentiment models are used" };
    public Option<string> Untuned { get; } = new("--untuned") { Description = "small untuned model folder (the tuned model's base)" };
    public Option<string> LargeTemplate { get; } = Template("--large-template");
    public Option<string> TunedTemplate { get; } = Template("--tuned-template");
    public Option<string> UntunedTemplate { get; } = Template("--untuned-template");
    public Option<string> Device { get; } = Cli.Device();
    public Option<string> Weights { get; } = WeightsOption.Create();
    public Option<string> LargeWeights { get; } = WeightsOption.Override("--large-weights", "the large model");
    public Option<string> SmallWeights { get; } = WeightsOption.Override("--small-weights", "the tuned and untuned models");

    /// <summary>The KV pools the local models get.</summary>
    public KvOptions Kv { get; } = new();

    public IEnumerable<Option> All =>
        [Large, LargeUrl, LargeApiModel, ApiKeyEnv, NoTopK, Tuned, Untuned, LargeTemplate, TunedTemplate, UntunedTemplate, .. Kv.All, Device, Weights, LargeWeights, SmallWeights];

    private static Option<string> Template(string name) =>
        new(name) { Description = $"chat template: auto (from tokenizer_config.json), {string.Join(", ", ChatTemplate.Names)}", DefaultValueFactory = _ => "auto" };

    /// <summary>Loads the three models (each with its tokenizer and template), or the small pair and a remote large model.</summary>
    /// <param name="r">The parsed command line.</param>
    /// <param name="shape">A request whose shape is checked against the KV pools before the weights are loaded.</param>
    /// <param name="continuousBatching">Run the models behind an engine loop that merges concurrent requests' forwards.</param>
    /// <param name="remoteOptions">Adjusts a remote large model's options (timeouts and retries of <c>w2s serve</c>).</param>
    public WeakToStrongSearch Load(ParseResult r, SearchRequest? shape = null, bool continuousBatching = false,
        Func<OpenAiCompletionsOptions, OpenAiCompletionsOptions>? remoteOptions = null)
    {
        string? folder = r.GetValue(Large), url = r.GetValue(LargeUrl), tuned = r.GetValue(Tuned), untuned = r.GetValue(Untuned);
        if (folder is null && url is null && tuned is null && untuned is null)
        {
            // No model named: the bundled sentiment models (samples/sentiment).
            folder = BundledModels.Folder(BundledModels.Large);
            tuned = BundledModels.Folder(BundledModels.Tuned);
            untuned = BundledModels.Folder(BundledModels.Untuned);
        }
        if ((folder is null) == (url is null)) throw new UsageException("give exactly one of --large (a model folder) and --large-url (a completions endpoint)");
        if (tuned is null || untuned is null) throw new UsageException("give both --tuned and --untuned (or none of --large/--tuned/--untuned for the bundled sentiment models)");
        var largeTemplate = ParseTemplate(r, LargeTemplate);
        ILargeModel? remote = null;
        if (url is not null)
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var endpoint) || endpoint.Scheme is not ("http" or "https"))
                throw new UsageException($"--large-url: '{url}' is not an http(s) URL");
            string model = r.GetValue(LargeApiModel) ?? throw new UsageException("--large-url needs --large-api-model (the endpoint's model name)");
            var options = new OpenAiCompletionsOptions
            {
                Endpoint = endpoint,
                Model = model,
                ApiKey = Environment.GetEnvironmentVariable(r.GetValue(ApiKeyEnv)!),
                Template = largeTemplate ?? ChatTemplate.None,
                SendTopK = !r.GetValue(NoTopK),
            };
            remote = new OpenAiCompletionsModel(remoteOptions?.Invoke(options) ?? options);
        }
        var (kvBlocks, kvBudget) = Kv.Pools(r);
        return SearchOptions.Explained(() => WeakToStrongSearch.Load(new SearchModelOptions
        {
            LargeDirectory = folder,
            LargeModel = remote,
            TunedDirectory = tuned,
            UntunedDirectory = untuned,
            Model = new Engine.ModelOptions { Device = r.GetValue(Device)!, KvBlocks = kvBlocks, KvBudget = kvBudget, Weights = WeightsOption.Parse(r.GetValue(Weights)!) },
            LargeWeights = WeightsOption.ParseOverride(r.GetValue(LargeWeights), "--large-weights"),
            SmallWeights = WeightsOption.ParseOverride(r.GetValue(SmallWeights), "--small-weights"),
            LargeTemplate = largeTemplate,
            TunedTemplate = ParseTemplate(r, TunedTemplate),
            UntunedTemplate = ParseTemplate(r, UntunedTemplate),
            ContinuousBatching = continuousBatching,
        }, shape));
    }

    /// <summary>The template an option names; null for auto (the model's own).</summary>
    private static ChatTemplate? ParseTemplate(ParseResult r, Option<string> option)
    {
        string? name = r.GetValue(option);
        if (name is null || name.Equals("auto", StringComparison.OrdinalIgnoreCase)) return null;
        return ChatTemplate.TryParse(name, out var template)
            ? template
            : throw new UsageException($"{option.Name}: unknown chat template '{name}'; known: {string.Join(", ", ChatTemplate.Names)}");
    }
}
