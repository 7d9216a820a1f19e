using WeakToStrong.Backends;
using WeakToStrong.Backends.Cuda;
using WeakToStrong.Engine;

namespace WeakToStrong.Tests.Cuda;

/// <summary>The CUDA backend has no int8 weights (issue 21): asking for them is one line naming the cpu backend,
/// raised at the first linear weight, and the weights loaded until then are released.</summary>
[Trait("Category", "Integration")]
public class Int8RefusalTests
{
    private const string Refusal = "the cuda backend has no int8 weights: --weights int8 runs on the cpu backend only";

    [EmulatorFact]
    public void TheEmulatedCudaBackendRefusesInt8Weights()
    {
        using var backend = new CudaBackend(new EmulatorRuntime(), new CudaBackendOptions());
        var e = Assert.Throws<NotSupportedException>(() => LanguageModel.Load(TestPaths.Fixture("llama-tiny"), new ModelOptions { KvBlocks = 8, Weights = LinearWeights.Int8 }, backend));
        Assert.Equal(Refusal, e.Message);
    }

    [GpuFact]
    public void TheCudaBackendRefusesInt8Weights()
    {
        using var backend = new CudaBackend();
        var e = Assert.Throws<NotSupportedException>(() => LanguageModel.Load(TestPaths.Fixture("gpt2-tiny"), new ModelOptions { KvBlocks = 8, Weights = LinearWeights.Int8 }, backend));
        Assert.Equal(Refusal, e.Message);
    }
}
