using WeakToStrong.Backends;
using WeakToStrong.Backends.Cuda;
using WeakToStrong.Engine;

namespace WeakToStrong.Tests.Cuda;

/// <summary>
/// The whole forward on the CUDA backend against the golden values of Hugging Face transformers (never against
/// our CPU output): continuation log-probs and greedy tokens, on the emulator (CI) and on a device.
/// </summary>
public class ForwardTests
{
    /// <summary>The golden fixtures' bar (GoldenFixtureTests): a correct F32 runtime lands near 1e-5.</summary>
    private const double LogProbTolerance = 2e-4;

    internal static void AssertMatchesGolden(string fixture, IBackend backend, int greedySteps = int.MaxValue)
    {
        using var model = LanguageModel.Load(TestPaths.Fixture(fixture), new ModelOptions { KvBlocks = 64 }, backend);
        foreach (var c in GoldenCase.Load(fixture))
        {
            var logprobs = model.Score(c.PromptTokens, c.ContinuationTokens);
            Assert.Equal(c.ContinuationLogprobs.Length, logprobs.Length);
            for (int i = 0; i < logprobs.Length; i++)
                Assert.True(Math.Abs(logprobs[i] - c.ContinuationLogprobs[i]) <= LogProbTolerance,
                    $"{fixture} on {backend.Name}, token {i}: ours {logprobs[i]}, transformers {c.ContinuationLogprobs[i]}");
            int steps = Math.Min(greedySteps, c.GreedyTokens.Length);
            var tokens = model.Generate(c.PromptTokens, steps, SamplingSettings.Greedy);
            Assert.Equal(c.GreedyTokens.Take(steps), tokens);
        }
    }

    /// <summary>The small-vocabulary fixtures: the emulator runs the lm_head through linear.cu, so GPT-2's 50257-row head is left to the GPU run.</summary>
    [EmulatorTheory]
    [InlineData("llama-tiny")]
    [InlineData("llama31-small")]
    [InlineData("qwen2-small")]
    public void EmulatedForwardMatchesTransformers(string fixture)
    {
        using var backend = new CudaBackend(new EmulatorRuntime(), new CudaBackendOptions());
        AssertMatchesGolden(fixture, backend, greedySteps: 4);
    }

    [GpuTheory]
    [MemberData(nameof(TestPaths.FixtureNames), MemberType = typeof(TestPaths))]
    public void ForwardOnTheDeviceMatchesTransformers(string fixture)
    {
        using var backend = new CudaBackend();
        AssertMatchesGolden(fixture, backend);
    }

    [GpuTheory]
    [MemberData(nameof(TestPaths.FixtureNames), MemberType = typeof(TestPaths))]
    public void ForwardWithTheCublasPathOnEveryRowMatchesTransformers(string fixture)
    {
        using var backend = new CudaBackend(new CudaBackendOptions { SmallBatchRows = 0 });
        AssertMatchesGolden(fixture, backend);
    }
}
