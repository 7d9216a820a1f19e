using System.Diagnostics;
using System.Text.Json.Nodes;
using WeakToStrong.Checkpoints;
using WeakToStrong.Engine;

namespace WeakToStrong.Tests.Checkpoints;

/// <summary>A model folder that does not fit its config is refused naming the file and the tensor or config field.</summary>
[Trait("Category", "Unit")]
public sealed class ModelLoadingTests
{
    private static void Load(string directory) => LanguageModel.Load(directory).Dispose();

    /// <summary>Sets (or, for a null value, removes) top-level fields of a JSON file.</summary>
    internal static void EditJson(string path, params (string Field, string? Json)[] edits)
    {
        var root = JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        foreach (var (field, json) in edits)
        {
            if (json is null) root.Remove(field);
            else root[field] = JsonNode.Parse(json);
        }
        File.WriteAllText(path, root.ToJsonString());
    }

    /// <summary>Rewrites a fixture copy's model.safetensors through <paramref name="edit"/>.</summary>
    internal static string RewriteTensors(TempDirectory temp, Func<List<RawTensor>, IEnumerable<RawTensor>> edit)
    {
        string path = temp.File_("model.safetensors");
        var tensors = edit(SafeTensorsWriter.Read(path)).ToList();
        File.Delete(path);
        SafeTensorsWriter.Write(path, tensors);
        return path;
    }

    [Theory]
    [InlineData("llama-tiny", "model.layers.1.mlp.down_proj.weight")]
    [InlineData("llama-tiny", "lm_head.weight")]
    [InlineData("llama-tiny", "model.norm.weight")]
    [InlineData("qwen2-small", "model.layers.0.self_attn.k_proj.bias")]
    [InlineData("gpt2-tiny", "transformer.h.1.ln_2.bias")]
    [InlineData("gpt2-tiny", "transformer.wpe.weight")]
    [InlineData("gpt2-tiny", "transformer.wte.weight")]
    public void MissingRequiredTensorIsNamed(string fixture, string tensor)
    {
        using var temp = TestPaths.Temp().WithFixture(fixture);
        string path = RewriteTensors(temp, ts => ts.Where(t => t.Name != tensor));
        CheckpointAssert.Throws(() => Load(temp.Path), path, tensor, "missing");
    }

    [Theory]
    [InlineData("llama-tiny", "model.layers.0.self_attn.k_proj.weight", new long[] { 64, 32 }, "[32, 64]")]
    [InlineData("llama-tiny", "model.embed_tokens.weight", new long[] { 256, 128 }, "[512, 64]")]
    [InlineData("llama-tiny", "model.layers.1.input_layernorm.weight", new long[] { 1, 64 }, "[64]")]
    [InlineData("gpt2-tiny", "transformer.h.0.attn.c_attn.weight", new long[] { 96, 32 }, "[32, 96]")]
    public void TensorWithTheWrongShapeIsNamed(string fixture, string tensor, long[] shape, string expected)
    {
        using var temp = TestPaths.Temp().WithFixture(fixture);
        string path = RewriteTensors(temp, ts => ts.Select(t => t.Name == tensor ? t with { Shape = shape } : t));
        CheckpointAssert.Throws(() => Load(temp.Path), path, tensor, "shape", "[" + string.Join(", ", shape) + "]", expected);
    }

    /// <summary>llama31-small is F32; the tensor keeps its shape and gets the bytes its new dtype needs.</summary>
    [Theory]
    [InlineData("model.layers.0.self_attn.q_proj.weight", "I32", 4)]
    [InlineData("lm_head.weight", "I32", 4)]
    [InlineData("model.layers.1.mlp.up_proj.weight", "F64", 8)]
    [InlineData("model.layers.1.input_layernorm.weight", "U8", 1)]
    [InlineData("model.norm.weight", "I16", 2)]
    public void UnsupportedWeightDTypeIsNamed(string tensor, string dtype, int elementSize)
    {
        using var temp = TestPaths.Temp().WithFixture("llama31-small");
        string path = RewriteTensors(temp, ts => ts.Select(t => t.Name != tensor ? t
            : t with { DType = dtype, Data = [.. t.Data.Concat(t.Data).Take(t.Data.Length / 4 * elementSize)] }));
        CheckpointAssert.Throws(() => Load(temp.Path), path, tensor, dtype, "F32, F16, BF16");
    }

