using System.Diagnostics;
using WeakToStrong.Backends;

namespace WeakToStrong.Engine.Profiling;

/// <summary>
/// The backend a profiled forward calls (<see cref="Transformer.Profile"/>): every op goes to the real backend, timed
/// into a <see cref="ForwardProfile"/>. A linear is filed under the role of the weight it multiplies; the barrier
/// wait the op's parallel regions made (<see cref="IBarrierClock"/>) is moved out of the op into
/// <see cref="ForwardOp.Barrier"/>. Only the forward ever sees this wrapper, so an unprofiled forward pays nothing.
/// </summary>
internal sealed class ProfiledBackend : IBackend
{
    private readonly IBackend _inner;
    private readonly IBarrierClock? _clock;
    private readonly ForwardProfile _profile;
    private readonly Dictionary<Tensor, ForwardOp> _roles = new(ReferenceEqualityComparer.Instance);

    public ProfiledBackend(IBackend inner, ForwardProfile profile, ModelWeights weights)
    {
        _inner = inner;
        _clock = inner as IBarrierClock;
        _profile = profile;
        foreach (var layer in weights.Layers)
        {
            _roles[layer.Qkv] = ForwardOp.LinearQkv;
            _roles[layer.Output] = ForwardOp.LinearOut;
            _roles[layer.Up] = ForwardOp.LinearMlpUp;
            _roles[layer.Down] = ForwardOp.LinearMlpDown;
        }
        _roles[weights.LmHead] = ForwardOp.LinearLmHead;
    }

    /// <summary>Turns the backend's barrier clock on for the calling thread while a profiled forward runs.</summary>
    public Scope Begin() => new(this);

    public readonly struct Scope : IDisposable
    {
        private readonly ProfiledBackend _owner;
        private readonly bool _was;
        private readonly long _start;

        public Scope(ProfiledBackend owner)
        {
            _owner = owner;
            _was = owner._clock?.TimeWaits ?? false;
            if (owner._clock is { } clock) clock.TimeWaits = true;
            _start = Stopwatch.GetTimestamp();
        }

        public void Dispose()
        {
            _owner._profile.AddForward(Stopwatch.GetTimestamp() - _start);
            if (_owner._clock is { } clock) clock.TimeWaits = _was;
        }
    }

    /// <summary>Times one op: its wall time less the barrier waits inside it, and those waits apart.</summary>
    private readonly struct Timed
    {
        private readonly ProfiledBackend _owner;
        private readonly ForwardOp _op;
        private readonly long _start, _waitTicks, _waits;

        public Timed(ProfiledBackend owner, ForwardOp op)
        {
            _owner = owner;
            _op = op;
            _waitTicks = owner._clock?.WaitTicks ?? 0;
            _waits = owner._clock?.Waits ?? 0;
            _start = Stopwatch.GetTimestamp();
        }

        public void End()
        {
            long elapsed = Stopwatch.GetTimestamp() - _start;
            long waited = (_owner._clock?.WaitTicks ?? 0) - _waitTicks;
            _owner._profile.Add(_op, elapsed - waited);
            long regions = (_owner._clock?.Waits ?? 0) - _waits;
            if (regions > 0) _owner._profile.Add(ForwardOp.Barrier, waited, regions);
        }
    }

    private Timed Time(ForwardOp op) => new(this, op);

    public string Name => _inner.Name;

    public Tensor Allocate(DType dtype, long length) => _inner.Allocate(dtype, length);

    public void Upload(Tensor destination, ReadOnlySpan<byte> source, long elementOffset = 0)
    {
        var t = Time(ForwardOp.Copy);
        _inner.Upload(destination, source, elementOffset);
        t.End();
    }

    public void Download(Tensor source, Span<float> destination)
    {
        var t = Time(ForwardOp.Copy);
        _inner.Download(source, destination);
        t.End();
    }

    public void BeginBatch(BatchLayout layout)
    {
        var t = Time(ForwardOp.Copy);
        _inner.BeginBatch(layout);
        t.End();
    }

