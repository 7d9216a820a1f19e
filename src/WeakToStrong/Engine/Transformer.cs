using WeakToStrong.Backends;
using WeakToStrong.Checkpoints;
using WeakToStrong.Engine.KvCache;
using WeakToStrong.Engine.Profiling;
using WeakToStrong.Engine.Scheduling;

namespace WeakToStrong.Engine;

/// <summary>One sequence's part of a ragged forward call.</summary>
/// <param name="Sequence">The sequence; its tokens from <see cref="Sequence.CachedLength"/> up to <paramref name="FeedUntil"/> are fed.</param>
/// <param name="FeedUntil">Exclusive end of the tokens to feed; −1 feeds every uncached token.</param>
/// <param name="TargetLogProbs">Return log p(tokens[i+1] | tokens[≤i]) for every fed position i that has a next token.</param>
/// <param name="LastLogits">Return the next-token logits after the last fed token.</param>
/// <param name="Sampling">Sample the next token after the last fed token with these settings.</param>
/// <param name="SampleKeys">With <paramref name="Sampling"/>: draw one token per key from the same next-token
/// distribution (each as a sequence with that <see cref="Sequence.Key"/> would draw it) instead of one with the
/// sequence's own key — forks that would feed the same token at the same place share one row this way.</param>
public readonly record struct ForwardRequest(Sequence Sequence, int FeedUntil = -1, bool TargetLogProbs = false, bool LastLogits = false, SamplingSettings? Sampling = null,
    IReadOnlyList<ulong>? SampleKeys = null);

/// <summary>Per-request results of a forward call.</summary>
/// <param name="TargetLogProbs">One entry per fed position that has a next token (in position order), or empty.</param>
/// <param name="LastLogits">[vocab] logits after the last fed token, when asked for.</param>
/// <param name="SampledToken">The sampled next token (the first key's with <see cref="ForwardRequest.SampleKeys"/>), or −1.</param>
public sealed record ForwardResult(float[] TargetLogProbs, float[]? LastLogits, int SampledToken)
{
    /// <summary>One sampled token per <see cref="ForwardRequest.SampleKeys"/> key (in key order); the one
    /// <see cref="SampledToken"/> otherwise; empty without sampling.</summary>
    public IReadOnlyList<int> SampledTokens { get; init; } = SampledToken >= 0 ? [SampledToken] : [];
}

/// <summary>
/// The one forward for every model family. A flat loop over layers, driven by <see cref="ModelSpec"/>; a ragged
/// batch of sequences with any number of new tokens each (prefill, decode and scoring are the same call).
/// </summary>
public sealed class Transformer : IDisposable
{
    /// <summary>Rows of logits computed at once (bounds the [rows, vocab] buffer).</summary>
    private const int LogitChunk = 64;

    private readonly Workspace _work;
    private ForwardProfile? _profile;
    private ProfiledBackend? _profiled;

    public Transformer(ModelSpec spec, ModelWeights weights, IBackend backend, PagedKvCache cache)
    {
        Spec = spec;
        Weights = weights;
        Backend = backend;
        Cache = cache;
        _work = new Workspace(backend, spec);
    }

    public ModelSpec Spec { get; }

    public ModelWeights Weights { get; }

    public IBackend Backend { get; }

    public PagedKvCache Cache { get; }

    /// <summary>Forward calls made so far.</summary>
    public long ForwardCalls { get; private set; }

    /// <summary>Tokens fed through the model so far.</summary>
    public long TokensProcessed { get; private set; }

    /// <summary>Tokens fed by the latest forward call.</summary>
    public int LastBatchTokens { get; private set; }

    /// <summary>
    /// When set, every later forward is timed op by op into this profile (see <see cref="ForwardProfile"/>); null (the
    /// default) runs the backend's ops directly.
    /// </summary>
    public ForwardProfile? Profile
    {
        get => _profile;
        set
        {
            _profile = value;
            _profiled = value is null ? null : new ProfiledBackend(Backend, value, Weights);
        }
    }

