using System.Reflection;
using System.Text;
using WeakToStrong.Search;
using WeakToStrong.Server;
using WeakToStrong.Server.Protocol;

namespace WeakToStrong.Tests.Server;

/// <summary>Errors name the API's fields (never the library's C# properties), and the listen host is checked.</summary>
[Trait("Category", "Unit")]
public sealed class RequestFieldTests
{
    /// <summary>Properties no request field sets: the server fixes them (or the model's template does).</summary>
    private static readonly HashSet<string> NotFromRequests =
        [nameof(SearchRequest.EosTokenIds), nameof(SearchRequest.Chat), nameof(SearchRequest.Trace), nameof(SearchRequest.CacheMode)];

    [Fact]
    public void EverySearchRequestPropertyARequestSetsHasAnApiFieldName()
    {
        var settable = typeof(SearchRequest).GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.SetMethod is not null).Select(p => p.Name);
        foreach (string property in settable.Where(p => !NotFromRequests.Contains(p)))
        {
            string? field = RequestParser.ApiField(property);
            Assert.True(field is not null, $"SearchRequest.{property} has no API field name: an error about it would name the C# property");
            Assert.Matches("^[a-z][a-z_]*$", field);
        }
        // SamplingSettings.Validate() names its own properties; they are the request's names too.
        foreach (var p in typeof(WeakToStrong.Engine.SamplingSettings).GetProperties(BindingFlags.Public | BindingFlags.Instance))
            Assert.NotNull(RequestParser.ApiField(p.Name));
        Assert.Null(RequestParser.ApiField("SomethingElse"));
        Assert.Null(RequestParser.ApiField(null));
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
    public void LibraryArgumentErrorsDuringARunNameTheApiField()
    {
        var error = CompletionHandler.Translate(new ArgumentOutOfRangeException(nameof(SearchRequest.TopP), 2f, "top-p must be in (0, 1]"));
        Assert.Equal(400, error.Status);
        Assert.Equal("top_p", error.Param);
        Assert.Equal("top-p must be in (0, 1]", error.Message);
        Assert.Null(CompletionHandler.Translate(new ArgumentException("bad", "internalThing")).Param);
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
