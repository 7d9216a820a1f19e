using WeakToStrong.Backends;
using WeakToStrong.Backends.Cpu;
using WeakToStrong.Engine.Sampling;

namespace WeakToStrong.Tests.Engine;

[Trait("Category", "Unit")]
public class SamplingTests
{
    /// <summary>Known-answer vectors of Philox-4x32-10 from the Random123 distribution (kat_vectors).</summary>
    [Theory]
    [InlineData(0u, 0u, 0u, 0u, 0u, 0u, 0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u)]
    [InlineData(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu, 0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu)]
    [InlineData(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u, 0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u)]
    public void PhiloxMatchesKnownAnswers(uint c0, uint c1, uint c2, uint c3, uint k0, uint k1, uint x0, uint x1, uint x2, uint x3)
    {
        Assert.Equal((x0, x1, x2, x3), Philox.Block(c0, c1, c2, c3, k0, k1));
    }

    private static readonly float[] Logits = [2.0f, 1.0f, 0.5f, 3.0f, -1.0f, 0.0f, 2.5f, 1.5f];

    private static double[] Softmax(IEnumerable<int> keep, float temperature)
    {
        var p = new double[Logits.Length];
        foreach (int i in keep) p[i] = Math.Exp(Logits[i] / temperature);
        double sum = p.Sum();
        return p.Select(v => v / sum).ToArray();
    }

    private static double[] Frequencies(float temperature, int topK, float topP, int draws = 20000)
    {
        var counts = new double[Logits.Length];
        for (int position = 0; position < draws; position++)
            counts[CpuSampler.Sample(Logits, new SamplingRow(temperature, topK, topP, Seed: 5, SequenceKey: 11, Position: position))]++;
        return counts.Select(c => c / draws).ToArray();
    }

    /// <summary>Each frequency within 4 standard errors of the expected probability (20000 draws).</summary>
    private static void AssertDistribution(double[] expected, double[] observed)
    {
        for (int i = 0; i < expected.Length; i++)
        {
            double se = Math.Sqrt(expected[i] * (1 - expected[i]) / 20000) + 1e-9;
            Assert.True(Math.Abs(expected[i] - observed[i]) <= 4 * se, $"token {i}: expected {expected[i]:F4}, observed {observed[i]:F4}");
        }
    }

    [Fact]
    public void PlainSamplingFollowsTheSoftmax() =>
        AssertDistribution(Softmax(Enumerable.Range(0, 8), 0.7f), Frequencies(0.7f, 0, 1f));

    [Fact]
    public void TopKKeepsOnlyTheKBest() =>
        AssertDistribution(Softmax([3, 6, 0], 1f), Frequencies(1f, 3, 1f));

    [Fact]
    public void TopPKeepsTheSmallestSetReachingP()
    {
        // Probabilities at T=1, sorted: 3 (0.38), 6 (0.23), 0 (0.14), 7 (0.085) … the nucleus for 0.7 is {3, 6, 0}.
        var full = Softmax(Enumerable.Range(0, 8), 1f);
        Assert.True(full[3] + full[6] < 0.7 && full[3] + full[6] + full[0] >= 0.7);
        AssertDistribution(Softmax([3, 6, 0], 1f), Frequencies(1f, 0, 0.7f));
    }

    [Fact]
    public void GreedyAndTopOneAreArgmaxWithTheFirstIndexOnTies()
    {
        Assert.Equal(3, CpuSampler.Sample(Logits, new SamplingRow(0f, 0, 1f, 1, 1, 0)));
        Assert.Equal(3, CpuSampler.Sample(Logits, new SamplingRow(2f, 1, 1f, 1, 1, 0)));
        Assert.Equal(1, CpuSampler.Sample([0f, 4f, 4f, 1f], new SamplingRow(0f, 0, 1f, 1, 1, 0)));
    }

    [Fact]
    public void DrawsDependOnlyOnSeedKeyAndPosition()
    {
        var a = Enumerable.Range(0, 50).Select(p => CpuSampler.Sample(Logits, new SamplingRow(1f, 0, 1f, 9, 4, p))).ToList();
        var b = Enumerable.Range(0, 50).Select(p => CpuSampler.Sample(Logits, new SamplingRow(1f, 0, 1f, 9, 4, p))).ToList();
        var otherKey = Enumerable.Range(0, 50).Select(p => CpuSampler.Sample(Logits, new SamplingRow(1f, 0, 1f, 9, 5, p))).ToList();
        Assert.Equal(a, b);
        Assert.NotEqual(a, otherKey);
    }
}