    /// <summary>The engine loop every forward of this model goes through, once attached (see <see cref="EngineLoop.Attach"/>).</summary>
    public EngineLoop? Loop { get; internal set; }

    /// <summary>
    /// <see cref="Forward"/> through the model's engine loop when it has one (merged with other callers' requests
    /// into one ragged forward); otherwise run here and now.
    /// </summary>
    public Task<IReadOnlyList<ForwardResult>> ForwardAsync(IReadOnlyList<ForwardRequest> requests, CancellationToken cancellationToken = default)
    {
        // Also from the loop thread, where callers' continuations run: they queue for the next turn.
        if (Loop is { } loop) return loop.SubmitAsync(this, requests, cancellationToken);
        return Task.FromResult(Forward(requests, cancellationToken));
    }

    /// <summary>Loads a checkpoint into a backend with a KV pool of <paramref name="kvBlocks"/> blocks.</summary>
    public static Transformer Load(Checkpoint checkpoint, IBackend backend, int kvBlocks, int blockSize = 16) =>
        Load(checkpoint, backend, kvBlocks, blockSize, LinearWeights.Stored);

    /// <summary>Loads a checkpoint with its linear weights held as <paramref name="linearWeights"/> says (see
    /// <see cref="ModelWeights.Load(Checkpoint, IBackend, LinearWeights)"/>).</summary>
    public static Transformer Load(Checkpoint checkpoint, IBackend backend, int kvBlocks, int blockSize, LinearWeights linearWeights)
    {
        var spec = checkpoint.Spec;
        var weights = ModelWeights.Load(checkpoint, backend, linearWeights);
        var cache = new PagedKvCache(backend, spec.Layers, spec.KvHeads, spec.HeadDim, kvBlocks, blockSize);
        return new Transformer(spec, weights, backend, cache);
    }

    /// <summary>A new sequence in this model's cache (nothing is computed until it is fed).</summary>
    public Sequence CreateSequence(IEnumerable<int> tokens, ulong key = 0)
    {
        var sequence = new Sequence(Cache, tokens, key);
        foreach (int t in sequence.Tokens) CheckToken(t);
        return sequence;
    }

    private void CheckToken(int token)
    {
        if ((uint)token >= (uint)Spec.VocabSize)
            throw new ArgumentOutOfRangeException(nameof(token), token, $"token id {token} is outside the vocabulary [0, {Spec.VocabSize})");
    }

    public IReadOnlyList<ForwardResult> Forward(IReadOnlyList<ForwardRequest> requests, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(requests);
        if (Loop is { IsLoopThread: false })
            throw new InvalidOperationException("this model runs on an engine loop: call ForwardAsync, which the loop batches (a direct forward would race with it)");
        cancellationToken.ThrowIfCancellationRequested();
        if (_profiled is { } profiled)
        {
            using var scope = profiled.Begin();
            return ForwardOn(profiled, requests, cancellationToken);
        }
        return ForwardOn(Backend, requests, cancellationToken);
    }

