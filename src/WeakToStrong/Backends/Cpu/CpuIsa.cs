using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using WeakToStrong.Engine;

namespace WeakToStrong.Backends.Cpu;

/// <summary>
/// The vector width the CPU backend's kernels run at. Every path computes each output with the same operations in
/// the same order (one FMA chain per linear output; reductions over 16 lanes, the 256-bit path holding them in two
/// vectors), so the paths give the same bits and differ only in speed.
/// </summary>
public enum CpuIsa
{
    /// <summary>256-bit vectors (AVX2 + FMA; without them .NET emulates the vectors in software, slowly but exactly).</summary>
    Avx2,

    /// <summary>512-bit vectors (AVX-512 F and BW): a 16-row weight panel is one register, 32 registers.</summary>
    Avx512,
}

/// <summary>Which <see cref="CpuIsa"/> this machine can run, and the default: the widest, unless the
/// <c>W2S_CPU_ISA</c> environment variable (<c>avx2</c> or <c>avx512</c>) forces one (for A/B runs and tests).</summary>
public static class CpuIsas
{
    public const string Variable = "W2S_CPU_ISA";

    /// <summary>Whether this process can run <paramref name="isa"/> in hardware.</summary>
    public static bool IsSupported(CpuIsa isa) => isa switch
    {
        CpuIsa.Avx2 => true,
        CpuIsa.Avx512 => Avx512F.IsSupported && Avx512BW.IsSupported && Vector512.IsHardwareAccelerated,
        _ => false,
    };

    /// <summary>The widest path this machine runs.</summary>
    public static CpuIsa Widest => IsSupported(CpuIsa.Avx512) ? CpuIsa.Avx512 : CpuIsa.Avx2;

    /// <summary>Every path this machine runs, narrowest first.</summary>
    public static IReadOnlyList<CpuIsa> Supported => Enum.GetValues<CpuIsa>().Where(IsSupported).ToArray();

    /// <summary>The path a new <see cref="CpuBackend"/> takes: <c>W2S_CPU_ISA</c> when set, else <see cref="Widest"/>.
    /// Throws <see cref="InvalidSettingException"/> naming the variable when its value is unknown or this CPU lacks it.</summary>
    public static CpuIsa Default => Parse(Environment.GetEnvironmentVariable(Variable));

    /// <summary><paramref name="value"/> as a path (null or empty: <see cref="Widest"/>).</summary>
    public static CpuIsa Parse(string? value)
    {
        if (string.IsNullOrWhiteSpace(value)) return Widest;
        CpuIsa isa = value.Trim().ToLowerInvariant() switch
        {
            "avx2" => CpuIsa.Avx2,
            "avx512" => CpuIsa.Avx512,
            _ => throw new InvalidSettingException($"{Variable}={value} is not a CPU path (known: avx2, avx512)", Variable),
        };
        if (!IsSupported(isa)) throw new InvalidSettingException($"{Variable}={value}: this process has no {Name(isa)} (the CPU lacks it, DOTNET_EnableAVX512=0 or DOTNET_PreferredVectorBitWidth below 512 turns it off, or a NativeAOT build for x86-64-v3)", Variable);
        return isa;
    }

    /// <summary>"avx2" or "avx512", the spelling <c>W2S_CPU_ISA</c> takes and benchmarks print.</summary>
    public static string Name(CpuIsa isa) => isa == CpuIsa.Avx512 ? "avx512" : "avx2";
}
