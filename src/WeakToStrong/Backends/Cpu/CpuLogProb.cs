using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using static WeakToStrong.Backends.Cpu.CpuTensor;

namespace WeakToStrong.Backends.Cpu;

/// <summary>
/// The fused log-sum-exp + gather (log-probabilities of given tokens, no softmax materialised) of
/// <see cref="CpuBackend"/>: the reference for kernels/logprob.cu.
/// </summary>
internal static unsafe class CpuLogProb
{
    public static void LogProbOfTargets(CpuIsa isa, Tensor logits, int rows, int vocab, ReadOnlySpan<int> targets, Span<float> result)
    {
        if (targets.Length < rows || result.Length < rows) throw new ArgumentException("targets and result need one entry per row");
        for (int r = 0; r < rows; r++)
            if ((uint)targets[r] >= (uint)vocab) throw new ArgumentOutOfRangeException(nameof(targets), targets[r], $"target id outside the vocabulary [0, {vocab})");
        nint l = (nint)P(logits);
        var ids = targets[..rows].ToArray();
        var values = new float[rows];
        bool wide = isa == CpuIsa.Avx512;
        CpuParallel.For(rows, r =>
        {
            var row = new ReadOnlySpan<float>((float*)l + (long)r * vocab, vocab);
            values[r] = (float)(row[ids[r]] - LogSumExp(row, wide));
        }, serial: rows == 1);
        values.CopyTo(result);
    }

    /// <summary>log Σ exp(x), in one streaming pass over the row: e^(x − max) summed in 16 lanes as
    /// <see cref="CpuMath.Sum"/> does, the last elements and the log in float64.</summary>
    internal static double LogSumExp(ReadOnlySpan<float> row, bool wide)
    {
        float max = TensorPrimitives.Max(row);
        ref float first = ref MemoryMarshal.GetReference(row);
        var m = Vector256.Create(max);
        Vector256<float> lo = default, hi = default;
        int i = 0;
        if (wide)
        {
            var m16 = Vector512.Create(max);
            var acc = Vector512<float>.Zero;
            for (; i + 16 <= row.Length; i += 16) acc += CpuMath.Exp(Vector512.LoadUnsafe(ref first, (nuint)i) - m16);
            (lo, hi) = (acc.GetLower(), acc.GetUpper());
        }
        else
            for (; i + 16 <= row.Length; i += 16)
            {
                lo += CpuMath.Exp(Vector256.LoadUnsafe(ref first, (nuint)i) - m);
                hi += CpuMath.Exp(Vector256.LoadUnsafe(ref first, (nuint)(i + 8)) - m);
            }
        if (i + 8 <= row.Length)
        {
            lo += CpuMath.Exp(Vector256.LoadUnsafe(ref first, (nuint)i) - m);
            i += 8;
        }
        double sum = CpuMath.Reduce(lo, hi);
        for (; i < row.Length; i++) sum += Math.Exp(row[i] - max);
        return max + Math.Log(sum);
    }
}
