using System.Buffers.Binary;
using System.Text.Json;

// random-checkpoint --shape gpt2-large|tinyllama|gpt2-tiny --dtype f32|f16|bf16 --out DIR
// Writes DIR/config.json and DIR/model.safetensors (weights ~ U(−0.02, 0.02), norm weights 1, biases 0), streaming the
// data so that memory stays small whatever the size. The folder has no tokenizer: the benchmark feeds token ids.

var options = new Dictionary<string, string>();
for (int i = 0; i + 1 < args.Length; i += 2) options[args[i].TrimStart('-')] = args[i + 1];
if (!options.TryGetValue("shape", out string? shape) || !options.TryGetValue("out", out string? output))
{
    Console.Error.WriteLine("usage: random-checkpoint --shape gpt2-large|tinyllama|gpt2-tiny [--dtype f32|f16|bf16] --out DIR");
    return 2;
}
string dtype = options.GetValueOrDefault("dtype", shape == "tinyllama" ? "bf16" : "f32").ToUpperInvariant();
if (dtype is not ("F32" or "F16" or "BF16"))
{
    Console.Error.WriteLine($"--dtype: '{dtype}' is not f32, f16 or bf16");
    return 2;
}

var (config, tensors) = shape switch
{
    "gpt2-large" => Gpt2(vocab: 50257, dim: 1280, layers: 36, heads: 20, positions: 1024),
    "gpt2-tiny" => Gpt2(vocab: 1000, dim: 64, layers: 2, heads: 4, positions: 128),
    "tinyllama" => Llama(vocab: 32000, dim: 2048, layers: 22, heads: 32, kvHeads: 4, ff: 5632, positions: 2048),
    _ => throw new ArgumentException($"--shape: unknown shape '{shape}' (gpt2-large, tinyllama, gpt2-tiny)"),
};
Directory.CreateDirectory(output);
File.WriteAllBytes(Path.Combine(output, "config.json"), config);
WriteSafeTensors(Path.Combine(output, "model.safetensors"), tensors, dtype);
Console.WriteLine($"{output}: {tensors.Sum(t => t.Shape.Aggregate(1L, (a, b) => a * b)):N0} parameters in {dtype}, {new FileInfo(Path.Combine(output, "model.safetensors")).Length:N0} bytes");
return 0;

static byte[] Json(Action<Utf8JsonWriter> write)
{
    using var stream = new MemoryStream();
    using (var writer = new Utf8JsonWriter(stream)) write(writer);
    return stream.ToArray();
}

static (byte[], List<Tensor>) Gpt2(int vocab, int dim, int layers, int heads, int positions)
{
    var t = new List<Tensor> { new("transformer.wte.weight", [vocab, dim], Fill.Random), new("transformer.wpe.weight", [positions, dim], Fill.Random) };
    for (int l = 0; l < layers; l++)
    {
        string p = $"transformer.h.{l}.";
        t.AddRange([
            new(p + "ln_1.weight", [dim], Fill.One), new(p + "ln_1.bias", [dim], Fill.Zero),
            new(p + "attn.c_attn.weight", [dim, 3 * dim], Fill.Random), new(p + "attn.c_attn.bias", [3 * dim], Fill.Zero),
            new(p + "attn.c_proj.weight", [dim, dim], Fill.Random), new(p + "attn.c_proj.bias", [dim], Fill.Zero),
            new(p + "ln_2.weight", [dim], Fill.One), new(p + "ln_2.bias", [dim], Fill.Zero),
            new(p + "mlp.c_fc.weight", [dim, 4 * dim], Fill.Random), new(p + "mlp.c_fc.bias", [4 * dim], Fill.Zero),
            new(p + "mlp.c_proj.weight", [4 * dim, dim], Fill.Random), new(p + "mlp.c_proj.bias", [dim], Fill.Zero),
        ]);
    }
    t.AddRange([new("transformer.ln_f.weight", [dim], Fill.One), new("transformer.ln_f.bias", [dim], Fill.Zero)]);
    var config = Json(w =>
    {
        w.WriteStartObject();
        w.WriteString("model_type", "gpt2");
        w.WriteString("activation_function", "gelu_new");
        w.WriteNumber("n_embd", dim);
        w.WriteNumber("n_head", heads);
        w.WriteNumber("n_layer", layers);
        w.WriteNumber("n_positions", positions);
        w.WriteNumber("vocab_size", vocab);
        w.WriteNumber("layer_norm_epsilon", 1e-5);
        w.WriteNumber("eos_token_id", vocab - 1);
        w.WriteNumber("bos_token_id", vocab - 1);
        w.WriteEndObject();
    });
    return (config, t);
}