    /// <summary>The forward, with every op on <paramref name="b"/> (the backend, or its profiled view).</summary>
    private IReadOnlyList<ForwardResult> ForwardOn(IBackend b, IReadOnlyList<ForwardRequest> requests, CancellationToken cancellationToken)
    {
        var layout = Plan(requests, out var ends);
        int T = layout.TokenCount;
        ForwardCalls++;
        TokensProcessed += T;
        LastBatchTokens = T;
        var results = new ForwardResult[requests.Count];
        if (T == 0)
        {
            for (int i = 0; i < results.Length; i++)
                if (requests[i].LastLogits || requests[i].Sampling is not null)
                    throw new ArgumentException($"request {i} asks for next-token output but feeds no token", nameof(requests));
            return results.Select(_ => new ForwardResult([], null, -1)).ToArray();
        }
        var w = _work.Ensure(T);
        var spec = Spec;
        b.BeginBatch(layout);
        b.Embed(layout, Weights.TokenEmbedding, Weights.PositionEmbedding, w.X, spec.Dim);   // x: [T, dim]
        Tensor? delta = null;
        for (int l = 0; l < spec.Layers; l++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var lw = Weights.Layers[l];
            b.AddNorm(w.X, delta, lw.AttentionNorm, lw.AttentionNormBias, w.H, T, spec.Dim, spec.Norm, spec.NormEps);
            b.Linear(w.H, lw.Qkv, lw.QkvBias, w.Qkv, T, spec.Dim, spec.QkvDim);                // qkv: [T, (H + 2·Hkv)·hd]
            b.RopeAndCacheWrite(layout, w.Qkv, Cache.Keys[l], Cache.Values[l], spec.Rope, spec.Heads, spec.KvHeads, spec.HeadDim, Cache.BlockSize);
            b.Attention(layout, w.Qkv, Cache.Keys[l], Cache.Values[l], w.Attention, spec.Heads, spec.KvHeads, spec.HeadDim, Cache.BlockSize); // [T, H·hd]
            b.Linear(w.Attention, lw.Output, lw.OutputBias, w.Delta, T, spec.AttentionDim, spec.Dim); // [T, dim]
            b.AddNorm(w.X, w.Delta, lw.MlpNorm, lw.MlpNormBias, w.H, T, spec.Dim, spec.Norm, spec.NormEps);
            if (spec.Mlp == MlpKind.GeluTanh)
            {
                b.Linear(w.H, lw.Up, lw.UpBias, w.Up, T, spec.Dim, spec.FeedForwardDim);     // [T, ff]
                b.GeluTanh(w.Up, (long)T * spec.FeedForwardDim);
                b.Linear(w.Up, lw.Down, lw.DownBias, w.Delta, T, spec.FeedForwardDim, spec.Dim);
            }
            else
            {
                b.Linear(w.H, lw.Up, lw.UpBias, w.Up, T, spec.Dim, 2 * spec.FeedForwardDim); // gate|up: [T, 2·ff]
                b.SiluGate(w.Up, w.Act, T, spec.FeedForwardDim);                             // [T, ff]
                b.Linear(w.Act, lw.Down, lw.DownBias, w.Delta, T, spec.FeedForwardDim, spec.Dim);
            }
            delta = w.Delta;
        }
        b.AddNorm(w.X, delta, Weights.FinalNorm, Weights.FinalNormBias, w.H, T, spec.Dim, spec.Norm, spec.NormEps);

        for (int i = 0; i < requests.Count; i++) requests[i].Sequence.MarkCached(ends[i].End);
        return Outputs(b, requests, ends, w);
    }

