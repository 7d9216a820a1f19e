using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using WeakToStrong.Chat;
using WeakToStrong.Cli.Json;
using WeakToStrong.Engine;
using WeakToStrong.Engine.KvCache;
using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;

namespace WeakToStrong.Cli.Commands;

/// <summary>
/// <c>w2s search</c>: one prompt through weak-to-strong search (CBS, Best-of-N, EFT or plain sampling); prints the
/// response, its score and the work done.
/// </summary>
internal static class SearchCommand
{
    public static Command Create()
    {
        var options = new SearchOptions();
        var prompt = new Option<string>("--prompt") { Description = "the raw user prompt (or --messages)" };
        var messages = new Option<string>("--messages")
        {
            Description = "instead of --prompt: a JSON file (- for stdin) holding a conversation in OpenAI's messages format, [{\"role\": \"system\"|\"user\"|\"assistant\", \"content\": …}, …], ending with a user message; implies --chat",
        };
        var trace = new Option<bool>("--trace") { Description = "add each chunk's candidates, scores and selection" };
        var command = new Command("search", "Steer a large model with a small tuned/untuned pair (CBS, Best-of-N, EFT, sampling)") { prompt, messages, trace };
        options.AddTo(command);
        command.SetAction((r, cancellationToken) => Task.FromResult(Cli.Run(() =>
        {
            string? text = r.GetValue(prompt), file = r.GetValue(messages);
            if ((text is null) == (file is null)) throw new UsageException("give exactly one of --prompt and --messages");
            var request = (file is null ? options.Request(r, text!, seed: null) : options.Request(r, ReadMessages(file), seed: null)) with { Trace = r.GetValue(trace) };
            using var search = options.Load(r, request);
            var result = SearchOptions.Explained(() => search.RunAsync(request, cancellationToken).GetAwaiter().GetResult());
            if (r.GetValue(options.Json))
            {
                Cli.WriteJson(SearchJson.Result(result, request.Trace, search), CliJson.Output.SearchResultJson);
                return 0;
            }
            Console.WriteLine(result.Text);
            var s = result.Stats;
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"score {result.Score:F4} ({SearchJson.Finish(result.Finish)}) · {s.LargeTokensSampled} large tokens sampled · {s.SmallTokensScored} small tokens scored · {s.ForwardCalls} forward calls · {s.WallMs:F0} ms"));
            if (result.Trace is { } chunks)
                foreach (var chunk in chunks)
                    foreach (var c in chunk.Candidates)
                        Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                            $"chunk {chunk.Chunk} #{c.Index} ← {c.Parent} {(c.Selected ? "*" : c.Dropped ? "x" : " ")} {c.Score,10:F4} {Quote(c.Text)}"));
            return 0;
        })));
        return command;
    }

    /// <summary>The conversation in a --messages file (or stdin for "-").</summary>
    private static ChatConversation ReadMessages(string path)
    {
        if (path != "-" && !File.Exists(path)) throw new UsageException($"--messages: {path} does not exist");
        string json = path == "-" ? Console.In.ReadToEnd() : File.ReadAllText(path);
        try
        {
            using var document = JsonDocument.Parse(json);
            return MessagesJson.Parse(document.RootElement, $"--messages {path}");
        }
        catch (JsonException e)
        {
            throw new UsageException($"--messages {path}: not JSON ({e.Message})");
        }
    }

    private static string Quote(string text) => "\"" + text.ReplaceLineEndings("\\n") + "\"";
}

