using System.Runtime.InteropServices;
using WeakToStrong.Backends;
using WeakToStrong.Backends.Cpu;
using WeakToStrong.Engine;
using WeakToStrong.Engine.KvCache;

namespace WeakToStrong.Tests.CpuOps;

/// <summary>
/// Every vector path gives the same bits as the 256-bit path: each op on seeded random inputs, and whole forwards
/// of both model families (prefill, a ragged decode batch, scoring). Needs a CPU with more than one path; elsewhere
/// these are reported as skipped.
/// </summary>
[Trait("Category", "Unit")]
public class CpuPathEquivalenceTests
{
    private readonly CpuBackend _narrow = new(CpuIsa.Avx2);
    private readonly CpuBackend _wide;

    public CpuPathEquivalenceTests()
    {
        Skip.IfNot(CpuIsas.IsSupported(CpuIsa.Avx512), "this CPU has no avx512: only one path to compare");
        _wide = new CpuBackend(CpuIsa.Avx512);
    }

    private static float[] Random(int n, int seed, float scale = 1f)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (r.NextSingle() * 2 - 1) * scale).ToArray();
    }

    private static Tensor Upload(CpuBackend b, float[] values)
    {
        var t = b.Allocate(DType.F32, values.Length);
        b.Upload(t, MemoryMarshal.AsBytes(values.AsSpan()));
        return t;
    }

    private static float[] Download(CpuBackend b, Tensor t, int n)
    {
        var result = new float[n];
        b.Download(t, result);
        return result;
    }

    /// <summary>Runs <paramref name="op"/> on both paths and asserts the outputs are the same bits.</summary>
    private void SameBits(string what, Func<CpuBackend, float[]> op)
    {
        var narrow = op(_narrow);
        var wide = op(_wide);
        Assert.Equal(narrow.Length, wide.Length);
        for (int i = 0; i < narrow.Length; i++)
            if (BitConverter.SingleToInt32Bits(narrow[i]) != BitConverter.SingleToInt32Bits(wide[i]))
                Assert.Fail($"{what}: element {i} is {wide[i]:R} on avx512, {narrow[i]:R} on avx2");
    }

    public static IEnumerable<object[]> LinearCases()
    {
        foreach (var dtype in new[] { DType.F32, DType.BF16, DType.F16 })
            foreach (int tokens in new[] { 1, 2, 3, 4, 6, 7, 16, 17, 33, 64 })
                yield return [dtype, tokens];
    }

    [SkippableTheory]
    [MemberData(nameof(LinearCases))]
    public void LinearIsTheSameOnEveryPath(DType dtype, int tokens)
    {
        const int k = 77, n = 150; // odd k; nine full panels and a partial one (quad passes, then a remainder)
        var x = Random(tokens * k, 1);
        var w = Random(n * k, 2, 0.5f);
        var bias = Random(n, 3);
        var bytes = dtype switch
        {
            DType.F32 => MemoryMarshal.AsBytes(w.AsSpan()).ToArray(),
            DType.BF16 => MemoryMarshal.AsBytes(w.Select(v => (ushort)(BitConverter.SingleToInt32Bits(v) >> 16)).ToArray().AsSpan()).ToArray(),
            _ => MemoryMarshal.AsBytes(w.Select(v => (Half)v).ToArray().AsSpan()).ToArray(),
        };
        SameBits($"{dtype} linear, {tokens} tokens", b =>
        {
            using var weight = b.LoadLinear(bytes, dtype, n, k);
            using var xt = Upload(b, x);
            using var bt = Upload(b, bias);
            using var y = b.Allocate(DType.F32, tokens * n);
            b.Linear(xt, weight, bt, y, tokens, k, n);
            return Download(b, y, tokens * n);
        });
    }

    [SkippableTheory]
    [InlineData(NormKind.LayerNorm, 37)]
    [InlineData(NormKind.LayerNorm, 768)]
    [InlineData(NormKind.RmsNorm, 64)]
    [InlineData(NormKind.RmsNorm, 99)]
    public void AddNormIsTheSameOnEveryPath(NormKind kind, int dim)
    {
        const int rows = 5;
        var residual = Random(rows * dim, 6, 3f);
        var delta = Random(rows * dim, 7);
        var weight = Random(dim, 8);
        var bias = Random(dim, 9);
        SameBits($"{kind} {dim}", b =>
        {
            using var r = Upload(b, residual);
            using var d = Upload(b, delta);
            using var w = Upload(b, weight);
            using var bt = Upload(b, bias);
            using var y = b.Allocate(DType.F32, rows * dim);
            b.AddNorm(r, d, w, kind == NormKind.LayerNorm ? bt : null, y, rows, dim, kind, 1e-5f);
            return [.. Download(b, y, rows * dim), .. Download(b, r, rows * dim)];
        });
    }

    [SkippableTheory]
    [InlineData(4, 2, 8)]
    [InlineData(12, 12, 64)]
    [InlineData(8, 2, 40)]
    [InlineData(4, 4, 13)]
    public void AttentionIsTheSameOnEveryPath(int heads, int kvHeads, int headDim)
    {
        const int blockSize = 4, blocks = 64;
        int[] lengths = [5, 23, 1, 40];
        int[][] tables = [[7, 2], [0, 11, 5, 3, 9, 12], [8], [13, 14, 15, 16, 17, 18, 19, 20, 21, 22]];
        int maxBlocks = tables.Max(t => t.Length);
        int total = lengths.Sum(), width = (heads + 2 * kvHeads) * headDim;
        var qkv = Random(total * width, 10);
        var positions = lengths.SelectMany(l => Enumerable.Range(0, l)).ToArray();
        var owners = lengths.SelectMany((l, s) => Enumerable.Repeat(s, l)).ToArray();
        var slots = positions.Select((p, t) => tables[owners[t]][p / blockSize] * blockSize + p % blockSize).ToArray();
        var flat = tables.SelectMany(t => t.Concat(Enumerable.Repeat(-1, maxBlocks - t.Length))).ToArray();
        var layout = new BatchLayout { Tokens = new int[total], Positions = positions, TokenSequence = owners, SlotMapping = slots, BlockTables = flat, MaxBlocksPerSequence = maxBlocks };
        var geometry = new KvGeometry(1, blocks, blockSize, kvHeads, headDim);
        SameBits($"attention {heads}/{kvHeads}×{headDim}", b =>
        {
            using var kc = b.Allocate(DType.F32, geometry.LayerElements);
            using var vc = b.Allocate(DType.F32, geometry.LayerElements);
            using var q = Upload(b, qkv);
            using var o = b.Allocate(DType.F32, total * heads * headDim);
            b.RopeAndCacheWrite(layout, q, kc, vc, null, heads, kvHeads, headDim, blockSize);
            b.Attention(layout, q, kc, vc, o, heads, kvHeads, headDim, blockSize);
            return Download(b, o, total * heads * headDim);
        });
    }

    [SkippableFact]
    public void ActivationsAndLogProbsAreTheSameOnEveryPath()
    {
        var x = Random(20011, 12, 12f);
        SameBits("gelu", b =>
        {
            using var t = Upload(b, x);
            b.GeluTanh(t, x.Length);
            return Download(b, t, x.Length);
        });
        SameBits("silu gate", b =>
        {
            using var g = Upload(b, x[..(3 * 2 * 1001)]);
            using var y = b.Allocate(DType.F32, 3 * 1001);
            b.SiluGate(g, y, 3, 1001);
            return Download(b, y, 3 * 1001);
        });
        const int rows = 3, vocab = 50257;
        var logits = Random(rows * vocab, 11, 8f);
        SameBits("log-prob of targets", b =>
        {
            using var l = Upload(b, logits);
            var result = new float[rows];
            b.LogProbOfTargets(l, rows, vocab, [0, 12345, vocab - 1], result);
            return result;
        });
    }

    public static IEnumerable<object[]> Forwards()
    {
        foreach (var family in new[] { "gpt2", "llama" })
            foreach (var dtype in new[] { DType.F32, DType.BF16 })
                yield return [family, dtype];
    }

    /// <summary>A small model of each family: prefill of a ragged batch, then decode steps, scoring every fed token.</summary>
    [SkippableTheory]
    [MemberData(nameof(Forwards))]
    public void ForwardsAreTheSameOnEveryPath(string family, DType dtype)
    {
        var spec = family == "gpt2"
            ? SyntheticModel.Gpt2Small() with { VocabSize = 300, Dim = 96, Layers = 2, Heads = 3, KvHeads = 3, HeadDim = 32, FeedForwardDim = 384, MaxPositions = 128 }
            : SyntheticModel.Llama3_8B() with
            {
                VocabSize = 300, Dim = 128, Layers = 2, Heads = 4, KvHeads = 2, HeadDim = 32, FeedForwardDim = 200, MaxPositions = 128,
                Rope = new RopeTable(Enumerable.Range(0, 16).Select(i => 1.0 / Math.Pow(10000, 2.0 * i / 32)).ToArray()),
            };
        int[][] prompts = [[1, 5, 9, 200], [7], [3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 44], [299, 0, 150]];
        SameBits($"{family} {dtype} forward", b =>
        {
            using var model = SyntheticModel.Create(spec, dtype, b, kvBlocks: 64);
            var sequences = prompts.Select((p, i) => model.CreateSequence(p, (ulong)i)).ToList();
            var collected = new List<float>();
            var sampling = new SamplingSettings(0.8f);
            for (int step = 0; step < 6; step++)
            {
                var results = model.Forward(sequences.Select(s => new ForwardRequest(s, TargetLogProbs: true, LastLogits: true, Sampling: sampling)).ToList());
                for (int i = 0; i < sequences.Count; i++)
                {
                    collected.AddRange(results[i].TargetLogProbs);
                    collected.AddRange(results[i].LastLogits!);
                    collected.Add(results[i].SampledToken);
                    sequences[i].Append(results[i].SampledToken);
                }
            }
            sequences.ForEach(s => s.Dispose());
            return [.. collected];
        });
    }
}
