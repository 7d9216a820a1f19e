using WeakToStrong.Chat;
using WeakToStrong.Engine;
using WeakToStrong.Search;

namespace WeakToStrong.Tests.Search;

/// <summary>
/// The library's refusals of a request carry the field to blame and a reason without the parameter suffix, so that
/// each front end can write the reason under its own name for the field.
/// </summary>
[Trait("Category", "Unit")]
public sealed class RequestValidationTests
{
    private static readonly SearchRequest Valid = new() { Prompt = "x" };

    [Fact]
    public void EveryFieldIsNamedAsTheSearchRequestPropertyItBlames()
    {
        foreach (var field in Enum.GetValues<SearchField>())
            Assert.True(typeof(SearchRequest).GetProperty(field.ToString()) is { SetMethod: not null }, $"SearchField.{field} is no settable SearchRequest property");
    }

    public static TheoryData<SearchRequest, SearchField, string> Refused => new()
    {
        { Valid with { Method = (SearchMethodKind)9 }, SearchField.Method, "unknown search method" },
        { Valid with { BeamWidth = 0 }, SearchField.BeamWidth, "the beam width must be ≥ 1" },
        { Valid with { BeamWidth = 65, Successors = 64 }, SearchField.BeamWidth, "W·K = 65 × 64 = 4160 candidates exceeds the limit of 4096 per search" },
        { Valid with { Successors = -3 }, SearchField.Successors, "the successors per state must be ≥ 1" },
        { Valid with { ChunkLength = 0 }, SearchField.ChunkLength, "the chunk length must be ≥ 1 (or ∞)" },
        { Valid with { N = 0 }, SearchField.N, "Best-of-N needs N ≥ 1" },
        { Valid with { Beta = float.NaN }, SearchField.Beta, "beta must be a finite number" },
        { Valid with { MaxNewTokens = -1 }, SearchField.MaxNewTokens, "max new tokens must be ≥ 0" },
        { Valid with { StopStrings = ["a", ""] }, SearchField.StopStrings, "stop strings must not be empty" },
        { Valid with { Temperature = float.PositiveInfinity }, SearchField.Temperature, "temperature must be a finite number ≥ 0" },
        { Valid with { TopK = -1 }, SearchField.TopK, "top-k must be ≥ 0 (0 keeps all tokens)" },
        { Valid with { TopP = 1.5f }, SearchField.TopP, "top-p must be in (0, 1]" },
        { Valid with { History = [ChatTurn.User("hi")] }, SearchField.History, "earlier turns of a conversation need the chat templates (Chat)" },
    };

    [Theory]
    [MemberData(nameof(Refused))]
    public void ValidateBlamesTheFieldWithACleanReason(SearchRequest request, SearchField field, string reason)
    {
        var e = Assert.Throws<RequestValidationException>(() => request.Validate());
        Assert.Equal(field, e.Field);
        Assert.Equal(reason, e.Reason);
        // Still an ArgumentException naming the property, for callers that catch those.
        Assert.IsAssignableFrom<ArgumentException>(e);
        Assert.Equal(field.ToString(), e.ParamName);
        Assert.StartsWith(reason + " (", e.Message); // the message keeps .NET's parameter suffix; the reason has none
    }

    [Fact]
    public void SamplingSettingsBlameTheRequestsSamplingFields()
    {
        Assert.Equal(SearchField.Temperature, Assert.Throws<RequestValidationException>(() => new SamplingSettings(-0.5f).Validate()).Field);
        Assert.Equal(SearchField.TopK, Assert.Throws<RequestValidationException>(() => new SamplingSettings(TopK: -2).Validate()).Field);
        var topP = Assert.Throws<RequestValidationException>(() => new SamplingSettings(TopP: 0).Validate());
        Assert.Equal((SearchField.TopP, "top-p must be in (0, 1]"), (topP.Field, topP.Reason));
    }

    [Fact]
    public void TheExceptionRefusesAnUnknownFieldOrAnEmptyReason()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new RequestValidationException((SearchField)99, "why"));
        Assert.Throws<ArgumentException>(() => new RequestValidationException(SearchField.TopK, " "));
        Assert.Throws<ArgumentException>(() => new InvalidSettingException("why", ""));
    }
}
