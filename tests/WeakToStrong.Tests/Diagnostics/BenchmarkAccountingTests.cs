using WeakToStrong.Backends.Cpu;
using System.Text.Json;
using WeakToStrong.Diagnostics;
using WeakToStrong.Engine;
using WeakToStrong.Tests.Cli;

namespace WeakToStrong.Tests.Diagnostics;

/// <summary>What the benchmarks count (FLOPs per token) and what `w2s bench` reports.</summary>
[Trait("Category", "Integration")]
public class BenchmarkAccountingTests
{
    [Fact]
    public void MatmulWeightsAreThePublishedParameterCountsLessEmbeddingsNormsAndBiases()
    {
        // gpt2: 124,439,808 parameters (Hugging Face model card); not multiplied per token: wpe 1024·768, and per
        // layer 2 LayerNorms (2·2·768) + biases (2304 + 768 + 3072 + 768), plus ln_f (2·768). The tied wte is lm_head.
        long gpt2Other = 1024L * 768 + 12L * (4 * 768 + 2304 + 768 + 3072 + 768) + 2 * 768;
        Assert.Equal(124_439_808L - gpt2Other, EngineBenchmark.MatmulWeights(SyntheticModel.Gpt2Small()));
        // gpt2-large: 774,030,080 parameters; the same parts left out at 36 layers × 1280.
        long gpt2LargeOther = 1024L * 1280 + 36L * (4 * 1280 + 3840 + 1280 + 5120 + 1280) + 2 * 1280;
        Assert.Equal(774_030_080L - gpt2LargeOther, EngineBenchmark.MatmulWeights(SyntheticModel.Gpt2Large()));
        // Llama-3-8B: 8,030,261,248 parameters; not multiplied: the (untied) input embedding and the RMSNorm weights.
        long llamaOther = 128_256L * 4096 + 32L * 2 * 4096 + 4096;
        Assert.Equal(8_030_261_248L - llamaOther, EngineBenchmark.MatmulWeights(SyntheticModel.Llama3_8B()));
    }

    [Fact]
    public void ComputePeakCountsEveryCoresMultiplyAdds()
    {
        // 12 chains of 8-wide (256-bit) or 16-wide (512-bit) FMAs, 2 FLOP each, per iteration on every core.
        Assert.Equal(12L * 8 * 2 * Environment.ProcessorCount * 1000, ComputePeak.FlopsPerPass(1000, CpuIsa.Avx2));
        Assert.Equal(12L * 16 * 2 * Environment.ProcessorCount * 1000, ComputePeak.FlopsPerPass(1000, CpuIsa.Avx512));
        Assert.Equal(ComputePeak.FlopsPerPass(1000, CpuIsas.Widest), ComputePeak.FlopsPerPass(1000));
        foreach (var isa in CpuIsas.Supported) Assert.InRange(ComputePeak.MeasureFma(2_000_000, 2, isa), 1e9, 1e13);
    }

    [Fact]
    public void BenchReportsDecodeAgainstTheCeilingsItMeasured()
    {
        var r = CliRunner.Run("bench", "--dtypes", "bf16", "--batches", "1,2", "--steps", "2", "--prompt-tokens", "4", "--json");
        Assert.True(r.ExitCode == 0, r.Stderr);
        using var doc = JsonDocument.Parse(r.Stdout);
        var results = doc.RootElement.GetProperty("results").EnumerateArray().ToList();
        Assert.Equal(["prefill", "decode", "prefill", "decode"], results.Select(x => x.GetProperty("phase").GetString()));
        double flopsPerToken = 2.0 * EngineBenchmark.MatmulWeights(SyntheticModel.Gpt2Small());
        foreach (var x in results.Where(x => x.GetProperty("phase").GetString() == "decode"))
        {
            double tokensPerSecond = x.GetProperty("tokens_per_second").GetDouble();
            double gflops = x.GetProperty("gigaflops").GetDouble();
            Assert.Equal(tokensPerSecond * flopsPerToken / 1e9, gflops, gflops * 1e-9);
            double weightsGbps = x.GetProperty("weight_gigabytes_per_second").GetDouble();
            double bandwidth = x.GetProperty("bandwidth_gigabytes_per_second").GetDouble();
            Assert.True(bandwidth > 0, "bandwidth measured");
            Assert.Equal(weightsGbps / bandwidth, x.GetProperty("fraction_of_bandwidth").GetDouble(), 1e-9);
            double peak = x.GetProperty("compute_gigaflops").GetDouble();
            Assert.True(peak > 0, "FMA peak measured on the cpu backend");
            Assert.Equal(gflops / peak, x.GetProperty("fraction_of_compute").GetDouble(), 1e-9);
        }
        var speedup = doc.RootElement.GetProperty("decode_speedups").EnumerateArray().Single();
        Assert.Equal(2, speedup.GetProperty("batch").GetInt32());
        // Batch 2's decode tokens/s over batch 1's, both reported above.
        double Decode(int batch) => results.Single(x => x.GetProperty("phase").GetString() == "decode" && x.GetProperty("batch").GetInt32() == batch).GetProperty("tokens_per_second").GetDouble();
        double ratio = Decode(2) / Decode(1);
        Assert.Equal(ratio, speedup.GetProperty("speedup_vs_batch1").GetDouble(), ratio * 1e-12);
    }
}
