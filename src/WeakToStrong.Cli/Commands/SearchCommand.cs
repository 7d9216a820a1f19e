using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using WeakToStrong.Chat;
using WeakToStrong.Cli.Json;
using WeakToStrong.Engine.KvCache;
using WeakToStrong.Search;

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
            using var search = options.Models.Load(r, request);
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
            return Cli.Conversation(document.RootElement, $"--messages {path}");
        }
        catch (JsonException e)
        {
            throw new UsageException($"--messages {path}: not JSON ({e.Message})");
        }
    }

    private static string Quote(string text) => "\"" + text.ReplaceLineEndings("\\n") + "\"";
}

/// <summary>The options <c>w2s search</c> and <c>w2s eval</c> share: the models, the method and its parameters, sampling and stops.</summary>
internal sealed class SearchOptions
{
    public ModelSelectionOptions Models { get; } = new();
    public SamplingOptions Sampling { get; } = SamplingOptions.ForSearch();
    public Option<string> Method { get; } = new("--method") { Description = string.Join(", ", SearchMethodNames.All), DefaultValueFactory = _ => SearchMethodNames.Name(SearchMethodKind.ChunkBeamSearch) };
    public Option<int> BeamWidth { get; } = new("--beam-width") { Description = "CBS W: states kept per chunk", DefaultValueFactory = _ => 4 };
    public Option<int> Successors { get; } = new("--successors") { Description = "CBS K: candidates forked from each kept state", DefaultValueFactory = _ => 4 };
    public Option<string> ChunkLength { get; } = new("--chunk-length") { Description = "CBS L: large-model tokens per chunk, or inf", DefaultValueFactory = _ => "5" };
    public Option<int> N { get; } = new("--n") { Description = "Best-of-N: samples drawn", DefaultValueFactory = _ => 16 };
    public Option<float> Beta { get; } = new("--beta") { Description = "EFT: weight of logits_tuned − logits_untuned", DefaultValueFactory = _ => 1f };
    public Option<string[]> Stop { get; } = new("--stop") { Description = "stop string (repeatable); it stays at the end of the text", AllowMultipleArgumentsPerToken = false };
    public Option<bool> Chat { get; } = new("--chat") { Description = "wrap the prompt in each model's own chat template" };
    public Option<string> System { get; } = new("--system") { Description = "system message for the chat templates" };
    public Option<bool> Dedupe { get; } = new("--dedupe") { Description = "drop identical candidates before each selection" };
    public Option<bool> NoCache { get; } = new("--no-cache") { Description = "re-score every candidate from scratch each chunk (the reference's cost; for comparison)" };
    public Option<bool> Json { get; } = Cli.Json();

    public void AddTo(Command command)
    {
        Option[] options = [Method, BeamWidth, Successors, ChunkLength, N, Beta, .. Sampling.All, Stop, Chat, System, Dedupe, NoCache, .. Models.All, Json];
        foreach (var option in options) command.Options.Add(option);
    }

    /// <summary>The request these options describe; <paramref name="seed"/> overrides --seed.</summary>
    public SearchRequest Request(ParseResult r, string prompt, ulong? seed)
    {
        string chunk = r.GetValue(ChunkLength)!.Trim();
        int? chunkLength;
        if (chunk is "inf" or "∞") chunkLength = null;
        else if (int.TryParse(chunk, NumberStyles.None, CultureInfo.InvariantCulture, out int l) && l > 0) chunkLength = l;
        else throw new UsageException($"--chunk-length: '{chunk}' is neither a positive number nor inf");
        var sampling = Sampling.Settings(r, seed);
        return new SearchRequest
        {
            Prompt = prompt,
            Method = ParseMethod(r.GetValue(Method)!),
            BeamWidth = r.GetValue(BeamWidth),
            Successors = r.GetValue(Successors),
            ChunkLength = chunkLength,
            N = r.GetValue(N),
            Beta = r.GetValue(Beta),
            Temperature = sampling.Temperature,
            TopK = sampling.TopK,
            TopP = sampling.TopP,
            MaxNewTokens = r.GetValue(Sampling.MaxNewTokens),
            StopStrings = r.GetValue(Stop) ?? [],
            Seed = sampling.Seed,
            Chat = r.GetValue(Chat),
            SystemPrompt = r.GetValue(System),
            Dedupe = r.GetValue(Dedupe),
            CacheMode = r.GetValue(NoCache) ? ScoringCacheMode.None : ScoringCacheMode.Incremental,
        }.Validate();
    }

    /// <summary>
    /// The request for a conversation: its last user message is the prompt, its earlier turns the history, its system
    /// messages the system prompt (or --system); chat formatting is implied.
    /// </summary>
    public SearchRequest Request(ParseResult r, ChatConversation conversation, ulong? seed)
    {
        if (conversation.System is not null && r.GetValue(System) is not null)
            throw new UsageException("--system: the conversation has its own system message; give one or the other");
        return (Request(r, conversation.Prompt, seed) with
        {
            Chat = true, SystemPrompt = conversation.System ?? r.GetValue(System), History = conversation.History,
        }).Validate();
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
    }

    public static SearchMethodKind ParseMethod(string name, string option = "--method") => SearchMethodNames.TryParse(name, out var method)
        ? method
        : throw new UsageException($"{option}: '{name}' is not one of {string.Join(", ", SearchMethodNames.All)}");
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
        LargeTokensFed = s.LargeTokensFed,
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
