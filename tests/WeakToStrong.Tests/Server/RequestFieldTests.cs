using System.Text;
using WeakToStrong.Search;
using WeakToStrong.Server;
using WeakToStrong.Server.Protocol;

namespace WeakToStrong.Tests.Server;

/// <summary>Errors name the API's fields (never the library's C# properties), methods are read by the library's names, and the listen host is checked.</summary>
[Trait("Category", "Unit")]
public sealed class RequestFieldTests
{
    private static readonly RequestLimits Limits = new() { ModelName = "m" };

    private static ParsedRequest Parse(string json, bool chat = false) => RequestParser.Parse(Encoding.UTF8.GetBytes(json), chat, Limits);

    [Fact]
    public void EveryFieldTheLibraryCanBlameHasAnApiFieldName()
    {
        foreach (var field in Enum.GetValues<SearchField>())
        {
            Assert.True(RequestParser.Fields.TryGetValue(field, out string? name), $"SearchField.{field} has no API field name: an error about it would name no field");
            Assert.Matches("^[a-z][a-z_]*$", name);
            Assert.Equal(name, RequestParser.ApiField(field, chat: false));
        }
    }

    [Theory]
    [InlineData("""{"model":"m","prompt":"x","search":{"beam_width":100,"successors":100}}""", "search.beam_width")]
    [InlineData("""{"model":"m","prompt":"x","beam_width":100,"successors":100}""", "beam_width")]
    [InlineData("""{"model":"m","prompt":"x","search":{"n":5000}}""", "search.n")]
    [InlineData("""{"model":"m","prompt":"x","best_of":5000}""", "best_of")]
    public void TheLibrarysLimitIsReportedWithTheFieldSent(string json, string param)
    {
        // A server whose own caps are above the library's (4096 candidates): Validate() is what refuses.
        var limits = new RequestLimits { ModelName = "m", MaxCandidates = int.MaxValue, MaxChoices = int.MaxValue };
        var e = Assert.Throws<ApiException>(() => RequestParser.Parse(Encoding.UTF8.GetBytes(json), chat: false, limits));
        Assert.Equal(400, e.Status);
        Assert.Equal(param, e.Param);
        Assert.Contains("4096", e.Message);
    }

    [Fact]
    public void LibraryRefusalsDuringARunNameTheApiFieldAndOtherArgumentErrorsAreTheServers()
    {
        var error = CompletionHandler.Translate(new RequestValidationException(SearchField.TopP, "top-p must be in (0, 1]"));
        Assert.Equal(400, error.Status);
        Assert.Equal("top_p", error.Param);
        Assert.Equal("invalid_value", error.Code);
        Assert.Equal("top-p must be in (0, 1]", error.Message);
        Assert.Equal("max_tokens", CompletionHandler.Translate(new RequestValidationException(SearchField.MaxNewTokens, "too long")).Param);
        var prompt = new RequestValidationException(SearchField.Prompt, "the prompt encodes to no token");
        Assert.Equal(("prompt", "messages"), (CompletionHandler.Translate(prompt).Param, CompletionHandler.Translate(prompt, chat: true).Param));
        // An argument error that blames no request field is a check this server missed, not the client's fault.
        var internalError = CompletionHandler.Translate(new ArgumentException("bad", "internalThing"));
        Assert.Equal(500, internalError.Status);
        Assert.Null(internalError.Param);
        Assert.Equal("server_error", internalError.Code);
    }

    [Theory]
    [InlineData("cbs", SearchMethodKind.ChunkBeamSearch)]
    [InlineData("bon", SearchMethodKind.BestOfN)]
    [InlineData("best-of-n", SearchMethodKind.BestOfN)]
    [InlineData("BON", SearchMethodKind.BestOfN)]
    [InlineData("eft", SearchMethodKind.EmulatedFineTuning)]
    [InlineData("sample", SearchMethodKind.Sample)]
    [InlineData("sampling", SearchMethodKind.Sample)]
    public void MethodsAreReadByTheLibrarysNames(string name, SearchMethodKind method)
    {
        Assert.Equal(method, Parse($$"""{"model":"m","prompt":"x","method":"{{name}}"}""").Search.Method);
        Assert.Equal(method, Parse($$$"""{"model":"m","prompt":"x","search":{"method":"{{{name}}}"}}""").Search.Method);
    }

    [Theory]
    [InlineData("""{"model":"m","prompt":"x","method":"beam"}""", "method", "'method' must be one of cbs, bon, eft, sample (got 'beam').")]
    [InlineData("""{"model":"m","prompt":"x","search":{"method":"best-of"}}""", "search.method", "'search.method' must be one of cbs, bon, eft, sample (got 'best-of').")]
    public void AnUnknownMethodIsRefusedListingTheMethods(string json, string param, string message)
    {
        var e = Assert.Throws<ApiException>(() => Parse(json));
        Assert.Equal((400, param, "invalid_value", message), (e.Status, e.Param, e.Code, e.Message));
    }

    /// <summary>The messages parser's refusals keep their path as the param and their kind as OpenAI's code.</summary>
    [Theory]
    [InlineData("""[{"role":"user","content":"a"},{"role":"assistant","content":"b"}]""", "messages[1]", "invalid_value")]
    [InlineData("""[{"role":"user"}]""", "messages[0].content", "missing_required_parameter")]
    [InlineData("""[{"role":7,"content":"a"}]""", "messages[0].role", "invalid_type")]
    [InlineData("""[{"role":"function","content":"a"}]""", "messages[0].role", "unsupported_parameter")]
    public void MessagesErrorsKeepTheirPathAndCode(string messages, string param, string code)
    {
        var e = Assert.Throws<ApiException>(() => Parse($$"""{"model":"m","messages":{{messages}}}""", chat: true));
        Assert.Equal((400, param, code), (e.Status, e.Param, e.Code));
        Assert.Contains(param.Split('.')[0], e.Message); // the message names the message it blames
    }

    [Theory]
    [InlineData("127.0.0.1", "127.0.0.1")]
    [InlineData("0.0.0.0", "0.0.0.0")]
    [InlineData("::1", "[::1]")]
    [InlineData("[::]", "[::]")]
    [InlineData("localhost", "localhost")]
    [InlineData("LocalHost", "localhost")]
    [InlineData("*", "*")]
    [InlineData("999.1.1.1", null)]
    [InlineData("1.2.3", null)]
    [InlineData("1", null)]
    [InlineData("010.0.0.1", null)]
    [InlineData("example.com", null)]
    [InlineData("+", null)]
    [InlineData("", null)]
    public void TheListenHostIsAnAddressLocalhostOrStar(string host, string? url) => Assert.Equal(url, W2sServer.ListenHost(host));
}