    [Fact]
    public void UnsupportedModelTypeListsTheSupportedOnes()
    {
        using var temp = TestPaths.Temp().WithFixture("llama-tiny");
        string config = temp.File_("config.json");
        EditJson(config, ("model_type", "\"bert\""));
        CheckpointAssert.Throws(() => Load(temp.Path), config, "model_type", "'bert'", "gpt2, llama, mistral, qwen2");
    }

    [Theory]
    [InlineData("llama-tiny", "model_type", null, "missing")]
    [InlineData("llama-tiny", "model_type", "7", "string")]
    [InlineData("llama-tiny", "hidden_size", null, "missing")]
    [InlineData("llama-tiny", "hidden_size", "\"64\"", "integer")]
    [InlineData("llama-tiny", "hidden_size", "64.5", "integer")]
    [InlineData("llama-tiny", "hidden_size", "-64", "positive")]
    [InlineData("llama-tiny", "vocab_size", "[512]", "integer")]
    [InlineData("llama-tiny", "vocab_size", "4294967296", "integer")]
    [InlineData("llama-tiny", "num_attention_heads", "0", "positive")]
    [InlineData("llama-tiny", "num_attention_heads", "6", "divisible")]
    [InlineData("llama-tiny", "num_key_value_heads", "3", "divide")]
    [InlineData("llama-tiny", "head_dim", "15", "even")]
    [InlineData("llama-tiny", "hidden_act", "\"gelu\"", "not supported")]
    [InlineData("llama-tiny", "rms_norm_eps", "\"small\"", "number")]
    [InlineData("llama-tiny", "rms_norm_eps", "1e999", "number")]
    [InlineData("llama-tiny", "rope_theta", "-10000", "positive")]
    [InlineData("llama-tiny", "rope_theta", "0", "positive")]
    [InlineData("llama-tiny", "tie_word_embeddings", "1", "true or false")]
    [InlineData("llama-tiny", "max_position_embeddings", null, "missing")]
    [InlineData("llama31-small", "rope_scaling", "5", "object")]
    [InlineData("gpt2-tiny", "n_embd", "true", "integer")]
    [InlineData("gpt2-tiny", "n_inner", "-128", "positive")]
    [InlineData("gpt2-tiny", "n_positions", "0", "positive")]
    [InlineData("gpt2-tiny", "activation_function", "\"relu\"", "not supported")]
    [InlineData("gpt2-tiny", "scale_attn_by_inverse_layer_idx", "true", "not supported")]
    public void BadConfigFieldIsNamed(string fixture, string field, string? json, string phrase)
    {
        using var temp = TestPaths.Temp().WithFixture(fixture);
        string config = temp.File_("config.json");
        EditJson(config, (field, json));
        CheckpointAssert.Throws(() => Load(temp.Path), config, field, phrase);
    }

    [Fact]
    public void WidthNotDivisibleByTheHeadCountNamesTheHeadCount()
    {
        using var temp = TestPaths.Temp().WithFixture("gpt2-tiny");
        string config = temp.File_("config.json");
        EditJson(config, ("n_embd", "30"));
        CheckpointAssert.Throws(() => Load(temp.Path), config, "n_head", "n_embd 30", "divisible");
    }

    [Theory]
    [InlineData("{\"rope_type\":\"yarn\",\"factor\":4.0}", "rope_scaling.rope_type", "yarn")]
    [InlineData("{\"rope_type\":\"linear\"}", "rope_scaling.factor", "missing")]
    [InlineData("{\"rope_type\":\"linear\",\"factor\":0}", "rope_scaling.factor", "positive")]
    [InlineData("{\"rope_type\":\"llama3\",\"factor\":4.0,\"low_freq_factor\":4.0,\"high_freq_factor\":1.0,\"original_max_position_embeddings\":32}", "rope_scaling.high_freq_factor", "exceed")]
    [InlineData("{\"rope_type\":\"llama3\",\"factor\":4.0,\"low_freq_factor\":0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":32}", "rope_scaling.low_freq_factor", "positive")]
    [InlineData("{\"rope_type\":\"llama3\",\"factor\":-4.0,\"low_freq_factor\":1.0,\"high_freq_factor\":4.0,\"original_max_position_embeddings\":32}", "rope_scaling.factor", "positive")]
    public void BadRopeScalingFieldIsNamed(string scaling, string field, string phrase)
    {
        using var temp = TestPaths.Temp().WithFixture("llama31-small");
        string config = temp.File_("config.json");
        EditJson(config, ("rope_scaling", scaling));
        CheckpointAssert.Throws(() => Load(temp.Path), config, field, phrase);
    }

    [Fact]
    public void HugeLayerCountFailsOnTheFirstMissingLayerWithoutAllocatingForAllLayers()
    {
        using var temp = TestPaths.Temp().WithFixture("llama-tiny");
        EditJson(temp.File_("config.json"), ("num_hidden_layers", "2000000000"));
        long allocatedBefore = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        CheckpointAssert.Throws(() => Load(temp.Path), temp.File_("model.safetensors"), "model.layers.2.input_layernorm.weight", "missing");
        long allocated = GC.GetAllocatedBytesForCurrentThread() - allocatedBefore;
        Assert.True(allocated < 64 << 20, $"loading allocated {allocated} bytes");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"loading took {clock.Elapsed}");
    }