    public void Embed(BatchLayout layout, Tensor tokenEmbedding, Tensor? positionEmbedding, Tensor x, int dim)
    {
        var t = Time(ForwardOp.Embed);
        _inner.Embed(layout, tokenEmbedding, positionEmbedding, x, dim);
        t.End();
    }

    public void AddNorm(Tensor residual, Tensor? delta, Tensor weight, Tensor? bias, Tensor y, int rows, int dim, NormKind kind, float eps)
    {
        var t = Time(ForwardOp.Norm);
        _inner.AddNorm(residual, delta, weight, bias, y, rows, dim, kind, eps);
        t.End();
    }

    public Tensor PrepareLinear(Tensor w, int outDim, int inDim) => _inner.PrepareLinear(w, outDim, inDim);

    public Tensor LoadLinear(ReadOnlySpan<byte> bytes, DType dtype, int outDim, int inDim, bool transposed = false) =>
        _inner.LoadLinear(bytes, dtype, outDim, inDim, transposed);

    public Tensor LoadLinear(ReadOnlySpan<byte> bytes, DType dtype, int outDim, int inDim, bool transposed, LinearWeights format) =>
        _inner.LoadLinear(bytes, dtype, outDim, inDim, transposed, format);

    public void Linear(Tensor x, Tensor w, Tensor? bias, Tensor y, int rows, int inDim, int outDim)
    {
        // Every weight a forward multiplies is one of the model's: an unknown one is a bug in the forward.
        if (!_roles.TryGetValue(w, out var role)) throw new ArgumentException("the weight is not one of the profiled model's", nameof(w));
        var t = Time(role);
        _inner.Linear(x, w, bias, y, rows, inDim, outDim);
        t.End();
        _profile.AddWork(role, 2.0 * rows * inDim * outDim, w.ByteLength);
    }

    public void RopeAndCacheWrite(BatchLayout layout, Tensor qkv, Tensor keyCache, Tensor valueCache, RopeTable? rope, int heads, int kvHeads, int headDim, int blockSize)
    {
        var t = Time(ForwardOp.RopeKvWrite);
        _inner.RopeAndCacheWrite(layout, qkv, keyCache, valueCache, rope, heads, kvHeads, headDim, blockSize);
        t.End();
    }

    public void Attention(BatchLayout layout, Tensor qkv, Tensor keyCache, Tensor valueCache, Tensor output, int heads, int kvHeads, int headDim, int blockSize)
    {
        var t = Time(ForwardOp.Attention);
        _inner.Attention(layout, qkv, keyCache, valueCache, output, heads, kvHeads, headDim, blockSize);
        t.End();
    }

    public void GeluTanh(Tensor x, long count)
    {
        var t = Time(ForwardOp.Activation);
        _inner.GeluTanh(x, count);
        t.End();
    }

    public void SiluGate(Tensor gateUp, Tensor y, int rows, int ff)
    {
        var t = Time(ForwardOp.Activation);
        _inner.SiluGate(gateUp, y, rows, ff);
        t.End();
    }

    public void GatherRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination, int dim)
    {
        var t = Time(ForwardOp.Copy);
        _inner.GatherRows(source, rows, destination, dim);
        t.End();
    }

    public void LogProbOfTargets(Tensor logits, int rows, int vocab, ReadOnlySpan<int> targets, Span<float> result)
    {
        var t = Time(ForwardOp.LogSoftmaxGather);
        _inner.LogProbOfTargets(logits, rows, vocab, targets, result);
        t.End();
    }

    public void Sample(Tensor logits, int vocab, ReadOnlySpan<SamplingRow> rows, Span<int> result)
    {
        var t = Time(ForwardOp.Sampling);
        _inner.Sample(logits, vocab, rows, result);
        t.End();
    }

    public void CopyBlock(Tensor keyCache, Tensor valueCache, KvGeometry geometry, int sourceBlock, int destinationBlock)
    {
        var t = Time(ForwardOp.Copy);
        _inner.CopyBlock(keyCache, valueCache, geometry, sourceBlock, destinationBlock);
        t.End();
    }

    /// <summary>The wrapped backend belongs to the model, not to this view of it.</summary>
    public void Dispose()
    {
    }
}
