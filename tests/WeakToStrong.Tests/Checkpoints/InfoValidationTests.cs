using WeakToStrong.Checkpoints;
using WeakToStrong.Engine;
using WeakToStrong.Tests.Cli;

namespace WeakToStrong.Tests.Checkpoints;

/// <summary>
/// <c>w2s info</c> runs the checks of loading without reading weights: every bad checkpoint that loading (and so
/// <c>w2s score</c>) refuses, info refuses with the same message; a good one it accepts.
/// </summary>
[Trait("Category", "Integration")]
public class InfoValidationTests
{
    private static Action<TempDirectory> Drop(string tensor) =>
        t => ModelLoadingTests.RewriteTensors(t, ts => ts.Where(x => x.Name != tensor));

    private static Action<TempDirectory> Reshape(string tensor, params long[] shape) =>
        t => ModelLoadingTests.RewriteTensors(t, ts => ts.Select(x => x.Name == tensor ? x with { Shape = shape } : x));

    /// <summary>The tensor keeps its shape and gets the bytes its new dtype needs (from an F32 fixture).</summary>
    private static Action<TempDirectory> Retype(string tensor, string dtype, int elementSize) =>
        t => ModelLoadingTests.RewriteTensors(t, ts => ts.Select(x => x.Name != tensor ? x
            : x with { DType = dtype, Data = [.. x.Data.Concat(x.Data).Take(x.Data.Length / 4 * elementSize)] }));

    private static Action<TempDirectory> Config(string field, string? json) =>
        t => ModelLoadingTests.EditJson(t.File_("config.json"), (field, json));

    /// <summary>Every kind of bad checkpoint the loading tests cover, by fixture: missing tensors, wrong shapes, unusable
    /// dtypes, fused parts of different dtypes, broken config fields, missing or broken files, a broken shard index.</summary>
    private static readonly Dictionary<string, (string Fixture, Action<TempDirectory> Break)> Cases = new()
    {
        ["missing down_proj"] = ("llama-tiny", Drop("model.layers.1.mlp.down_proj.weight")),
        ["missing lm_head"] = ("llama-tiny", Drop("lm_head.weight")),
        ["missing final norm"] = ("llama-tiny", Drop("model.norm.weight")),
        ["missing k bias"] = ("qwen2-small", Drop("model.layers.0.self_attn.k_proj.bias")),
        ["missing ln_2 bias"] = ("gpt2-tiny", Drop("transformer.h.1.ln_2.bias")),
        ["missing wpe"] = ("gpt2-tiny", Drop("transformer.wpe.weight")),
        ["missing wte"] = ("gpt2-tiny", Drop("transformer.wte.weight")),
        ["missing c_fc"] = ("gpt2-tiny", Drop("transformer.h.0.mlp.c_fc.weight")),
        ["shape k_proj"] = ("llama-tiny", Reshape("model.layers.0.self_attn.k_proj.weight", 64, 32)),
        ["shape embedding"] = ("llama-tiny", Reshape("model.embed_tokens.weight", 256, 128)),
        ["shape norm"] = ("llama-tiny", Reshape("model.layers.1.input_layernorm.weight", 1, 64)),
        ["shape c_attn"] = ("gpt2-tiny", Reshape("transformer.h.0.attn.c_attn.weight", 96, 32)),
        ["shape wpe"] = ("gpt2-tiny", Reshape("transformer.wpe.weight", 64, 128)),
        ["dtype q_proj I32"] = ("llama31-small", Retype("model.layers.0.self_attn.q_proj.weight", "I32", 4)),
        ["dtype lm_head I32"] = ("llama31-small", Retype("lm_head.weight", "I32", 4)),
        ["dtype up_proj F64"] = ("llama31-small", Retype("model.layers.1.mlp.up_proj.weight", "F64", 8)),
        ["dtype norm U8"] = ("llama31-small", Retype("model.layers.1.input_layernorm.weight", "U8", 1)),
        ["fused dtypes differ"] = ("llama31-small", Retype("model.layers.0.self_attn.v_proj.weight", "F16", 2)),
        ["config heads"] = ("llama-tiny", Config("num_attention_heads", "6")),
        ["config kv heads"] = ("llama-tiny", Config("num_key_value_heads", "3")),
        ["config model_type"] = ("llama-tiny", Config("model_type", "\"bert\"")),
        ["config layers"] = ("llama-tiny", Config("num_hidden_layers", "3")),
        ["config vocab"] = ("gpt2-tiny", Config("vocab_size", "50000")),
        ["config activation"] = ("gpt2-tiny", Config("activation_function", "\"relu\"")),
        ["no config"] = ("llama-tiny", t => File.Delete(t.File_("config.json"))),
        ["no weights"] = ("llama-tiny", t => File.Delete(t.File_("model.safetensors"))),
        ["truncated weights"] = ("llama-tiny", t =>
        {
            byte[] bytes = File.ReadAllBytes(t.File_("model.safetensors"));
            File.WriteAllBytes(t.File_("model.safetensors"), bytes[..(bytes.Length - 100)]);
        }),
        ["shard lacks a tensor"] = ("llama31-small", t =>
        {
            var map = ShardedCheckpointTests.Shard(t, 3, seed: 5);
            var (tensor, shard) = map.First(m => m.Tensor.EndsWith("o_proj.weight", StringComparison.Ordinal));
            string path = t.File_(shard);
            var kept = SafeTensorsWriter.Read(path).Where(x => x.Name != tensor).ToList();
            File.Delete(path);
            SafeTensorsWriter.Write(path, kept);
        }),
        ["sharded index lacks a tensor"] = ("llama31-small", t =>
        {
            var map = ShardedCheckpointTests.Shard(t, 2, seed: 6);
            string index = t.File_("model.safetensors.index.json");
            SafeTensorsWriter.WriteIndex(index, map.Where(m => m.Tensor != "model.layers.1.mlp.gate_proj.weight"), totalSize: 1);
        }),
    };

