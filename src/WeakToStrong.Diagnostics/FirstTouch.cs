using System.Diagnostics;
using System.Runtime.InteropServices;

namespace WeakToStrong.Diagnostics;

/// <summary>What writing fresh memory costs on this machine, beside a load that writes as many bytes.</summary>
/// <param name="Bytes">Bytes written.</param>
/// <param name="FreshSeconds">Writing every byte of freshly allocated memory (4 KiB pages, each faulted in on first
/// write), on every core.</param>
/// <param name="AgainSeconds">Writing the same memory again: the same stores with no fault.</param>
/// <param name="FreshHugeSeconds">As <paramref name="FreshSeconds"/> on memory advised to use 2 MiB pages
/// (MADV_HUGEPAGE); equal to the fresh figure where the kernel gives none.</param>
public sealed record FirstTouchMeasurement(long Bytes, double FreshSeconds, double AgainSeconds, double FreshHugeSeconds)
{
    /// <summary>GB/s of the fresh write: the ceiling of a load that writes every byte into fresh 4 KiB pages.</summary>
    public double FreshGigabytesPerSecond => Bytes / FreshSeconds / 1e9;

    /// <summary>GB/s of the repeated write: the memory's own write rate.</summary>
    public double AgainGigabytesPerSecond => Bytes / AgainSeconds / 1e9;

    /// <summary>GB/s of the fresh write on 2 MiB pages.</summary>
    public double FreshHugeGigabytesPerSecond => Bytes / FreshHugeSeconds / 1e9;
}

/// <summary>
/// The first-touch probe of <c>w2s bench --load</c>: on a VM the host may back a guest page only when it is first
/// written, so a loader that writes its weights into fresh memory can be bound by page faults, not by its own code.
/// </summary>
public static unsafe class FirstTouch
{
    private const long HugePage = 2 << 20;

    /// <summary>Times writing <paramref name="bytes"/> of fresh memory, the same memory again, and fresh memory on
    /// 2 MiB pages, all on every core.</summary>
    public static FirstTouchMeasurement Measure(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        double fresh, again, huge;
        var block = NativeMemory.Alloc((nuint)bytes);
        try
        {
            fresh = Fill((byte*)block, bytes);
            again = Fill((byte*)block, bytes);
        }
        finally
        {
            NativeMemory.Free(block);
        }
        // 2 MiB-aligned, so every whole huge page of the range can be one.
        var aligned = NativeMemory.AlignedAlloc((nuint)bytes, (nuint)HugePage);
        try
        {
            Native.MemoryAdvice.AdviseHugePages((nint)aligned, bytes);
            huge = Fill((byte*)aligned, bytes);
        }
        finally
        {
            NativeMemory.AlignedFree(aligned);
        }
        return new FirstTouchMeasurement(bytes, fresh, again, huge);
    }

    /// <summary>Seconds to write every byte, split in 2 MiB pieces over the cores.</summary>
    private static double Fill(byte* start, long bytes)
    {
        long pieces = (bytes + HugePage - 1) / HugePage;
        nint s = (nint)start;
        var clock = Stopwatch.StartNew();
        Parallel.For(0, Environment.ProcessorCount, worker =>
        {
            for (long p = worker; p < pieces; p += Environment.ProcessorCount)
            {
                long offset = p * HugePage;
                new Span<byte>((byte*)s + offset, (int)Math.Min(HugePage, bytes - offset)).Fill(1);
            }
        });
        return clock.Elapsed.TotalSeconds;
    }
}