    [Fact]
    public void MissingConfigIsNamed()
    {
        using var temp = TestPaths.Temp().WithFixture("llama-tiny");
        File.Delete(temp.File_("config.json"));
        CheckpointAssert.Throws(() => Load(temp.Path), temp.File_("config.json"), null, "not found");
    }

    [Theory]
    [InlineData("{\"model_type\": \"llama\",")]
    [InlineData("")]
    [InlineData("{'model_type': 'llama'}")]
    public void ConfigThatIsNotJsonIsNamed(string text)
    {
        using var temp = TestPaths.Temp().WithFixture("llama-tiny");
        File.WriteAllText(temp.File_("config.json"), text);
        CheckpointAssert.Throws(() => Load(temp.Path), temp.File_("config.json"), null, "JSON");
    }

    [Fact]
    public void ConfigWithInvalidUtf8IsNamed()
    {
        using var temp = TestPaths.Temp().WithFixture("llama-tiny");
        string config = temp.File_("config.json");
        byte[] bytes = File.ReadAllBytes(config);
        bytes[bytes.AsSpan().IndexOf("\"llama\""u8) + 1] = 0xFF; // 0xFF never appears in UTF-8
        File.WriteAllBytes(config, bytes);
        CheckpointAssert.Throws(() => Load(temp.Path), config, null, "UTF-8");
    }

    [Fact]
    public void ConfigStringWithALoneSurrogateEscapeIsNamed()
    {
        using var temp = TestPaths.Temp().WithFixture("llama-tiny");
        string config = temp.File_("config.json");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\"llama\"", "\"\\ud800\"", StringComparison.Ordinal));
        CheckpointAssert.Throws(() => Load(temp.Path), config, "model_type", "Unicode");
    }

    [Fact]
    public void ConfigThatIsNotAnObjectIsNamed()
    {
        using var temp = TestPaths.Temp().WithFixture("llama-tiny");
        File.WriteAllText(temp.File_("config.json"), "[1, 2, 3]");
        CheckpointAssert.Throws(() => Load(temp.Path), temp.File_("config.json"), null, "not a JSON object");
    }

    [Fact]
    public void ConfigThatCannotBeReadIsNamed()
    {
        using var temp = TestPaths.Temp().WithFixture("llama-tiny");
        using var exclusive = new FileStream(temp.File_("config.json"), FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        CheckpointAssert.Throws(() => Load(temp.Path), temp.File_("config.json"), null, "cannot be read");
    }

    [Fact]
    public void MissingModelFolderIsNamed()
    {
        using var temp = TestPaths.Temp();
        string missing = Path.Combine(temp.Path, "no-such-model");
        CheckpointAssert.Throws(() => Load(missing), missing, null, "not found");
    }

    [Fact]
    public void FolderWithoutSafeTensorsIsNamed()
    {
        using var temp = TestPaths.Temp().WithFixture("llama-tiny");
        File.Delete(temp.File_("model.safetensors"));
        CheckpointAssert.Throws(() => Load(temp.Path), temp.Path, null, "model.safetensors");
    }

    [Fact]
    public void ModelFileThatCannotBeReadIsNamed()
    {
        using var temp = TestPaths.Temp().WithFixture("llama-tiny");
        using var exclusive = new FileStream(temp.File_("model.safetensors"), FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        CheckpointAssert.Throws(() => Load(temp.Path), temp.File_("model.safetensors"), null, "cannot be read");
    }
}
