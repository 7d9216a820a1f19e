using WeakToStrong.Backends;
using WeakToStrong.Backends.Cuda;
using WeakToStrong.Engine;

namespace WeakToStrong.Tests.Cuda;

/// <summary>
/// Decode steps recorded and replayed as graphs give the same tokens as launching each kernel, and a graph is
/// reused while the padded context stays in its power-of-two bucket. On the emulator a "graph" is the recorded
/// launch list; on a device it is a real CUDA graph.
/// </summary>
[Trait("Category", "Integration")]
public class DecodeGraphTests
{
    private static (List<int> Tokens, CudaBackend Backend) Generate(IBackend backend, string fixture, int steps)
    {
        using var model = LanguageModel.Load(TestPaths.Fixture(fixture), new ModelOptions { KvBlocks = 64, KvBlockSize = 4 }, backend);
        var c = GoldenCase.Load(fixture)[0];
        return (model.Generate(c.PromptTokens, steps, SamplingSettings.Greedy), (CudaBackend)backend);
    }

    [EmulatorFact]
    public void ReplayedDecodeStepsMatchTheGoldenGreedyTokens()
    {
        var runtime = new EmulatorRuntime();
        using var backend = new CudaBackend(runtime, new CudaBackendOptions { DecodeGraphs = true });
        var c = GoldenCase.Load("llama-tiny")[0];
        var (tokens, _) = Generate(backend, "llama-tiny", 8);
        Assert.Equal(c.GreedyTokens.Take(8), tokens);
        // The prompt is one token, so every step feeds one token: all 8 are replays. Positions 0..7 in blocks of 4
        // need tables of width 1 then 2, so two captures serve all eight steps.
        Assert.Single(c.PromptTokens);
        Assert.Equal(8, backend.GraphReplays);
        Assert.Equal(2, backend.GraphsCaptured);
        Assert.Equal(8, runtime.Replays);
    }

    [Fact]
    public void OnlyOneTokenPerDistinctSequenceWithinTheRowLimitIsADecodeStep()
    {
        BatchLayout L(int[] owners, int[] positions) => new()
        {
            Tokens = new int[owners.Length], Positions = positions, TokenSequence = owners, SlotMapping = new int[owners.Length],
            BlockTables = new int[(owners.Max() + 1) * 2], MaxBlocksPerSequence = 2,
        };
        Assert.True(CudaGraphCache.IsDecodeStep(L([0, 1, 2], [5, 9, 1]), 8));
        Assert.False(CudaGraphCache.IsDecodeStep(L([0, 0], [5, 6]), 8));          // a chunk of one sequence
        Assert.False(CudaGraphCache.IsDecodeStep(L([0, 1, 2], [5, 9, 1]), 2));    // above the GEMV row limit
    }

    [GpuFact]
    public void ReplayedDecodeStepsMatchTheGoldenGreedyTokensOnTheDevice()
    {
        using var backend = new CudaBackend(new CudaBackendOptions { DecodeGraphs = true });
        var c = GoldenCase.Load("llama-tiny")[0];
        var (tokens, _) = Generate(backend, "llama-tiny", 12);
        Assert.Equal(c.GreedyTokens.Take(12), tokens);
        Assert.Equal(12, backend.GraphReplays);
        Assert.Equal(3, backend.GraphsCaptured); // table widths 1, 2, 4
    }
}
