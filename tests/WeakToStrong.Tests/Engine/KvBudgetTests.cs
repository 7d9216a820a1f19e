using WeakToStrong.Checkpoints;
using WeakToStrong.Engine;
using WeakToStrong.Engine.KvCache;
using WeakToStrong.Engine.Scheduling;

namespace WeakToStrong.Tests.Engine;

/// <summary>Byte sizes as people write them, the KV budget split across models, and the blocks a search tree needs.</summary>
[Trait("Category", "Unit")]
public class KvBudgetTests
{
    [Theory]
    [InlineData("1048576", 1048576L)]
    [InlineData("1MB", 1_000_000L)]
    [InlineData("1mb", 1_000_000L)]
    [InlineData("512MiB", 512L << 20)]
    [InlineData("2GB", 2_000_000_000L)]
    [InlineData("1.5 GiB", 3L << 29)]
    [InlineData(" 3 KiB ", 3072L)]
    [InlineData("10B", 10L)]
    [InlineData("1kb", 1000L)]
    [InlineData("1TiB", 1L << 40)]
    public void ParsesDecimalAndBinaryUnits(string text, long bytes) => Assert.Equal(bytes, ByteSize.Parse(text).Bytes);

    [Theory]
    [InlineData("", "not a size")]
    [InlineData("MB", "not a size")]
    [InlineData("-1MB", "not a size")]
    [InlineData("12XB", "unknown unit 'XB'")]
    [InlineData("1.2.3GB", "not a size")]
    [InlineData("99999999999TB", "too large")]
    public void RejectsBadSizesSayingWhy(string text, string why)
    {
        Assert.False(ByteSize.TryParse(text, out _, out string? error));
        Assert.Contains(why, error);
        Assert.Contains($"'{text}'", Assert.Throws<FormatException>(() => ByteSize.Parse(text)).Message);
    }

    [Theory]
    [InlineData(100L, "100 B")]
    [InlineData(512L << 20, "512 MiB")]
    [InlineData(3L << 29, "1.5 GiB")]
    public void PrintsInBinaryUnits(long bytes, string text) => Assert.Equal(text, new ByteSize(bytes).ToString());

    private static ModelSpec Spec(int layers, int kvHeads, int headDim, int positions) => SyntheticModel.Gpt2Small() with
    {
        Layers = layers, KvHeads = kvHeads, HeadDim = headDim, MaxPositions = positions,
    };

    [Fact]
    public void BudgetGivesEveryModelTheSameBlocks()
    {
        var large = Spec(4, 4, 16, 1024);   // 2·4·4·16·4 = 2048 bytes per token
        var small = Spec(2, 2, 16, 1024);   // 512 bytes per token
        Assert.Equal(2048 * 16, KvBudget.BlockBytes(large, 16));
        var specs = new[] { large, small, small };
        long perBlock = (2048 + 512 + 512) * 16L;
        Assert.Equal(10, KvBudget.FromBytes(10 * perBlock + perBlock - 1).BlocksPerModel(specs));
        var e = Assert.Throws<InvalidSettingException>(() => KvBudget.FromBytes(perBlock - 1).BlocksPerModel(specs));
        Assert.StartsWith("the KV budget of ", e.Reason);
        Assert.Contains("less than one block", e.Reason);
        Assert.Equal(nameof(KvBudget.Bytes), e.ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => KvBudget.FromBytes(0));
    }

    [Fact]
    public void DefaultBudgetIsAnEighthOfMemoryAtMostEightContexts()
    {
        var spec = Spec(4, 4, 16, 1024);
        long contexts = 8L * 1024 * 2048;
        var roomy = KvBudget.Default([spec], availableMemoryBytes: 1L << 40);
        Assert.Equal(contexts, roomy.Bytes);
        Assert.Equal(KvBudgetSource.Default, roomy.Source);
        Assert.Equal(8 * 1024 / 16, roomy.BlocksPerModel([spec]));
        Assert.Equal((64L << 20) / 8, KvBudget.Default([spec], availableMemoryBytes: 64L << 20).Bytes);
        Assert.True(KvBudget.Default([spec]).Bytes <= GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 8);
    }

    [Fact]
    public void SequenceNeedsItsBlocksRoundedUp()
    {
        Assert.Equal(0, KvDemand.SequenceBlocks(0, 16));
        Assert.Equal(1, KvDemand.SequenceBlocks(16, 16));
        Assert.Equal(2, KvDemand.SequenceBlocks(17, 16));
    }

    /// <summary>Counted by hand from the tree (see <see cref="KvDemand.TreeSearchBlocks"/>).</summary>
    [Fact]
    public void TreeDemandCountsSharedPrefixesOnce()
    {
        // One candidate, one chunk: positions [0, 20 + 30) → 4 blocks, plus the root's 2 counted apart (an upper bound).
        // The root holds ⌈20/16⌉ = 2; the child owns blocks ⌊19/16⌋ = 1 … ⌈50/16⌉ − 1 = 3, i.e. 3.
        Assert.Equal(2 + 3, KvDemand.TreeSearchBlocks(20, 30, 1, 1, null, 16));
        // Best-of-16: the prompt once, 16 private tails (not 16 copies of the prompt).
        Assert.Equal(2 + 16 * 3, KvDemand.TreeSearchBlocks(20, 30, 1, 16, null, 16));
        // CBS (4,4,5) with 10 new tokens, prompt 20: chunk 0 writes [19, 25) → blocks 1…1 (1 each);
        // chunk 1 writes [24, 30) → 1 each. Peak at chunk 1: root 2 + 4 survivors × 1 + 16 × 1 = 22.
        Assert.Equal(22, KvDemand.TreeSearchBlocks(20, 10, 4, 4, 5, 16));
        // A short last chunk can hold less than the one before: the peak is the larger.
        long fullThenShort = KvDemand.TreeSearchBlocks(1, 33, 2, 8, 32, 16);
        Assert.Equal(1 + 16 * 3, fullThenShort); // chunk 0: 16 × blocks 0…2; chunk 1 (1 token) needs only 1 + 2·3 + 16·1
        // Far less than W·K full copies of prompt + response.
        Assert.True(KvDemand.TreeSearchBlocks(200, 50, 4, 4, 5, 16) < 16 * KvDemand.SequenceBlocks(250, 16) / 2);
    }

    [Fact]
    public void OneTokenChunksNeedNoMoreThanTheLiveSequencesCanHold()
    {
        // CBS (4,4,1), prompt 11, 50 new tokens: the tree count adds 4 copied fork blocks for each of 50 chunks, but
        // at most 16 candidates and the root are alive, each within ⌈61/16⌉ = 4 blocks.
        Assert.Equal(17 * 4, KvDemand.TreeSearchBlocks(11, 50, 4, 4, 1, 16));
        // Where the tree is the tighter count it stays: Best-of-16 above is 2 + 16 × 3 = 50, under 17 × 4 = 68.
        Assert.Equal(2 + 16 * 3, KvDemand.TreeSearchBlocks(20, 30, 1, 16, null, 16));
    }

    [Fact]
    public void AbsurdShapesSaturateInsteadOfOverflowing()
    {
        Assert.Equal(long.MaxValue, KvDemand.TreeSearchBlocks(1000, 1_000_000, int.MaxValue, int.MaxValue, 1, 1));
        Assert.Equal(long.MaxValue, KvDemand.IndependentBlocks(int.MaxValue, int.MaxValue, int.MaxValue, 1, int.MaxValue));
    }
}