    /// <summary>Builds the batch layout and reserves KV slots (allocating or copying blocks as needed).</summary>
    private BatchLayout Plan(IReadOnlyList<ForwardRequest> requests, out (int Start, int End, int Row)[] ends)
    {
        ends = new (int, int, int)[requests.Count];
        int total = 0;
        var seen = new HashSet<Sequence>(ReferenceEqualityComparer.Instance);
        for (int i = 0; i < requests.Count; i++)
        {
            var r = requests[i];
            ArgumentNullException.ThrowIfNull(r.Sequence, $"{nameof(requests)}[{i}].{nameof(ForwardRequest.Sequence)}");
            ObjectDisposedException.ThrowIf(r.Sequence.IsReleased, r.Sequence);
            if (r.Sequence.Cache != Cache) throw new ArgumentException($"request {i}: the sequence belongs to another model's cache", nameof(requests));
            if (!seen.Add(r.Sequence)) throw new ArgumentException($"request {i}: the same sequence appears twice in one batch", nameof(requests));
            if (r.SampleKeys is { } keys && (r.Sampling is null || keys.Count == 0))
                throw new ArgumentException($"request {i}: SampleKeys needs Sampling and at least one key", nameof(requests));
            int end = r.FeedUntil < 0 ? r.Sequence.Length : r.FeedUntil;
            int start = r.Sequence.CachedLength;
            if (end < start || end > r.Sequence.Length)
                throw new ArgumentOutOfRangeException(nameof(requests), $"request {i}: FeedUntil {end} is outside [{start}, {r.Sequence.Length}]");
            if (end > Spec.MaxPositions)
                throw new ArgumentException($"sequence of {end} tokens exceeds the model's context of {Spec.MaxPositions} positions", nameof(requests));
            ends[i] = (start, end, total);
            total += end - start;
        }

        int maxBlocks = 0;
        foreach (var (start, end, _) in ends) maxBlocks = Math.Max(maxBlocks, (end + Cache.BlockSize - 1) / Cache.BlockSize);
        var tokens = new int[total];
        var positions = new int[total];
        var owners = new int[total];
        var slots = new int[total];
        var tables = new int[requests.Count * Math.Max(maxBlocks, 1)];
        Array.Fill(tables, -1);
        for (int i = 0; i < requests.Count; i++)
        {
            var s = requests[i].Sequence;
            var (start, end, row) = ends[i];
            for (int p = start; p < end; p++)
            {
                int t = row + p - start;
                tokens[t] = s.Tokens[p];
                CheckToken(tokens[t]);
                positions[t] = p;
                owners[t] = i;
                slots[t] = s.WritableSlot(p);
            }
            for (int k = 0; k < s.BlockTable.Count && k < maxBlocks; k++) tables[i * maxBlocks + k] = s.BlockTable[k];
        }
        return new BatchLayout
        {
            Tokens = tokens,
            Positions = positions,
            TokenSequence = owners,
            SlotMapping = slots,
            BlockTables = tables,
            MaxBlocksPerSequence = Math.Max(maxBlocks, 1),
        };
    }

    private ForwardResult[] Outputs(IBackend b, IReadOnlyList<ForwardRequest> requests, (int Start, int End, int Row)[] ends, Workspace.Buffers w)
    {
        // Rows whose next token is known (scoring), and last fed rows wanting logits or a sample.
        var targetRows = new List<int>();
        var targets = new List<int>();
        var logitOwners = new List<int>();
        var sampleOwners = new List<int>();
        for (int i = 0; i < requests.Count; i++)
        {
            var r = requests[i];
            var (start, end, row) = ends[i];
            if (r.TargetLogProbs)
                for (int p = start; p < end && p + 1 < r.Sequence.Length; p++)
                {
                    targetRows.Add(row + p - start);
                    targets.Add(r.Sequence.Tokens[p + 1]);
                }
            if ((r.LastLogits || r.Sampling is not null) && end == start)
                throw new ArgumentException($"request {i} asks for next-token output but feeds no token", nameof(requests));
            if (r.LastLogits) logitOwners.Add(i);
            if (r.Sampling is not null) sampleOwners.Add(i);
        }
        int LastRow(int i) => ends[i].Row + ends[i].End - ends[i].Start - 1;

        int vocab = Spec.VocabSize;
        var logProbs = new float[targetRows.Count];
        for (int c = 0; c < targetRows.Count; c += LogitChunk)
        {
            int n = Math.Min(LogitChunk, targetRows.Count - c);
            Logits(b, w, targetRows.GetRange(c, n));
            b.LogProbOfTargets(w.Logits, n, vocab, targets.GetRange(c, n).ToArray(), logProbs.AsSpan(c, n));
        }

        var lastLogits = new float[requests.Count][];
        for (int c = 0; c < logitOwners.Count; c += LogitChunk)
        {
            var owners = logitOwners.GetRange(c, Math.Min(LogitChunk, logitOwners.Count - c));
            Logits(b, w, owners.ConvertAll(LastRow));
            var host = new float[(long)owners.Count * vocab];
            b.Download(w.Logits, host);
            for (int k = 0; k < owners.Count; k++) lastLogits[owners[k]] = host.AsSpan(k * vocab, vocab).ToArray();
        }

        // One draw per key; a request with several keys repeats its last row (the lm_head runs once per draw).
        var draws = new List<(int Owner, ulong Key, int Slot)>();
        var sampled = new int[requests.Count][];
        foreach (int i in sampleOwners)
        {
            var keys = requests[i].SampleKeys ?? [requests[i].Sequence.Key];
            sampled[i] = new int[keys.Count];
            for (int k = 0; k < keys.Count; k++) draws.Add((i, keys[k], k));
        }
        for (int c = 0; c < draws.Count; c += LogitChunk)
        {
            var chunk = draws.GetRange(c, Math.Min(LogitChunk, draws.Count - c));
            Logits(b, w, chunk.ConvertAll(d => LastRow(d.Owner)));
            var rows = chunk.Select(d =>
            {
                var s = requests[d.Owner].Sampling!;
                // The RNG counter is the position the sampled token will occupy.
                return new SamplingRow(s.Temperature, s.TopK, s.TopP, s.Seed, d.Key, ends[d.Owner].End);
            }).ToArray();
            var tokens = new int[chunk.Count];
            b.Sample(w.Logits, vocab, rows, tokens);
            for (int k = 0; k < chunk.Count; k++) sampled[chunk[k].Owner][chunk[k].Slot] = tokens[k];
        }

        var results = new ForwardResult[requests.Count];
        int offset = 0;
        for (int i = 0; i < requests.Count; i++)
        {
            var r = requests[i];
            var (start, end, _) = ends[i];
            int count = r.TargetLogProbs ? Math.Max(0, Math.Min(end, r.Sequence.Length - 1) - start) : 0;
            results[i] = sampled[i] is { } tokens
                ? new ForwardResult(logProbs.AsSpan(offset, count).ToArray(), lastLogits[i], tokens[0]) { SampledTokens = tokens }
                : new ForwardResult(logProbs.AsSpan(offset, count).ToArray(), lastLogits[i], -1);
            offset += count;
        }
        return results;
    }

