using WeakToStrong.Server;

namespace WeakToStrong.Tests.Server;

/// <summary>The stop-sequence hold-back of streamed text.</summary>
[Trait("Category", "Unit")]
public sealed class StopTextTests
{
    [Fact]
    public void StreamedTextHoldsBackWhatCouldStartAStopSequence()
    {
        var stop = new StopText(["END", "\n\n"]);
        var sent = new List<string> { stop.Push("Hello E"), stop.Push("N"), stop.Push("ough\n"), stop.Push("\nmore") };
        sent.Add(stop.Finish());
        // The last 3 characters (the longest stop) wait: "E" and "EN" could begin "END"; "\n\n" ends the text.
        Assert.Equal(["Hell", "o", " ENou", "gh", ""], sent);
        Assert.Equal("Hello ENough", string.Concat(sent));
        Assert.Equal("Hello ENough", StopText.Strip("Hello ENough\n\nmore", ["END", "\n\n"]));
    }

    [Fact]
    public void StreamedTextNeverSplitsASurrogatePair()
    {
        var stop = new StopText(["x"]);
        string first = stop.Push("ab😀"); // a hold-back of 1 would cut between the emoji's two UTF-16 halves
        Assert.Equal("ab", first);
        Assert.Equal("ab😀c", first + stop.Push("c") + stop.Finish());
    }
}
