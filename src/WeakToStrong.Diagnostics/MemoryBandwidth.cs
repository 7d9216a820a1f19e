using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using WeakToStrong.Backends.Cpu;

namespace WeakToStrong.Diagnostics;

/// <summary>The machine's memory read bandwidth: every core streams its share of a buffer far larger than the caches.</summary>
public static unsafe class MemoryBandwidth
{
    /// <summary>Best of <paramref name="repeats"/> passes over <paramref name="bytes"/>, in bytes per second.</summary>
    public static double MeasureRead(long bytes = 1L << 30, int repeats = 5)
    {
        long floats = bytes / sizeof(float);
        float* buffer = (float*)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        try
        {
            new Span<byte>(buffer, (int)Math.Min(bytes, int.MaxValue)).Fill(1);
            for (long off = int.MaxValue; off < bytes; off += int.MaxValue)
                new Span<byte>((byte*)buffer + off, (int)Math.Min(int.MaxValue, bytes - off)).Fill(1);
            double best = 0;
            for (int r = 0; r < repeats + 1; r++)
            {
                var clock = Stopwatch.StartNew();
                long read = Stream(buffer, floats);
                double seconds = clock.Elapsed.TotalSeconds;
                if (r > 0) best = Math.Max(best, read * sizeof(float) / seconds); // pass 0 is warm-up
            }
            return best;
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }

    /// <summary>
    /// Reads <paramref name="floats"/> floats (rounded down to whole 64-float lines per core) on every core and
    /// returns how many were read; the sum is kept so the loads cannot be optimised away.
    /// </summary>
    public static long Stream(float* buffer, long floats)
    {
        int threads = CpuParallel.Threads;
        long share = floats / threads & ~63L;
        nint b = (nint)buffer;
        var sink = new float[threads];
        CpuParallel.For(threads, t =>
        {
            float* p = (float*)b + t * share;
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
            for (long i = 0; i < share; i += 32)
            {
                a0 += Vector256.Load(p + i);
                a1 += Vector256.Load(p + i + 8);
                a2 += Vector256.Load(p + i + 16);
                a3 += Vector256.Load(p + i + 24);
            }
            sink[t] = Vector256.Sum(a0 + a1 + a2 + a3);
        });
        GC.KeepAlive(sink);
        return share * threads;
    }
}
