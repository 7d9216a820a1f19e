using WeakToStrong.Backends.Cpu;
using WeakToStrong.Engine.KvCache;
using WeakToStrong.Engine.Scheduling;

namespace WeakToStrong.Tests.Engine;

/// <summary>KV admission's queue discipline and its refusals, on a pool of 10 blocks.</summary>
[Trait("Category", "Unit")]
public sealed class KvAdmissionTests : IDisposable
{
    private readonly CpuBackend _backend = new();
    private readonly PagedKvCache _pool;

    public KvAdmissionTests() => _pool = new PagedKvCache(_backend, layers: 1, kvHeads: 1, headDim: 4, blocks: 10);

    public void Dispose()
    {
        _pool.Dispose();
        _backend.Dispose();
    }

    [Fact]
    public async Task WaitersStartInArrivalOrderAndACancelledOneLeavesTheQueue()
    {
        var admission = new KvAdmission([("large", _pool)]);
        var first = await admission.AcquireAsync([8], CancellationToken.None);
        using var cancel = new CancellationTokenSource();
        var big = admission.AcquireAsync([5], maxQueue: 2, cancel.Token);
        var small = admission.AcquireAsync([1], maxQueue: 2, CancellationToken.None);
        // 1 block would fit now, but it arrived after a waiter: first come, first served.
        Assert.False(small.IsCompleted);
        Assert.Equal(2, admission.Queued);

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
    }

    [Fact]
    public async Task AFullQueueRefusesWithTheNumbersWhileAnUnboundedCallerStillWaits()
    {
        var admission = new KvAdmission([("large", _pool)], retryAfter: TimeSpan.FromSeconds(3));
        using var held = await admission.AcquireAsync([8], CancellationToken.None);
        var waiting = admission.AcquireAsync([5], maxQueue: 1, CancellationToken.None);

        // The bound is the caller's: one waiter is the limit of 1, but a caller without a bound joins behind it.
        var full = await Assert.ThrowsAsync<KvQueueFullException>(() => admission.AcquireAsync([1], maxQueue: 1, CancellationToken.None));
        Assert.Equal((1, 1, 1, TimeSpan.FromSeconds(3)), (full.Running, full.Queued, full.MaxQueue, full.RetryAfter));
        var patient = admission.AcquireAsync([1], CancellationToken.None);
        Assert.Equal(2, admission.Queued);

        // With no bound of waiting (0), a request that fits now still starts.
        held.Dispose();
        using (await waiting.WaitAsync(TimeSpan.FromSeconds(10)))
        using (await patient.WaitAsync(TimeSpan.FromSeconds(10)))
        using (await admission.AcquireAsync([4], maxQueue: 0, CancellationToken.None))
        {
            Assert.Equal(10, admission.Reserved(0));
            var none = await Assert.ThrowsAsync<KvQueueFullException>(() => admission.AcquireAsync([1], maxQueue: 0, CancellationToken.None));
            Assert.Equal((3, 0, 0), (none.Running, none.Queued, none.MaxQueue));
        }
        Assert.Equal(0, admission.Reserved(0));
    }

    [Fact]
    public async Task ARequestLargerThanAWholePoolIsRefusedAtOnceNamingThePool()
    {
        using var other = new PagedKvCache(_backend, layers: 1, kvHeads: 1, headDim: 4, blocks: 30, blockSize: 8);
        var admission = new KvAdmission([("large", _pool), ("tuned", other)]);
        using var held = await admission.AcquireAsync([10, 0], CancellationToken.None);

        // Refused even though the first pool is busy and the queue is unbounded: it would never start.
        var never = await Assert.ThrowsAsync<KvNeverFitsException>(() => admission.AcquireAsync([1, 31], CancellationToken.None));
        Assert.Equal(("tuned", 31L, 30L, 8), (never.Model, never.BlocksNeeded, never.PoolBlocks, never.BlockSize));
        Assert.Contains("31 KV blocks of 8 tokens on tuned, more than its whole pool of 30", never.Message);
        Assert.IsAssignableFrom<InvalidOperationException>(never);
        Assert.Equal(0, admission.Queued);
        Assert.Equal((10L, 0L), (admission.Reserved(0), admission.Reserved(1)));
    }
}
