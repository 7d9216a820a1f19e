namespace WeakToStrong.Backends.Cuda;

/// <summary>
/// The decode-step CUDA graphs of <see cref="CudaBackend"/> (<see cref="CudaBackendOptions.DecodeGraphs"/>). While a
/// step is recorded (<see cref="BeginRecording"/>), <see cref="Launch"/> keeps each launch — kernel, geometry and
/// parameter slots — instead of issuing it; <see cref="Flush"/> ends the recording and replays the graph of an
/// identical earlier recording, capturing one first if there is none. Outside a recording a launch is issued at once.
/// The backend decides what is recorded, and keeps a decode step's launches identical from step to step (block tables
/// padded to a power of two, attention split for the padded context) so that replays are found.
/// </summary>
internal sealed unsafe class CudaGraphCache(IDeviceRuntime runtime) : IDisposable
{
    private readonly KernelArgs _args = new(); // parameters of the launches being captured
    private List<Recorded>? _recording;
    private readonly Dictionary<int, List<(Recorded[] Launches, IDisposable Graph)>> _graphs = [];
    private int _graphCount;

    /// <summary>A launch recorded for a decode graph: its kernel, geometry and parameter slots.</summary>
    private sealed record Recorded(string Kernel, Dim3 Grid, Dim3 Block, int Shared, ulong[] Args)
    {
        public bool SameAs(Recorded o) => Kernel == o.Kernel && Grid == o.Grid && Block == o.Block && Shared == o.Shared && Args.AsSpan().SequenceEqual(o.Args);

        public int Hash()
        {
            var h = new HashCode();
            h.Add(Kernel);
            h.Add(Grid);
            h.Add(Shared);
            foreach (ulong a in Args) h.Add(a);
            return h.ToHashCode();
        }
    }

    /// <summary>Decode graphs captured so far (each costs a capture; every other step with the same launches is a replay).</summary>
    public int GraphsCaptured { get; private set; }

    /// <summary>Decode steps run as a graph replay.</summary>
    public int GraphReplays { get; private set; }

    /// <summary>Whether launches are being recorded instead of issued.</summary>
    public bool IsRecording => _recording is not null;

    /// <summary>One new token for each of at most <paramref name="maxRows"/> distinct sequences.</summary>
    internal static bool IsDecodeStep(BatchLayout layout, int maxRows) =>
        layout.TokenCount > 0 && layout.TokenCount <= maxRows && layout.TokenCount == layout.SequenceCount
        && layout.TokenSequence.Distinct().Count() == layout.TokenCount;

    /// <summary>Starts recording a decode step (call <see cref="Flush"/> first if one may be open).</summary>
    public void BeginRecording() => _recording = [];

    /// <summary>Issues the launch, or records it while a step is recorded.</summary>
    public void Launch(string kernel, Dim3 grid, Dim3 block, KernelArgs args, int sharedBytes = 0)
    {
        if (_recording is not null) _recording.Add(new Recorded(kernel, grid, block, sharedBytes, args.Snapshot()));
        else runtime.Launch(kernel, grid, block, sharedBytes, args.Pointers, args.Count);
    }

    /// <summary>Ends a decode recording: replays its graph, capturing it first if no identical one exists.</summary>
    public void Flush()
    {
        if (_recording is null) return;
        var launches = _recording.ToArray();
        _recording = null;
        if (launches.Length == 0) return;
        int key = launches.Length;
        foreach (var l in launches) key = HashCode.Combine(key, l.Hash());
        if (!_graphs.TryGetValue(key, out var candidates)) _graphs[key] = candidates = [];
        IDisposable? graph = null;
        foreach (var (known, g) in candidates)
            if (known.Length == launches.Length && known.Zip(launches).All(p => p.First.SameAs(p.Second))) graph = g;
        if (graph is null)
        {
            if (_graphCount >= MaxGraphs) DropGraphs();
            graph = runtime.Capture(() =>
            {
                foreach (var l in launches) runtime.Launch(l.Kernel, l.Grid, l.Block, l.Shared, _args.Load(l.Args).Pointers, l.Args.Length);
            });
            candidates.Add((launches, graph));
            _graphCount++;
            GraphsCaptured++;
        }
        runtime.Replay(graph);
        GraphReplays++;
    }

    /// <summary>Graphs kept at once; past it they are all dropped (contexts only grow, so old ones are rarely reused).</summary>
    private const int MaxGraphs = 64;

    private void DropGraphs()
    {
        runtime.Synchronize();
        foreach (var list in _graphs.Values)
            foreach (var (_, g) in list) g.Dispose();
        _graphs.Clear();
        _graphCount = 0;
    }

    public void Dispose()
    {
        DropGraphs();
        _args.Dispose();
    }
}
