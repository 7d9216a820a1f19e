using System.Runtime.Intrinsics;
using static WeakToStrong.Backends.Cpu.CpuTensor;

namespace WeakToStrong.Backends.Cpu;

/// <summary>
/// The elementwise activations (GELU-tanh, SiLU gate) of <see cref="CpuBackend"/>: the reference for
/// kernels/activation.cu.
/// </summary>
internal static unsafe class CpuActivation
{
    /// <summary>gelu_tanh(v) = 0.5·v·(1 + tanh(√(2/π)·(v + 0.044715·v³))) (see <see cref="CpuMath.GeluTanh(Vector256{float})"/>).</summary>
    public static void GeluTanh(CpuIsa isa, Tensor x, long count)
    {
        const int chunk = 1 << 12;
        nint pp = (nint)P(x);
        bool wide = isa == CpuIsa.Avx512;
        CpuParallel.For((int)((count + chunk - 1) / chunk), c =>
        {
            float* v = (float*)pp + (long)c * chunk;
            int n = (int)Math.Min(chunk, count - (long)c * chunk), i = 0;
            if (wide)
                for (; i + 16 <= n; i += 16) CpuMath.GeluTanh(Vector512.Load(v + i)).Store(v + i);
            for (; i + 8 <= n; i += 8) CpuMath.GeluTanh(Vector256.Load(v + i)).Store(v + i);
            for (; i < n; i++) v[i] = CpuMath.GeluTanh(v[i]);
        }, serial: count < 1 << 14);
    }

    public static void SiluGate(CpuIsa isa, Tensor gateUp, Tensor y, int rows, int ff)
    {
        nint gp = (nint)P(gateUp), yp = (nint)P(y);
        bool wide = isa == CpuIsa.Avx512;
        CpuParallel.For(rows, r =>
        {
            float* g = (float*)gp + (long)r * 2 * ff;
            float* o = (float*)yp + (long)r * ff;
            int i = 0;
            if (wide)
                for (; i + 16 <= ff; i += 16) (CpuMath.Silu(Vector512.Load(g + i)) * Vector512.Load(g + ff + i)).Store(o + i);
            for (; i + 8 <= ff; i += 8) (CpuMath.Silu(Vector256.Load(g + i)) * Vector256.Load(g + ff + i)).Store(o + i);
            for (; i < ff; i++) o[i] = g[i] / (1f + MathF.Exp(-g[i])) * g[ff + i];
        }, serial: (long)rows * ff < 1 << 14);
    }
}
