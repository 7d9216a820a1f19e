using WeakToStrong.Backends.Cpu;
using WeakToStrong.Engine.KvCache;
using WeakToStrong.Server;
using WeakToStrong.Server.Admission;
using WeakToStrong.Server.Protocol;

namespace WeakToStrong.Tests.Server;

/// <summary>KV admission's queue discipline, and the stop-sequence hold-back of streamed text.</summary>
[Trait("Category", "Unit")]
public sealed class AdmissionAndStopTextTests : IDisposable
{
    private readonly CpuBackend _backend = new();
    private readonly PagedKvCache _pool;

    public AdmissionAndStopTextTests() => _pool = new PagedKvCache(_backend, layers: 1, kvHeads: 1, headDim: 4, blocks: 10);

    public void Dispose()
    {
        _pool.Dispose();
        _backend.Dispose();
    }

    [Fact]
    public async Task WaitersStartInArrivalOrderAndACancelledOneLeavesTheQueue()
    {
        var admission = new KvAdmission([("large", _pool)], maxQueue: 2);
        var first = await admission.AcquireAsync([8], CancellationToken.None);
        using var cancel = new CancellationTokenSource();
        var big = admission.AcquireAsync([5], cancel.Token);
        var small = admission.AcquireAsync([1], CancellationToken.None);
        // 1 block would fit now, but it arrived after a waiter: first come, first served.
        Assert.False(small.IsCompleted);
        Assert.Equal(2, admission.Queued);
        var full = await Assert.ThrowsAsync<ApiException>(() => admission.AcquireAsync([1], CancellationToken.None));
        Assert.Equal(429, full.Status);

        cancel.Cancel(); // the head leaves; the next one fits and starts
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => big);
        using (await small.WaitAsync(TimeSpan.FromSeconds(10)))
        {
            Assert.Equal(0, admission.Queued);
            Assert.Equal(9, admission.Reserved(0));
            Assert.Equal(2, admission.Running);
        }
        first.Dispose();
        first.Dispose(); // a lease gives its blocks back once
        Assert.Equal(0, admission.Reserved(0));
        Assert.Equal(0, admission.Running);

        var never = await Assert.ThrowsAsync<ApiException>(() => admission.AcquireAsync([11], CancellationToken.None));
        Assert.Equal((400, "kv_budget_exceeded"), (never.Status, never.Code));
        Assert.Contains("11 KV blocks", never.Message);
        Assert.Contains("pool of 10", never.Message);
    }

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