/// <summary>The model and method options <c>w2s search</c> and <c>w2s eval</c> share.</summary>
internal sealed class SearchOptions
{
    public Option<string> Large { get; } = new("--large") { Description = "large model folder (the model being steered)" };
    public Option<string> LargeUrl { get; } = new("--large-url") { Description = "instead of --large: an OpenAI-compatible completions endpoint, e.g. http://host:8000/v1" };
    public Option<string> LargeApiModel { get; } = new("--large-api-model") { Description = "the endpoint's model name (with --large-url)" };
    public Option<string> ApiKeyEnv { get; } = new("--api-key-env") { Description = "environment variable holding the endpoint's API key", DefaultValueFactory = _ => "OPENAI_API_KEY" };
    public Option<bool> NoTopK { get; } = new("--no-top-k-param") { Description = "do not send top_k to the endpoint (OpenAI's API rejects it)" };
    public Option<string> Tuned { get; } = new("--tuned") { Description = "small tuned model folder (e.g. DPO/SFT-aligned); without --large/--tuned/--untuned the bundled sentiment models are used" };
    public Option<string> Untuned { get; } = new("--untuned") { Description = "small untuned model folder (the tuned model's base)" };
    public Option<string> Method { get; } = new("--method") { Description = "cbs, bon, eft or sample", DefaultValueFactory = _ => "cbs" };
    public Option<int> BeamWidth { get; } = new("--beam-width") { Description = "CBS W: states kept per chunk", DefaultValueFactory = _ => 4 };
    public Option<int> Successors { get; } = new("--successors") { Description = "CBS K: candidates forked from each kept state", DefaultValueFactory = _ => 4 };
    public Option<string> ChunkLength { get; } = new("--chunk-length") { Description = "CBS L: large-model tokens per chunk, or inf", DefaultValueFactory = _ => "5" };
    public Option<int> N { get; } = new("--n") { Description = "Best-of-N: samples drawn", DefaultValueFactory = _ => 16 };
    public Option<float> Beta { get; } = new("--beta") { Description = "EFT: weight of logits_tuned − logits_untuned", DefaultValueFactory = _ => 1f };
    public Option<float> Temperature { get; } = new("--temperature") { Description = "sampling temperature (0 = greedy)", DefaultValueFactory = _ => 0.7f };
    public Option<int> TopK { get; } = new("--top-k") { Description = "keep the K most likely tokens (0 = all)", DefaultValueFactory = _ => 50 };
    public Option<float> TopP { get; } = new("--top-p") { Description = "nucleus probability (1 = all)", DefaultValueFactory = _ => 1f };
    public Option<int> MaxNewTokens { get; } = new("--max-new-tokens") { Description = "longest response in large-model tokens", DefaultValueFactory = _ => 50 };
    public Option<string[]> Stop { get; } = new("--stop") { Description = "stop string (repeatable); it stays at the end of the text", AllowMultipleArgumentsPerToken = false };
    public Option<ulong> Seed { get; } = new("--seed") { Description = "RNG seed", DefaultValueFactory = _ => 0UL };
    public Option<bool> Chat { get; } = new("--chat") { Description = "wrap the prompt in each model's own chat template" };
    public Option<string> System { get; } = new("--system") { Description = "system message for the chat templates" };
    public Option<string> LargeTemplate { get; } = Template("--large-template");
    public Option<string> TunedTemplate { get; } = Template("--tuned-template");
    public Option<string> UntunedTemplate { get; } = Template("--untuned-template");
    public Option<bool> Dedupe { get; } = new("--dedupe") { Description = "drop identical candidates before each selection" };
    public Option<bool> NoCache { get; } = new("--no-cache") { Description = "re-score every candidate from scratch each chunk (the reference's cost; for comparison)" };
    public Option<int?> KvBlocks { get; } = new("--kv-blocks") { Description = "KV cache blocks of 16 tokens per model (instead of --kv-memory)" };
    public Option<string> KvMemory { get; } = new("--kv-memory") { Description = "KV cache memory shared by the local models, e.g. 512MiB, 2GB (default: 1/8 of memory, at most 8 full contexts per model)" };
    public Option<string> Device { get; } = Cli.Device();
    public Option<string> Weights { get; } = WeightsOption.Create();
    public Option<string> LargeWeights { get; } = WeightsOption.Override("--large-weights", "the large model");
    public Option<string> SmallWeights { get; } = WeightsOption.Override("--small-weights", "the tuned and untuned models");
    public Option<bool> Json { get; } = Cli.Json();

