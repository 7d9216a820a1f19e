using System.Diagnostics;
using WeakToStrong.Backends;
using WeakToStrong.Backends.Cpu;
using WeakToStrong.Checkpoints;
using WeakToStrong.Diagnostics;
using WeakToStrong.Engine;
using WeakToStrong.Engine.KvCache;
using WeakToStrong.Engine.Profiling;

namespace WeakToStrong.Tests.Engine;

/// <summary><see cref="Transformer.Profile"/>: what it counts, that its parts add up to the forward, and that it
/// changes no result.</summary>
[Trait("Category", "Unit")]
public class ForwardProfileTests
{
    /// <summary>A GPT-2-shaped model small enough for a unit test, large enough that a forward is milliseconds of
    /// backend work (so the host's part — planning the batch, collecting results — is a small part of it).</summary>
    private static ModelSpec Gpt2Shaped() => SyntheticModel.Gpt2Small() with { VocabSize = 4096, Dim = 256, Layers = 4, Heads = 4, KvHeads = 4, HeadDim = 64, FeedForwardDim = 1024, MaxPositions = 256 };

    /// <summary>Llama-shaped: RMSNorm, gated MLP, GQA, untied LM head, no biases.</summary>
    private static ModelSpec LlamaShaped() => SyntheticModel.Llama3_8B() with
    {
        VocabSize = 3000, Dim = 192, Layers = 3, Heads = 6, KvHeads = 2, HeadDim = 32, FeedForwardDim = 512, MaxPositions = 256,
        Rope = new RopeTable(Enumerable.Range(0, 16).Select(i => 1.0 / Math.Pow(10000, 2.0 * i / 32)).ToArray()),
    };

    private static List<Sequence> Prompts(Transformer model, int batch, int length)
    {
        var random = new Random(7);
        return Enumerable.Range(0, batch).Select(i => model.CreateSequence(Enumerable.Range(0, length).Select(_ => random.Next(model.Spec.VocabSize)), (ulong)i)).ToList();
    }

    private static IReadOnlyList<ForwardResult> Decode(Transformer model, List<Sequence> sequences)
    {
        var r = model.Forward(sequences.Select(s => new ForwardRequest(s, Sampling: new SamplingSettings(0.8f, 20, 0.9f, 3))).ToList());
        for (int i = 0; i < sequences.Count; i++) sequences[i].Append(r[i].SampledToken);
        return r;
    }

    [Fact]
    public void EveryRoleOfAGpt2ModelIsCountedOncePerLayer()
    {
        var spec = Gpt2Shaped();
        using var backend = new CpuBackend();
        using var model = SyntheticModel.Create(spec, DType.F32, backend, 64);
        var sequences = Prompts(model, 4, 9);
        Decode(model, sequences); // prefill
        var profile = new ForwardProfile();
        model.Profile = profile;
        Decode(model, sequences);
        Decode(model, sequences);

        int layers = spec.Layers, forwards = 2;
        Assert.Equal(forwards, profile.Forwards);
        foreach (var op in new[] { ForwardOp.LinearQkv, ForwardOp.LinearOut, ForwardOp.LinearMlpUp, ForwardOp.LinearMlpDown, ForwardOp.Attention, ForwardOp.RopeKvWrite, ForwardOp.Activation })
            Assert.Equal(forwards * layers, profile.CallsOf(op));
        Assert.Equal(forwards * (2 * layers + 1), profile.CallsOf(ForwardOp.Norm)); // two per layer and the final one
        Assert.Equal(forwards, profile.CallsOf(ForwardOp.LinearLmHead)); // the tied embedding, once per forward
        Assert.Equal(forwards, profile.CallsOf(ForwardOp.Embed));
        Assert.Equal(forwards, profile.CallsOf(ForwardOp.Sampling));
        Assert.Equal(0, profile.CallsOf(ForwardOp.LogSoftmaxGather));
        foreach (var op in new[] { ForwardOp.LinearQkv, ForwardOp.LinearMlpUp, ForwardOp.LinearLmHead, ForwardOp.Attention })
            Assert.True(profile.SecondsIn(op) > 0, $"{op} took no time");
        sequences.ForEach(s => s.Dispose());
    }