    /// <summary>logits[k] = lmHead · h[rows[k]] for up to <see cref="LogitChunk"/> rows.</summary>
    private void Logits(IBackend b, Workspace.Buffers w, List<int> rows)
    {
        b.GatherRows(w.H, rows.ToArray(), w.Selected, Spec.Dim);                              // [n, dim]
        b.Linear(w.Selected, Weights.LmHead, null, w.Logits, rows.Count, Spec.Dim, Spec.VocabSize); // [n, vocab]
    }

    public void Dispose()
    {
        _work.Dispose();
        Cache.Dispose();
        Weights.Dispose();
    }

    /// <summary>Activation buffers, grown to the largest batch seen.</summary>
    private sealed class Workspace(IBackend backend, ModelSpec spec) : IDisposable
    {
        private Buffers? _buffers;

        public sealed class Buffers
        {
            public required int Capacity { get; init; }
            public required Tensor X, H, Qkv, Attention, Delta, Up, Act, Selected, Logits;
            public IEnumerable<Tensor> All => [X, H, Qkv, Attention, Delta, Up, Act, Selected, Logits];
        }

        public Buffers Ensure(int tokens)
        {
            if (_buffers is not null && _buffers.Capacity >= tokens) return _buffers;
            Dispose();
            int capacity = Math.Max(tokens, (_buffers?.Capacity ?? 0) * 2);
            capacity = Math.Max(capacity, 16);
            int up = spec.Mlp == MlpKind.SiluGated ? 2 * spec.FeedForwardDim : spec.FeedForwardDim;
            Tensor F(long n) => backend.Allocate(DType.F32, n);
            _buffers = new Buffers
            {
                Capacity = capacity,
                X = F((long)capacity * spec.Dim),
                H = F((long)capacity * spec.Dim),
                Qkv = F((long)capacity * spec.QkvDim),
                Attention = F((long)capacity * spec.AttentionDim),
                Delta = F((long)capacity * spec.Dim),
                Up = F((long)capacity * up),
                Act = F((long)capacity * spec.FeedForwardDim),
                Selected = F((long)LogitChunk * spec.Dim),
                Logits = F((long)LogitChunk * spec.VocabSize),
            };
            return _buffers;
        }

        public void Dispose()
        {
            if (_buffers is null) return;
            foreach (var t in _buffers.All) t.Dispose();
        }
    }
}