    private static Option<string> Template(string name) =>
        new(name) { Description = $"chat template: auto (from tokenizer_config.json), {string.Join(", ", ChatTemplate.Names)}", DefaultValueFactory = _ => "auto" };

    /// <summary>Only the options that pick and load the models (for <c>w2s serve</c>, whose requests carry the rest).</summary>
    public void AddModelOptionsTo(Command command)
    {
        foreach (var option in new Option[] { Large, LargeUrl, LargeApiModel, ApiKeyEnv, NoTopK, Tuned, Untuned, LargeTemplate, TunedTemplate, UntunedTemplate, KvBlocks, KvMemory, Device, Weights, LargeWeights, SmallWeights })
            command.Options.Add(option);
    }

    public void AddTo(Command command)
    {
        foreach (var option in new Option[]
        {
            Large, LargeUrl, LargeApiModel, ApiKeyEnv, NoTopK, Tuned, Untuned, Method, BeamWidth, Successors, ChunkLength, N, Beta, Temperature, TopK, TopP, MaxNewTokens,
            Stop, Seed, Chat, System, LargeTemplate, TunedTemplate, UntunedTemplate, Dedupe, NoCache, KvBlocks, KvMemory, Device, Weights, LargeWeights, SmallWeights, Json,
        })
            command.Options.Add(option);
    }

    /// <summary>The request these options describe; <paramref name="seed"/> overrides --seed.</summary>
    public SearchRequest Request(ParseResult r, string prompt, ulong? seed)
    {
        string chunk = r.GetValue(ChunkLength)!.Trim();
        int? chunkLength;
        if (chunk is "inf" or "∞") chunkLength = null;
        else if (int.TryParse(chunk, NumberStyles.None, CultureInfo.InvariantCulture, out int l) && l > 0) chunkLength = l;
        else throw new UsageException($"--chunk-length: '{chunk}' is neither a positive number nor inf");
        var request = new SearchRequest
        {
            Prompt = prompt,
            Method = ParseMethod(r.GetValue(Method)!),
            BeamWidth = r.GetValue(BeamWidth),
            Successors = r.GetValue(Successors),
            ChunkLength = chunkLength,
            N = r.GetValue(N),
            Beta = r.GetValue(Beta),
            Temperature = r.GetValue(Temperature),
            TopK = r.GetValue(TopK),
            TopP = r.GetValue(TopP),
            MaxNewTokens = r.GetValue(MaxNewTokens),
            StopStrings = r.GetValue(Stop) ?? [],
            Seed = seed ?? r.GetValue(Seed),
            Chat = r.GetValue(Chat),
            SystemPrompt = r.GetValue(System),
            Dedupe = r.GetValue(Dedupe),
            CacheMode = r.GetValue(NoCache) ? ScoringCacheMode.None : ScoringCacheMode.Incremental,
        };
        return Validated(request);
    }

    /// <summary>
    /// The request for a conversation: its last user message is the prompt, its earlier turns the history, its system
    /// messages the system prompt (or --system); chat formatting is implied.
    /// </summary>
    public SearchRequest Request(ParseResult r, ChatConversation conversation, ulong? seed)
    {
        if (conversation.System is not null && r.GetValue(System) is not null)
            throw new UsageException("--system: the conversation has its own system message; give one or the other");
        return Validated(Request(r, conversation.Prompt, seed) with
        {
            Chat = true, SystemPrompt = conversation.System ?? r.GetValue(System), History = conversation.History,
        });
    }

    private static SearchRequest Validated(SearchRequest request)
    {
        try
        {
            return request.Validate();
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"{OptionName(e.ParamName)}: {e.Message.Split(" (Parameter")[0].Split('\n')[0]}");
        }
    }

