using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using WeakToStrong.Diagnostics;
using WeakToStrong.Diagnostics.Ops;

namespace WeakToStrong.Cli.Json;

/// <summary>
/// Every shape the CLI writes as JSON, serialised through source-generated metadata: the CLI is published trimmed
/// (and NativeAOT), where reflection-based serialisation fails at run time. A command that writes JSON adds its
/// output record here with one <c>[JsonSerializable]</c> line and calls <c>Cli.WriteJson(value, CliJson.Default.TheType)</c>.
/// Property names are snake_case (<c>PromptTokens</c> → <c>prompt_tokens</c>).
/// </summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(InfoJson))]
[JsonSerializable(typeof(ScoreJson))]
[JsonSerializable(typeof(GenerateJson))]
[JsonSerializable(typeof(BenchJson))]
[JsonSerializable(typeof(LoadBenchJson))]
[JsonSerializable(typeof(SearchResultJson))]
[JsonSerializable(typeof(EvalLineJson))]
[JsonSerializable(typeof(EvalJson))]
[JsonSerializable(typeof(OpsJson))]
[JsonSerializable(typeof(DemoJson))]
[JsonSerializable(typeof(WeakToStrong.Cli.Commands.CompareJson))]
internal sealed partial class CliJson : JsonSerializerContext
{
    /// <summary>The options every CLI output uses: snake_case names, non-ASCII text written as is (not \uXXXX).</summary>
    public static CliJson Output { get; } = new(new JsonSerializerOptions
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}

/// <summary><c>w2s info --json</c>.</summary>
internal sealed record InfoJson(
    string Directory, string Family, int VocabSize, int HiddenSize, int Layers, int Heads, int KvHeads, int HeadDim,
    int IntermediateSize, int MaxPositions, string Dtype, long Parameters, bool TiedEmbeddings, string Norm, string Positions,
    string Tokenizer, IReadOnlyList<int> EosTokenIds, int? BosTokenId, string[] Files);

/// <summary><c>w2s score --json</c>.</summary>
internal sealed record ScoreJson(int[] PromptTokens, int[] ContinuationTokens, float[] Logprobs, double Total);

/// <summary><c>w2s generate --json</c>.</summary>
internal sealed record GenerateJson(List<int> Tokens, string? Text);

/// <summary>Decode tokens/s at a batch over batch 1.</summary>
internal sealed record DecodeSpeedupJson(string Dtype, int Batch, double SpeedupVsBatch1);

/// <summary><c>w2s bench --load DIR --json</c>: one load against the read baseline and the memory target.</summary>
internal sealed record LoadBenchJson(
    string Model, string Device, long CheckpointBytes, double LoadSeconds, [property: JsonPropertyName("load_gb_per_s")] double LoadGbPerS,
    double LoadCpuSeconds, double ReadSeconds, double LoadVsRead, long PeakRssBytes, long RssAfterBytes, long ResidentWeightBytes,
    long KvPoolBytes, long TargetPeakRssBytes, bool PeakRssWithinTarget, [property: JsonPropertyName("load_at_least_1_gb_per_s")] bool LoadAtLeast1GbPerS,
    bool PeakResetBeforeLoad, double FirstTouchSeconds, double TouchAgainSeconds, double FirstTouchHugePagesSeconds, double LoadVsFirstTouch);

/// <summary><c>w2s bench --json</c>.</summary>
/// <param name="CpuPath">The CPU backend's vector path ("avx2" or "avx512"; null on another device).</param>
/// <param name="PeakPath">The path the FMA ceiling was probed at: the widest this CPU has (null on another device).</param>
/// <param name="FmaCeilings">The F32 FMA ceiling of all cores at each path this CPU runs (the widest: the best probe around
/// the runs; the others probed after them): equal
/// where 512-bit FMAs are split into two 256-bit halves (AMD Zen 4), about double at avx512 where they are not.</param>
/// <param name="Profiles">With <c>--profile</c>: each decode step's and scoring call's time by op (null otherwise).</param>
internal sealed record BenchJson(string Device, int Cores, List<BenchResult> Results, List<DecodeSpeedupJson> DecodeSpeedups, string? CpuPath, string? PeakPath,
    List<PathCeilingJson>? FmaCeilings, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] List<StepProfile>? Profiles);

/// <summary>One vector path's F32 FMA ceiling (all cores, best of 5).</summary>
internal sealed record PathCeilingJson(string Path, double Gigaflops);