static (byte[], List<Tensor>) Llama(int vocab, int dim, int layers, int heads, int kvHeads, int ff, int positions)
{
    int kv = dim / heads * kvHeads;
    var t = new List<Tensor> { new("model.embed_tokens.weight", [vocab, dim], Fill.Random) };
    for (int l = 0; l < layers; l++)
    {
        string p = $"model.layers.{l}.";
        t.AddRange([
            new(p + "input_layernorm.weight", [dim], Fill.One),
            new(p + "self_attn.q_proj.weight", [dim, dim], Fill.Random), new(p + "self_attn.k_proj.weight", [kv, dim], Fill.Random),
            new(p + "self_attn.v_proj.weight", [kv, dim], Fill.Random), new(p + "self_attn.o_proj.weight", [dim, dim], Fill.Random),
            new(p + "post_attention_layernorm.weight", [dim], Fill.One),
            new(p + "mlp.gate_proj.weight", [ff, dim], Fill.Random), new(p + "mlp.up_proj.weight", [ff, dim], Fill.Random),
            new(p + "mlp.down_proj.weight", [dim, ff], Fill.Random),
        ]);
    }
    t.AddRange([new("model.norm.weight", [dim], Fill.One), new("lm_head.weight", [vocab, dim], Fill.Random)]);
    var config = Json(w =>
    {
        w.WriteStartObject();
        w.WriteString("model_type", "llama");
        w.WriteString("hidden_act", "silu");
        w.WriteNumber("hidden_size", dim);
        w.WriteNumber("intermediate_size", ff);
        w.WriteNumber("num_attention_heads", heads);
        w.WriteNumber("num_key_value_heads", kvHeads);
        w.WriteNumber("num_hidden_layers", layers);
        w.WriteNumber("max_position_embeddings", positions);
        w.WriteNumber("vocab_size", vocab);
        w.WriteNumber("rms_norm_eps", 1e-5);
        w.WriteNumber("rope_theta", 10000.0);
        w.WriteBoolean("tie_word_embeddings", false);
        w.WriteNumber("bos_token_id", 1);
        w.WriteNumber("eos_token_id", 2);
        w.WriteEndObject();
    });
    return (config, t);
}

static void WriteSafeTensors(string path, List<Tensor> tensors, string dtype)
{
    int size = dtype == "F32" ? 4 : 2;
    long offset = 0;
    var header = Json(w =>
    {
        w.WriteStartObject();
        foreach (var t in tensors)
        {
            long bytes = t.Shape.Aggregate(1L, (a, b) => a * b) * size;
            w.WriteStartObject(t.Name);
            w.WriteString("dtype", dtype);
            w.WriteStartArray("shape");
            foreach (long d in t.Shape) w.WriteNumberValue(d);
            w.WriteEndArray();
            w.WriteStartArray("data_offsets");
            w.WriteNumberValue(offset);
            w.WriteNumberValue(offset + bytes);
            w.WriteEndArray();
            w.WriteEndObject();
            offset += bytes;
        }
        w.WriteEndObject();
    });
    int padded = (header.Length + 7) / 8 * 8;
    using var file = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
    Span<byte> prefix = stackalloc byte[8];
    BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)padded);
    file.Write(prefix);
    file.Write(header);
    for (int i = header.Length; i < padded; i++) file.WriteByte((byte)' ');
    var buffer = new byte[4 << 20];
    ulong state = 0x9E3779B97F4A7C15UL;
    foreach (var t in tensors)
    {
        long count = t.Shape.Aggregate(1L, (a, b) => a * b);
        for (long done = 0; done < count;)
        {
            int n = (int)Math.Min(buffer.Length / size, count - done);
            for (int i = 0; i < n; i++)
            {
                float v = t.Fill switch
                {
                    Fill.One => 1f,
                    Fill.Zero => 0f,
                    _ => Next(ref state),
                };
                switch (size)
                {
                    case 4:
                        BinaryPrimitives.WriteSingleLittleEndian(buffer.AsSpan(4 * i), v);
                        break;
                    default:
                        if (dtype == "F16") BinaryPrimitives.WriteHalfLittleEndian(buffer.AsSpan(2 * i), (Half)v);
                        else BinaryPrimitives.WriteUInt16LittleEndian(buffer.AsSpan(2 * i), (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16));
                        break;
                }
            }
            file.Write(buffer, 0, n * size);
            done += n;
        }
    }
}

// xorshift64*: uniform in (−0.02, 0.02).
static float Next(ref ulong state)
{
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return ((state * 0x2545F4914F6CDD1DUL >> 40) / (float)(1 << 24) - 0.5f) * 0.04f;
}

enum Fill { Random, One, Zero }

sealed record Tensor(string Name, long[] Shape, Fill Fill);
