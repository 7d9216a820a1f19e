using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Serialization;
using WeakToStrong.Diagnostics;

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
[JsonSerializable(typeof(SearchResultJson))]
[JsonSerializable(typeof(EvalLineJson))]
[JsonSerializable(typeof(EvalJson))]
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

/// <summary><c>w2s bench --json</c>.</summary>
internal sealed record BenchJson(string Device, int Cores, List<BenchResult> Results, List<DecodeSpeedupJson> DecodeSpeedups);

/// <summary>Work done by a search.</summary>
internal sealed record SearchStatsJson(long LargeTokensSampled, long SmallTokensScored, long ForwardCalls, double WallMs, double ScoringMs,
    long TunedTokensScored, long UntunedTokensScored, int Chunks)
{
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
internal sealed record EvalLineJson(string Id, ulong Seed, string Method, string Prompt, string Text, double Score, string Finish, SearchStatsJson Stats);

/// <summary>One method's row of the <c>w2s eval</c> summary.</summary>
internal sealed record EvalSummaryJson(string Method, int Runs, double MeanScore, double MeanLargeTokensSampled, double MeanSmallTokensScored, double MeanWallMs, double TotalWallMs);

/// <summary><c>w2s eval --json</c>.</summary>
internal sealed record EvalJson(int Ran, int Skipped, string Out, List<EvalSummaryJson> Summary);