/// <summary>Work done by a search.</summary>
internal sealed record SearchStatsJson(long LargeTokensSampled, long SmallTokensScored, long ForwardCalls, double WallMs, double ScoringMs,
    long TunedTokensScored, long UntunedTokensScored, int Chunks)
{
    /// <summary>Part of the wall time spent in the large model (prompt and sampling steps), disjoint from scoring.</summary>
    public double SamplingMs { get; init; }

    /// <summary>Tokens a local large model fed through its forward (prompt included; 0 for a remote one).</summary>
    public long LargeTokensFed { get; init; }

    /// <summary>The KV pools the search chose (absent where no search is at hand).</summary>
    [JsonPropertyOrder(-1), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public long? KvMemoryBytes { get; init; }

    [JsonPropertyOrder(-1), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? KvMemory { get; init; }

    [JsonPropertyOrder(-1), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? KvMemorySource { get; init; }

    [JsonPropertyOrder(-1), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? KvBlocksPerModel { get; init; }
}

/// <summary>What one small model scored.</summary>
internal sealed record ScoredTokensJson(IReadOnlyList<int> PromptTokens, IReadOnlyList<int> ResponseTokens, double LogProb);

/// <summary>One candidate at a selection (<c>--trace</c>).</summary>
internal sealed record CandidateJson(int Index, int Parent, string Text, IReadOnlyList<int> Tokens, int NewTokens, double Score, string Finish, bool Selected, bool Dropped);

/// <summary>One chunk's candidates and survivors (<c>--trace</c>).</summary>
internal sealed record ChunkJson(int Chunk, IReadOnlyList<int> Selected, List<CandidateJson> Candidates);

/// <summary><c>w2s search --json</c>; <c>trace</c> only with <c>--trace</c>.</summary>
internal sealed record SearchResultJson(string Text, IReadOnlyList<int> Tokens, double Score, string Finish, SearchStatsJson Stats,
    ScoredTokensJson Tuned, ScoredTokensJson Untuned,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] List<ChunkJson>? Trace);

/// <summary>One line of the file <c>w2s eval</c> appends to.</summary>
internal sealed record EvalLineJson(string Id, ulong Seed, string Method, string Prompt, string Text, double Score, string Finish, SearchStatsJson Stats,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? Reward = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? RewardName = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? LargeLogprobPerToken = null,
    [property: JsonPropertyName("distinct_1"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? Distinct1 = null,
    [property: JsonPropertyName("distinct_2"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? Distinct2 = null,
    [property: JsonPropertyName("repeated_3gram_share"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? Repeated3GramShare = null);

/// <summary>One method's row of the <c>w2s eval</c> summary.</summary>
/// <remarks>The reward's standard error is over prompts: each prompt's mean over its seeds, then the standard deviation of
/// those means over √(prompts).</remarks>
internal sealed record EvalSummaryJson(string Method, int Runs, double MeanScore, double MeanLargeTokensSampled, double MeanSmallTokensScored, double MeanWallMs, double TotalWallMs,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? MeanReward = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? RewardStdErr = null,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? MeanLargeLogprobPerToken = null,
    [property: JsonPropertyName("mean_distinct_1"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? MeanDistinct1 = null,
    [property: JsonPropertyName("mean_distinct_2"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? MeanDistinct2 = null,
    [property: JsonPropertyName("mean_repeated_3gram_share"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] double? MeanRepeated3GramShare = null);

/// <summary><c>w2s eval --json</c>.</summary>
internal sealed record EvalJson(int Ran, int Skipped, string Out, List<EvalSummaryJson> Summary);

/// <summary>One op at one shape against its reference (<c>w2s ops --mode test</c>); <c>error</c> is null when skipped or not finite.</summary>
internal sealed record OpCheckJson(string Op, string Dtype, string Shape, bool ModelSized, string Reference, double? Error, double Threshold, string Status,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Note);

/// <summary><c>w2s ops --json</c>: <c>checks</c> in test mode, <c>ceilings</c> and <c>timings</c> in perf mode.</summary>
internal sealed record OpsJson(string Device, string DeviceName, string Mode,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Reference,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] Ceilings? Ceilings,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] List<OpCheckJson>? Checks,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] List<OpTiming>? Timings,
    int Passed, int Failed, int Skipped);
/// <summary>One method's response in <c>w2s demo</c>: text, gold reward (VADER's compound), search score, wall time, work,
/// and the most times one word 3-gram occurs in it.</summary>
internal sealed record DemoResultJson(string Text, double Reward, double Score, double WallMs, long LargeTokensSampled, long SmallTokensScored,
    [property: JsonPropertyName("max_3gram_count")] int Max3GramCount);

/// <summary>One prompt of <c>w2s demo</c>: plain sampling and CBS side by side.</summary>
internal sealed record DemoRowJson(string Prompt, DemoResultJson Base, DemoResultJson Cbs);

/// <summary><c>w2s demo --json</c>; <paramref name="CbsWins"/>: prompts where CBS's gold reward is above Base's.</summary>
internal sealed record DemoJson(string Models, double LoadMs, double TotalMs, string BaseMethod, string CbsMethod, string Reward, List<DemoRowJson> Rows,
    double MeanBaseReward, double MeanCbsReward, int CbsWins);