    public static IEnumerable<object[]> CaseNames => Cases.Keys.Select(k => new object[] { k });

    private static TempDirectory Broken(string name)
    {
        var (fixture, breakIt) = Cases[name];
        var temp = TestPaths.Temp().WithFixture(fixture);
        breakIt(temp);
        return temp;
    }

    /// <summary>What <c>w2s info</c> runs.</summary>
    private static void Info(string directory)
    {
        using var checkpoint = Checkpoint.Open(directory);
        ModelWeights.Validate(checkpoint);
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void InfoRefusesWhatLoadingRefusesWithTheSameMessage(string name)
    {
        using var temp = Broken(name);
        var load = Assert.Throws<CheckpointException>(() => LanguageModel.Load(temp.Path, new ModelOptions { KvBlocks = 4 }).Dispose());
        var info = Assert.Throws<CheckpointException>(() => Info(temp.Path));
        Assert.Equal(load.Message, info.Message);
    }

    /// <summary>Good folders pass, and validating allocates a small fraction of what the weights take (no copies).</summary>
    [Theory]
    [MemberData(nameof(TestPaths.FixtureNames), MemberType = typeof(TestPaths))]
    public void ValidationAcceptsGoodFoldersWithoutCopyingWeights(string fixture)
    {
        string folder = TestPaths.Fixture(fixture);
        using var checkpoint = Checkpoint.Open(folder);
        long before = GC.GetAllocatedBytesForCurrentThread();
        ModelWeights.Validate(checkpoint);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        long weights = new FileInfo(Path.Combine(folder, "model.safetensors")).Length;
        Assert.True(allocated < weights / 8, $"validation allocated {allocated} bytes for {weights} bytes of weights");
    }

    /// <summary>The CLI: <c>w2s info</c>, <c>w2s score</c> and <c>w2s bench --load</c> print the same one line and
    /// exit code for every case.</summary>
    [Theory]
    [MemberData(nameof(CaseNames))]
    public void CliInfoAndScoreRefuseAlike(string name)
    {
        using var temp = Broken(name);
        RefuseAlike(temp.Path);
    }

    /// <summary>A folder that does not exist, or a file given as the folder, is named as the folder, not as a raw IO error.</summary>
    [Theory]
    [InlineData("/nonexistent")]
    [InlineData("/nonexistent/deeper/model")]
    [InlineData("/etc/hostname")]
    public void CliRefusesAMissingFolderAlike(string folder)
    {
        var info = RefuseAlike(folder);
        Assert.Equal($"error: {folder}: model folder not found", info.Stderr.TrimEnd());
    }

    private static CliResult RefuseAlike(string folder)
    {
        var info = CliRunner.Run("info", "--model", folder);
        var score = CliRunner.Run("score", "--model", folder, "--prompt-tokens", "1,2", "--continuation-tokens", "3");
        var bench = CliRunner.Run("bench", "--load", folder);
        Assert.NotEqual(0, score.ExitCode);
        Assert.Equal(score.ExitCode, info.ExitCode);
        Assert.Equal(score.ExitCode, bench.ExitCode);
        Assert.Equal("", info.Stdout);
        Assert.Equal("", bench.Stdout);
        Assert.StartsWith("error: ", info.Stderr);
        Assert.Single(info.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal(score.Stderr, info.Stderr);
        Assert.Equal(info.Stderr, bench.Stderr);
        return info;
    }
}
