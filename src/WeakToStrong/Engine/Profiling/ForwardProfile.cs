using System.Diagnostics;

namespace WeakToStrong.Engine.Profiling;

/// <summary>What a slice of a forward's time was spent on (see <see cref="ForwardProfile"/>).</summary>
public enum ForwardOp
{
    /// <summary>Token (and position) embedding lookup.</summary>
    Embed,

    /// <summary>Residual add + layer norm / RMSNorm (the final norm included).</summary>
    Norm,

    /// <summary>The fused q/k/v projection.</summary>
    LinearQkv,

    /// <summary>Rotary embedding and the paged-KV write.</summary>
    RopeKvWrite,

    /// <summary>Causal attention over the paged cache.</summary>
    Attention,

    /// <summary>The attention output projection.</summary>
    LinearOut,

    /// <summary>The MLP up projection (gate|up fused for gated MLPs).</summary>
    LinearMlpUp,

    /// <summary>GELU or SiLU-gate.</summary>
    Activation,

    /// <summary>The MLP down projection.</summary>
    LinearMlpDown,

    /// <summary>The LM head over the rows whose logits are asked for.</summary>
    LinearLmHead,

    /// <summary>Fused log-sum-exp + gather of target tokens (scoring).</summary>
    LogSoftmaxGather,

    /// <summary>Sampling: temperature, top-k, top-p, argmax.</summary>
    Sampling,

    /// <summary>Row gathers, uploads and downloads.</summary>
    Copy,

    /// <summary>The forward's thread waiting at the end of a parallel region for the other threads' last items
    /// (load imbalance and a late-scheduled worker; CPU backend only).</summary>
    Barrier,
}

/// <summary>
/// Where a model's forward calls spend their time, by op (<see cref="ForwardOp"/>): set
/// <see cref="Transformer.Profile"/> and every backend call of its forwards is timed, with the linears told apart by
/// the weight they multiply. Without a profile the forward calls the backend directly and nothing is timed.
/// <para>
/// Times are the forward thread's wall clock around each backend call; on the CPU backend the time that thread spends
/// waiting for other threads to finish a parallel region is taken out of the op and counted as
/// <see cref="ForwardOp.Barrier"/>, so the ops sum to the time inside the backend. The rest of a forward
/// (<see cref="HostSeconds"/>: planning the batch, collecting results) is the host's. A device backend that queues
/// work (CUDA) is timed at its enqueue, so read this on the CPU backend.
/// </para>
/// </summary>
public sealed class ForwardProfile
{
    private readonly long[] _ticks = new long[Enum.GetValues<ForwardOp>().Length];
    private readonly long[] _calls = new long[Enum.GetValues<ForwardOp>().Length];
    private readonly double[] _flops = new double[Enum.GetValues<ForwardOp>().Length];
    private readonly long[] _weightBytes = new long[Enum.GetValues<ForwardOp>().Length];
    private long _forwardTicks;

    /// <summary>Forward calls profiled since the last <see cref="Reset"/>.</summary>
    public long Forwards { get; private set; }

    /// <summary>Wall seconds of those forward calls, start to end.</summary>
    public double ForwardSeconds => Seconds(_forwardTicks);

    /// <summary>Seconds spent in <paramref name="op"/> (summed over every call).</summary>
    public double SecondsIn(ForwardOp op) => Seconds(_ticks[(int)op]);

    /// <summary>Backend calls counted under <paramref name="op"/> (a region's barrier wait counts one per region).</summary>
    public long CallsOf(ForwardOp op) => _calls[(int)op];

    /// <summary>Multiply-add FLOPs (2 per weight per row) of the linears counted under <paramref name="op"/>.</summary>
    public double FlopsIn(ForwardOp op) => _flops[(int)op];

    /// <summary>Weight bytes the linears counted under <paramref name="op"/> read (each weight once per call).</summary>
    public long WeightBytesIn(ForwardOp op) => _weightBytes[(int)op];

    /// <summary>Seconds of every op together: the forwards' time inside the backend.</summary>
    public double OpSeconds => Seconds(_ticks.Sum());

    /// <summary>The forwards' time outside the backend's ops (planning, results).</summary>
    public double HostSeconds => ForwardSeconds - OpSeconds;

    /// <summary>Forgets everything measured so far.</summary>
    public void Reset()
    {
        Array.Clear(_ticks);
        Array.Clear(_calls);
        Array.Clear(_flops);
        Array.Clear(_weightBytes);
        _forwardTicks = 0;
        Forwards = 0;
    }

    internal void Add(ForwardOp op, long ticks, long calls = 1)
    {
        _ticks[(int)op] += ticks;
        _calls[(int)op] += calls;
    }

    internal void AddWork(ForwardOp op, double flops, long weightBytes)
    {
        _flops[(int)op] += flops;
        _weightBytes[(int)op] += weightBytes;
    }

    internal void AddForward(long ticks)
    {
        _forwardTicks += ticks;
        Forwards++;
    }

    private static double Seconds(long ticks) => (double)ticks / Stopwatch.Frequency;

    /// <summary>A short lower-case name for <paramref name="op"/> (tables, JSON).</summary>
    public static string Name(ForwardOp op) => op switch
    {
        ForwardOp.Embed => "embed",
        ForwardOp.Norm => "norm",
        ForwardOp.LinearQkv => "linear qkv",
        ForwardOp.RopeKvWrite => "rope + kv write",
        ForwardOp.Attention => "attention",
        ForwardOp.LinearOut => "linear out",
        ForwardOp.LinearMlpUp => "linear mlp up",
        ForwardOp.Activation => "activation",
        ForwardOp.LinearMlpDown => "linear mlp down",
        ForwardOp.LinearLmHead => "linear lm_head",
        ForwardOp.LogSoftmaxGather => "log-softmax + gather",
        ForwardOp.Sampling => "sampling / top-k",
        ForwardOp.Copy => "copies",
        ForwardOp.Barrier => "barrier wait",
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, null),
    };
}