    /// <summary>Runs <paramref name="body"/>, turning a search that cannot run as asked into a usage error.</summary>
    public static T Explained<T>(Func<T> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (e is SearchException or InvalidDataException)
        {
            throw new UsageException(e.Message);
        }
        catch (ArgumentException e) when (KnownOption(e.ParamName) is { } option)
        {
            throw new UsageException($"{option}: {e.Message.Split(" (Parameter")[0].Split('\n')[0]}");
        }
    }

    /// <summary>The KV pools of the local models: a budget shared by them (--kv-memory, or chosen from memory) or a block count each.</summary>
    private (int? Blocks, KvBudget? Budget) KvPools(ParseResult r)
    {
        int? blocks = r.GetValue(KvBlocks);
        string? memory = r.GetValue(KvMemory);
        if (blocks is not null && memory is not null) throw new UsageException("give at most one of --kv-memory and --kv-blocks");
        if (blocks is < 1) throw new UsageException($"--kv-blocks: {blocks} is not a positive block count");
        return (blocks, Cli.KvMemory(memory));
    }

    /// <summary>Loads the three models (each with its tokenizer and template), or the small pair and a remote large model.</summary>
    /// <param name="r">The parsed command line.</param>
    /// <param name="shape">A request whose shape is checked against the KV pools before the weights are loaded.</param>
    /// <param name="continuousBatching">Run the models behind an engine loop that merges concurrent requests' forwards.</param>
    public WeakToStrongSearch Load(ParseResult r, SearchRequest? shape = null, bool continuousBatching = false)
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
        var largeTemplate = ParseTemplate(r.GetValue(LargeTemplate), "--large-template");
        ILargeModel? remote = null;
        if (url is not null)
        {
            if (!Uri.TryCreate(url, UriKind.Absolute, out var endpoint) || endpoint.Scheme is not ("http" or "https"))
                throw new UsageException($"--large-url: '{url}' is not an http(s) URL");
            string model = r.GetValue(LargeApiModel) ?? throw new UsageException("--large-url needs --large-api-model (the endpoint's model name)");
            remote = new OpenAiCompletionsModel(new OpenAiCompletionsOptions
            {
                Endpoint = endpoint,
                Model = model,
                ApiKey = Environment.GetEnvironmentVariable(r.GetValue(ApiKeyEnv)!),
                Template = largeTemplate ?? ChatTemplate.None,
                SendTopK = !r.GetValue(NoTopK),
            });
        }
        var (kvBlocks, kvBudget) = KvPools(r);
        return Explained(() => WeakToStrongSearch.Load(new SearchModelOptions
        {
            LargeDirectory = folder,
            LargeModel = remote,
            TunedDirectory = tuned,
            UntunedDirectory = untuned,
            Model = new ModelOptions { Device = r.GetValue(Device)!, KvBlocks = kvBlocks, KvBudget = kvBudget, Weights = WeightsOption.Parse(r.GetValue(Weights)!) },
            LargeWeights = WeightsOption.ParseOverride(r.GetValue(LargeWeights), "--large-weights"),
            SmallWeights = WeightsOption.ParseOverride(r.GetValue(SmallWeights), "--small-weights"),
            LargeTemplate = largeTemplate,
            TunedTemplate = ParseTemplate(r.GetValue(TunedTemplate), "--tuned-template"),
            UntunedTemplate = ParseTemplate(r.GetValue(UntunedTemplate), "--untuned-template"),
            ContinuousBatching = continuousBatching,
        }, shape));
    }

    public static SearchMethodKind ParseMethod(string name, string option = "--method") => SearchMethodNames.TryParse(name, out var method)
        ? method
        : throw new UsageException($"{option}: '{name}' is not one of {string.Join(", ", SearchMethodNames.All)}");

    private static ChatTemplate? ParseTemplate(string? name, string option)
    {
        if (name is null || name.Equals("auto", StringComparison.OrdinalIgnoreCase)) return null;
        try
        {
            return ChatTemplate.Parse(name);
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"{option}: {e.Message.Split(" (Parameter")[0]}");
        }
    }

