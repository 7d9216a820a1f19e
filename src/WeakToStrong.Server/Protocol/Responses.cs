using System.Text.Json.Serialization;

namespace WeakToStrong.Server.Protocol;

// The OpenAI response shapes, plus our `search` object and `small_tokens_scored` in usage. Names are snake_case
// through ServerJsonContext; nulls are written (OpenAI writes "logprobs": null, "finish_reason": null).

public sealed record Usage(int PromptTokens, int CompletionTokens, int TotalTokens, long SmallTokensScored, long LargeTokensSampled, long LargeTokensFed);

/// <summary>What the search did for the response.</summary>
/// <param name="Method">cbs, bon, eft or sample.</param>
/// <param name="BeamWidth">CBS W (CBS only).</param>
/// <param name="Successors">CBS K (CBS only).</param>
/// <param name="ChunkLength">CBS L, null for ∞ (CBS only).</param>
/// <param name="N">Best-of-N's N (bon only).</param>
/// <param name="Beta">EFT's β (eft only).</param>
/// <param name="Score">log π_tuned − log π_untuned of the first choice.</param>
/// <param name="Scores">The score of each choice, in choice order.</param>
/// <param name="Chunks">Selection rounds, summed over the choices.</param>
/// <param name="CandidatesEvaluated">Candidates that took part in a selection, summed over the choices.</param>
public sealed record SearchInfo(
    string Method,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? BeamWidth,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? Successors,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? ChunkLength,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] int? N,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] float? Beta,
    double Score, IReadOnlyList<double> Scores, long Chunks, long CandidatesEvaluated);

public sealed record CompletionChoice(string Text, int Index, string? Logprobs, string? FinishReason);

public sealed record CompletionResponse(
    string Id, string Object, long Created, string Model, IReadOnlyList<CompletionChoice> Choices, Usage? Usage, SearchInfo? Search);

public sealed record ChatMessage(string Role, string Content);

public sealed record ChatChoice(int Index, ChatMessage Message, string? Logprobs, string FinishReason);

public sealed record ChatResponse(
    string Id, string Object, long Created, string Model, IReadOnlyList<ChatChoice> Choices, Usage? Usage, SearchInfo? Search);

public sealed record ChatDelta(
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Role,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Content);

public sealed record ChatChunkChoice(int Index, ChatDelta Delta, string? Logprobs, string? FinishReason);

public sealed record ChatChunk(
    string Id, string Object, long Created, string Model, IReadOnlyList<ChatChunkChoice> Choices,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] Usage? Usage,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] SearchInfo? Search);

public sealed record CompletionChunk(
    string Id, string Object, long Created, string Model, IReadOnlyList<CompletionChoice> Choices,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] Usage? Usage,
    [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] SearchInfo? Search);

public sealed record ModelCard(string Id, string Object, long Created, string OwnedBy);

public sealed record ModelList(string Object, IReadOnlyList<ModelCard> Data);

public sealed record KvPoolHealth(string Model, int BlocksInUse, int BlocksReserved, int TotalBlocks);

public sealed record Health(string Status, int Running, int Queued, IReadOnlyList<KvPoolHealth> Kv);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(ErrorBody))]
[JsonSerializable(typeof(CompletionResponse))]
[JsonSerializable(typeof(ChatResponse))]
[JsonSerializable(typeof(ChatChunk))]
[JsonSerializable(typeof(CompletionChunk))]
[JsonSerializable(typeof(ModelList))]
[JsonSerializable(typeof(ModelCard))]
[JsonSerializable(typeof(Health))]
internal sealed partial class ServerJsonContext : JsonSerializerContext
{
    /// <summary>snake_case names; text written as is (quotes in messages not as \u0027), as OpenAI's responses are.</summary>
    public static ServerJsonContext Output { get; } = new(new System.Text.Json.JsonSerializerOptions
    {
        PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });
}
