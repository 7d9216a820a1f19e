namespace WeakToStrong.Engine.Sampling;

/// <summary>
/// Philox-4x32-10 counter-based generator (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).
/// A draw is a pure function of (seed, sequence key, position), so a seeded sequence samples the same tokens
/// whatever else is batched beside it, on every backend. The CUDA sampling kernel implements the same function.
/// </summary>
public static class Philox
{
    private const uint M0 = 0xD2511F53, M1 = 0xCD9E8D57, W0 = 0x9E3779B9, W1 = 0xBB67AE85;

    /// <summary>One Philox-4x32-10 block: counter (c0..c3) under key (k0, k1).</summary>
    public static (uint X0, uint X1, uint X2, uint X3) Block(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1)
    {
        for (int round = 0; round < 10; round++)
        {
            ulong p0 = (ulong)M0 * c0, p1 = (ulong)M1 * c2;
            uint n0 = (uint)(p1 >> 32) ^ c1 ^ k0;
            uint n1 = (uint)p1;
            uint n2 = (uint)(p0 >> 32) ^ c3 ^ k1;
            uint n3 = (uint)p0;
            (c0, c1, c2, c3) = (n0, n1, n2, n3);
            k0 += W0;
            k1 += W1;
        }
        return (c0, c1, c2, c3);
    }

    /// <summary>A uniform draw in [0, 1) with 24 random bits (exact in float and double).</summary>
    public static double Uniform(ulong seed, ulong sequenceKey, int position)
    {
        var (x0, _, _, _) = Block((uint)position, (uint)sequenceKey, (uint)(sequenceKey >> 32), 0, (uint)seed, (uint)(seed >> 32));
        return (x0 >> 8) * (1.0 / (1 << 24));
    }
}
