using WeakToStrong.Backends;
using WeakToStrong.Engine;
using WeakToStrong.Engine.KvCache;
using WeakToStrong.Engine.Profiling;

namespace WeakToStrong.Diagnostics;

/// <summary>One op's part of a profiled call.</summary>
/// <param name="Op">The op's name (<see cref="ForwardProfile.Name"/>).</param>
/// <param name="Milliseconds">Its milliseconds per call.</param>
/// <param name="Share">Its part of the call's wall time.</param>
/// <param name="Gflops">A linear's multiply-add GFLOP/s over its own time (0 for other ops).</param>
/// <param name="WeightGigabytesPerSecond">A linear's weight bytes read per second of its own time (0 for other ops).</param>
public sealed record OpShare(string Op, double Milliseconds, double Share, double Gflops = 0, double WeightGigabytesPerSecond = 0);

/// <summary>Where one kind of forward call spends its time, op by op (<see cref="ForwardProfile"/>).</summary>
/// <param name="Model">Shape name.</param>
/// <param name="Dtype">Weight dtype.</param>
/// <param name="Call">"decode" (one sampled token per sequence) or "score" (<see cref="StepProfiler.ScoreTokens"/> new
/// tokens per sequence, their log-probs gathered: a small model's scoring round of a CBS chunk).</param>
/// <param name="Batch">Sequences per call.</param>
/// <param name="Calls">Profiled calls (their mean is reported).</param>
/// <param name="Milliseconds">Wall milliseconds per call, start to end of the forward.</param>
/// <param name="Ops">Every op the call ran, in forward order, with its milliseconds and share; the barrier wait last
/// but one and the host's time (planning, results: the forward outside the backend) last.</param>
public sealed record StepProfile(string Model, string Dtype, string Call, int Batch, int Calls, double Milliseconds, IReadOnlyList<OpShare> Ops)
{
    /// <summary>The summed share of the ops whose name starts with "linear".</summary>
    public double LinearShare => Ops.Where(o => o.Op.StartsWith("linear", StringComparison.Ordinal)).Sum(o => o.Share);
}

/// <summary>
/// Profiles decode steps and scoring calls of a model (<c>w2s bench --profile</c>): the same calls as
/// <see cref="EngineBenchmark"/> makes, with <see cref="Transformer.Profile"/> set, after warm-up.
/// </summary>
public static class StepProfiler
{
    /// <summary>New tokens per sequence in a profiled scoring call: the paper's chunk length (CBS L = 5).</summary>
    public const int ScoreTokens = 5;

    /// <summary>The name of the host's part of a call in <see cref="StepProfile.Ops"/>.</summary>
    public const string Host = "host (plan, results)";

    /// <summary>Profiles <paramref name="calls"/> decode steps and as many scoring calls at <paramref name="batch"/>
    /// sequences of <paramref name="promptTokens"/> tokens.</summary>
    public static IReadOnlyList<StepProfile> Run(Transformer model, string name, int batch, int promptTokens, int calls, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(promptTokens);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(calls);
        if (model.Profile is not null) throw new ArgumentException("the model is already being profiled", nameof(model));
        string dtype = model.Weights.WeightDType.Name();
        var random = new Random(batch);
        int Token() => random.Next(model.Spec.VocabSize);
        var sequences = Enumerable.Range(0, batch).Select(i => model.CreateSequence(Enumerable.Range(0, promptTokens).Select(_ => Token()), (ulong)i)).ToList();
        var profile = new ForwardProfile();
        try
        {
            var sampling = new SamplingSettings(0f);
            void Decode()
            {
                var r = model.Forward(sequences.Select(s => new ForwardRequest(s, Sampling: sampling)).ToList(), cancellationToken);
                for (int i = 0; i < sequences.Count; i++) sequences[i].Append(r[i].SampledToken);
            }
            void Score()
            {
                int length = sequences[0].Length;
                foreach (var s in sequences) s.Append(Enumerable.Range(0, ScoreTokens).Select(_ => Token()));
                model.Forward(sequences.Select(s => new ForwardRequest(s, TargetLogProbs: true)).ToList(), cancellationToken);
                foreach (var s in sequences) s.Truncate(length);
            }
            model.Forward(sequences.Select(s => new ForwardRequest(s)).ToList(), cancellationToken); // prefill: every prompt token cached
            Score(); // warm-up, kept out of the profile
            model.Profile = profile;
            for (int c = 0; c < calls; c++) Score();
            var score = Summary(profile, name, dtype, "score", batch);
            model.Profile = null;
            foreach (var s in sequences) s.Append(Token());
            Decode(); // warm-up steps
            Decode();
            profile.Reset();
            model.Profile = profile;
            for (int c = 0; c < calls; c++) Decode();
            return [Summary(profile, name, dtype, "decode", batch), score];
        }
        finally
        {
            model.Profile = null;
            sequences.ForEach(s => s.Dispose());
        }
    }

    /// <summary>A profile's totals as milliseconds per call and shares of the call's wall time.</summary>
    public static StepProfile Summary(ForwardProfile profile, string model, string dtype, string call, int batch)
    {
        ArgumentNullException.ThrowIfNull(profile);
        if (profile.Forwards == 0) throw new ArgumentException("the profile holds no forward call", nameof(profile));
        double perCall = profile.ForwardSeconds / profile.Forwards;
        OpShare Share(string op, double seconds) => new(op, seconds / profile.Forwards * 1e3, seconds / profile.Forwards / perCall);
        var ops = Enum.GetValues<ForwardOp>().Where(op => profile.CallsOf(op) > 0 && op != ForwardOp.Barrier)
            .Select(op => Share(ForwardProfile.Name(op), profile.SecondsIn(op)) with
            {
                // An op too short for the clock has no rate (and JSON has no NaN).
                Gflops = profile.SecondsIn(op) > 0 ? profile.FlopsIn(op) / profile.SecondsIn(op) / 1e9 : 0,
                WeightGigabytesPerSecond = profile.SecondsIn(op) > 0 ? profile.WeightBytesIn(op) / profile.SecondsIn(op) / 1e9 : 0,
            }).ToList();
        ops.Add(Share(ForwardProfile.Name(ForwardOp.Barrier), profile.SecondsIn(ForwardOp.Barrier)));
        ops.Add(Share(Host, profile.HostSeconds));
        return new StepProfile(model, dtype, call, batch, (int)profile.Forwards, perCall * 1e3, ops);
    }
}
