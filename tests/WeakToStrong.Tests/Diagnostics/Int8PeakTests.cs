using System.Runtime.Intrinsics.X86;
using WeakToStrong.Diagnostics;

namespace WeakToStrong.Tests.Diagnostics;

/// <summary>The int8 ceiling <c>w2s bench</c> reports beside int8 rows counts what its loop does.</summary>
[Trait("Category", "Unit")]
public class Int8PeakTests
{
    [SkippableFact]
    public void Int8PeakCountsEveryCoresMultiplyAddsAndRunsLongPassesWithoutOverflow()
    {
        // 8 chains × 32 byte products × (multiply + add) per step, on every core.
        Assert.Equal(8L * 32 * 2 * Environment.ProcessorCount * 1000, Int8Peak.OpsPerPass(1000));
        Skip.IfNot(Avx2.IsSupported, "no AVX2: no int8 kernel to probe");
        Assert.Equal("avx2", Int8Peak.Path);
        Int8Peak.Run(20_000_000); // its accumulators wrap; the checksum must too
        Assert.InRange(Int8Peak.Measure(2_000_000, 2), 1e9, 1e13);
    }
}