    private static string OptionName(string? parameter) => KnownOption(parameter) ?? parameter ?? "search";

    private static string? KnownOption(string? parameter) => parameter switch
    {
        nameof(SearchRequest.BeamWidth) => "--beam-width",
        nameof(SearchRequest.History) => "--messages",
        nameof(SearchRequest.Successors) => "--successors",
        nameof(SearchRequest.ChunkLength) => "--chunk-length",
        nameof(SearchRequest.N) => "--n",
        nameof(SearchRequest.Beta) => "--beta",
        nameof(SearchRequest.MaxNewTokens) => "--max-new-tokens",
        nameof(SearchRequest.StopStrings) => "--stop",
        nameof(SamplingSettings.Temperature) => "--temperature",
        nameof(SamplingSettings.TopK) => "--top-k",
        nameof(SamplingSettings.TopP) => "--top-p",
        nameof(KvBudget.Bytes) => "--kv-memory",
        _ => null,
    };
}

/// <summary>Search results as the JSON records of <see cref="CliJson"/>.</summary>
internal static class SearchJson
{
    public static string Finish(FinishReason finish) => finish switch
    {
        FinishReason.Eos => "eos",
        FinishReason.StopString => "stop_string",
        FinishReason.Length => "length",
        _ => "none",
    };

    /// <summary>A method and its parameters as one label, e.g. "cbs(4,4,5)", "bon(16)", "eft(1)", "sample".</summary>
    public static string Label(SearchRequest r)
    {
        string label = r.Method switch
        {
            SearchMethodKind.ChunkBeamSearch => string.Create(CultureInfo.InvariantCulture, $"cbs({r.BeamWidth},{r.Successors},{(r.ChunkLength is { } l ? l.ToString(CultureInfo.InvariantCulture) : "inf")})"),
            SearchMethodKind.BestOfN => string.Create(CultureInfo.InvariantCulture, $"bon({r.N})"),
            SearchMethodKind.EmulatedFineTuning => string.Create(CultureInfo.InvariantCulture, $"eft({r.Beta})"),
            _ => "sample",
        };
        if (r.Dedupe) label += "+dedupe";
        if (r.CacheMode == ScoringCacheMode.None) label += "+no-cache";
        return label;
    }

    /// <summary>The work done; with <paramref name="search"/>, also the KV pools it chose.</summary>
    public static SearchStatsJson Stats(SearchStats s, WeakToStrongSearch? search = null) => new(
        s.LargeTokensSampled, s.SmallTokensScored, s.ForwardCalls, Math.Round(s.WallMs, 3), Math.Round(s.ScoringMs, 3),
        s.TunedTokensScored, s.UntunedTokensScored, s.Chunks)
    {
        SamplingMs = Math.Round(s.SamplingMs, 3),
        KvMemoryBytes = search?.KvBudget?.Bytes,
        KvMemory = search?.KvBudget is { } budget ? new ByteSize(budget.Bytes).ToString() : null,
        KvMemorySource = search is null ? null : search.KvBudget is null ? "--kv-blocks" : search.KvBudget.Source == KvBudgetSource.Default ? "default" : "--kv-memory",
        KvBlocksPerModel = search?.KvBlocksPerModel,
    };

    private static ScoredTokensJson Scored(ScoredTokens t) => new(t.PromptTokens, t.ResponseTokens, t.LogProb);

    public static SearchResultJson Result(SearchResult result, bool trace, WeakToStrongSearch? search = null) => new(
        result.Text, result.Tokens, result.Score, Finish(result.Finish), Stats(result.Stats, search), Scored(result.Tuned), Scored(result.Untuned),
        trace && result.Trace is { } chunks
            ? chunks.Select(c => new ChunkJson(c.Chunk, c.Selected,
                c.Candidates.Select(x => new CandidateJson(x.Index, x.Parent, x.Text, x.Tokens, x.NewTokens, x.Score, Finish(x.Finish), x.Selected, x.Dropped)).ToList())).ToList()
            : null);
}