    [Fact]
    public void AScoringCallOfALlamaModelGathersLogProbsAndSamplesNothing()
    {
        var spec = LlamaShaped();
        using var backend = new CpuBackend();
        using var model = SyntheticModel.Create(spec, DType.BF16, backend, 64);
        var sequences = Prompts(model, 3, 11);
        var profile = new ForwardProfile();
        model.Profile = profile;
        model.Forward(sequences.Select(s => new ForwardRequest(s, TargetLogProbs: true)).ToList());

        Assert.Equal(1, profile.Forwards);
        foreach (var op in new[] { ForwardOp.LinearQkv, ForwardOp.LinearOut, ForwardOp.LinearMlpUp, ForwardOp.LinearMlpDown, ForwardOp.Activation })
            Assert.Equal(spec.Layers, profile.CallsOf(op));
        Assert.Equal(1, profile.CallsOf(ForwardOp.LinearLmHead)); // the untied head: 30 target rows, one chunk
        Assert.Equal(1, profile.CallsOf(ForwardOp.LogSoftmaxGather));
        Assert.Equal(0, profile.CallsOf(ForwardOp.Sampling));
        sequences.ForEach(s => s.Dispose());
    }

    [Fact]
    public void TheOpsAddUpToTheForwardMeasuredOutside()
    {
        using var backend = new CpuBackend();
        using var model = SyntheticModel.Create(Gpt2Shaped(), DType.F32, backend, 128);
        var sequences = Prompts(model, 16, 20);
        Decode(model, sequences); // prefill
        Decode(model, sequences); // warm-up
        var profile = new ForwardProfile();
        model.Profile = profile;
        long outside = 0;
        for (int step = 0; step < 8; step++)
        {
            long start = Stopwatch.GetTimestamp();
            Decode(model, sequences);
            outside += Stopwatch.GetTimestamp() - start;
        }
        double measured = (double)outside / Stopwatch.Frequency;
        double ops = Enum.GetValues<ForwardOp>().Sum(profile.SecondsIn);
        Assert.Equal(profile.OpSeconds, ops, 12);
        // Every op runs inside the forward, and the forward inside the outer clock.
        Assert.True(ops <= profile.ForwardSeconds && profile.ForwardSeconds <= measured, $"ops {ops:F6} s, forward {profile.ForwardSeconds:F6} s, outside {measured:F6} s");
        // The tolerance: what the ops do not cover is the host's planning and result collection (and the sampled
        // tokens' append outside the forward), tens of microseconds against milliseconds of backend work here.
        Assert.True(ops >= 0.9 * measured, $"the ops cover {ops / measured:P1} of the measured forwards");
        if (CpuParallel.Threads > 1) Assert.True(profile.CallsOf(ForwardOp.Barrier) > 0, "no parallel region was waited at");
        var summary = StepProfiler.Summary(profile, "test", "F32", "decode", 16);
        Assert.Equal(1.0, summary.Ops.Sum(o => o.Share), 9); // the host's part closes the sum to the forward
        sequences.ForEach(s => s.Dispose());
    }

    [Fact]
    public void ProfilingChangesNoBit()
    {
        float[] Logits(bool profiled)
        {
            using var backend = new CpuBackend();
            using var model = SyntheticModel.Create(LlamaShaped(), DType.F32, backend, 32);
            if (profiled) model.Profile = new ForwardProfile();
            using var s = model.CreateSequence([5, 17, 99, 4, 1234]);
            return model.Forward([new ForwardRequest(s, LastLogits: true)])[0].LastLogits!;
        }
        Assert.Equal(Logits(false), Logits(true));
    }

    [Fact]
    public void TheStepProfilerReportsADecodeStepAndAScoringCall()
    {
        using var backend = new CpuBackend();
        using var model = SyntheticModel.Create(Gpt2Shaped(), DType.F32, backend, 64);
        var profiles = StepProfiler.Run(model, "test", 2, 8, 3);
        Assert.Equal(["decode", "score"], profiles.Select(p => p.Call));
        Assert.All(profiles, p => Assert.Equal(3, p.Calls));
        Assert.Contains(profiles[0].Ops, o => o.Op == ForwardProfile.Name(ForwardOp.Sampling));
        Assert.DoesNotContain(profiles[0].Ops, o => o.Op == ForwardProfile.Name(ForwardOp.LogSoftmaxGather));
        Assert.Contains(profiles[1].Ops, o => o.Op == ForwardProfile.Name(ForwardOp.LogSoftmaxGather));
        Assert.Null(model.Profile);
        Assert.Equal(0, model.Cache.UsedBlocks);
    }
}
