using WeakToStrong.Engine;
using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;
using WeakToStrong.Tests.Search;

namespace WeakToStrong.Tests.Server;

/// <summary>
/// Test classes that read exact numbers off /metrics or wait on them. Every <c>W2sServer</c> in a process reports
/// under the one meter name, so any other server alive at the same time (a parallel test class, a class fixture's)
/// would add its counts and overwrite its gauges; these classes run alone, after the parallel ones, and start only
/// the servers they read.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ExactMetricsCollection : ICollectionFixture<ServerModels>
{
    public const string Name = "exact /metrics";
}

/// <summary>The models of <see cref="ServerFixture"/>, written once, without a server of their own.</summary>
public sealed class ServerModels : IDisposable
{
    private readonly TempDirectory _folder = TestPaths.Temp();
    private readonly string _large, _tuned, _untuned;

    public ServerModels()
    {
        _large = SearchTestModels.WriteGpt2(_folder.Path, "large", seed: 11, dim: 48, layers: 3);
        _tuned = SearchTestModels.WriteGpt2(_folder.Path, "tuned", seed: 22);
        _untuned = SearchTestModels.WriteGpt2(_folder.Path, "untuned", seed: 33);
    }

    /// <summary>The three models (or the small pair and <paramref name="remoteLarge"/>) on their own engine loop, with pools of <paramref name="kvBlocks"/> blocks.</summary>
    public WeakToStrongSearch Load(int kvBlocks, ILargeModel? remoteLarge = null) => WeakToStrongSearch.Load(new SearchModelOptions
    {
        LargeDirectory = remoteLarge is null ? _large : null,
        LargeModel = remoteLarge,
        TunedDirectory = _tuned,
        UntunedDirectory = _untuned,
        Model = new ModelOptions { KvBlocks = kvBlocks },
        ContinuousBatching = true,
    });

    public void Dispose() => _folder.Dispose();
}
