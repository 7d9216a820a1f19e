using System.Text.Json;
using System.Text.Unicode;
using WeakToStrong.Backends;

namespace WeakToStrong.Checkpoints;

/// <summary>Reads <c>config.json</c> (and <c>generation_config.json</c>) into a <see cref="ModelSpec"/>.</summary>
public static class ModelConfig
{
    public static readonly IReadOnlyList<string> SupportedModelTypes = ["gpt2", "llama", "mistral", "qwen2"];

    /// <summary>Parses the config files of a model folder.</summary>
    public static ModelSpec Load(string modelDirectory)
    {
        string path = Path.Combine(modelDirectory, "config.json");
        if (!File.Exists(path)) throw new CheckpointException(path, null, "file not found (a Hugging Face model folder needs config.json)");
        using var document = ParseJsonFile(path);
        if (document.RootElement.ValueKind != JsonValueKind.Object) throw new CheckpointException(path, null, "not a JSON object");
        var reader = new FieldReader(path, document.RootElement);

        string modelType = reader.String("model_type");
        var spec = modelType switch
        {
            "gpt2" => Gpt2(reader),
            "llama" or "mistral" or "qwen2" => LlamaLike(reader, modelType),
            _ => throw new CheckpointException(path, "model_type", $"unsupported model_type '{modelType}'; supported: {string.Join(", ", SupportedModelTypes)}"),
        };

        var eos = new List<int>();
        int? bos = reader.OptionalInt("bos_token_id");
        string generationPath = Path.Combine(modelDirectory, "generation_config.json");
        if (File.Exists(generationPath))
        {
            using var generation = ParseJsonFile(generationPath);
            if (generation.RootElement.ValueKind != JsonValueKind.Object) throw new CheckpointException(generationPath, null, "not a JSON object");
            var generationReader = new FieldReader(generationPath, generation.RootElement);
            AddEosIds(generationReader, spec.VocabSize, eos);
            bos ??= generationReader.OptionalInt("bos_token_id");
        }
        AddEosIds(reader, spec.VocabSize, eos);

        return spec with { EosTokenIds = eos, BosTokenId = bos };
    }

    /// <summary>Adds a file's eos_token_id (int or list) to <paramref name="eos"/>, checked against the vocabulary.</summary>
    private static void AddEosIds(FieldReader reader, int vocabSize, List<int> eos)
    {
        foreach (int id in reader.IntOrIntList("eos_token_id"))
        {
            if (id < 0 || id >= vocabSize) throw reader.Error("eos_token_id", $"id {id} is outside the vocabulary (size {vocabSize})");
            if (!eos.Contains(id)) eos.Add(id);
        }
    }

    /// <summary>Reads and parses a JSON file; unreadable files, invalid UTF-8 and invalid JSON all name the file.</summary>
    internal static JsonDocument ParseJsonFile(string path)
    {
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CheckpointException(path, null, $"cannot be read ({e.Message})", e);
        }
        // System.Text.Json validates UTF-8 inside strings only in GetString (InvalidOperationException).
        if (!Utf8.IsValid(bytes)) throw new CheckpointException(path, null, "not valid UTF-8");
        try
        {
            return JsonDocument.Parse(bytes);
        }
        catch (JsonException e)
        {
            throw new CheckpointException(path, null, $"not valid JSON ({e.Message})", e);
        }
    }

    private static ModelSpec Gpt2(FieldReader r)
    {
        int dim = r.PositiveInt("n_embd");
        int heads = r.PositiveInt("n_head");
        if (dim % heads != 0) throw r.Error("n_head", $"n_embd {dim} is not divisible by n_head {heads}");
        string activation = r.OptionalString("activation_function") ?? "gelu_new";
        if (activation is not ("gelu_new" or "gelu_pytorch_tanh" or "gelu_fast"))
            throw r.Error("activation_function", $"'{activation}' is not supported (gelu_new, gelu_pytorch_tanh)");
        if (r.OptionalBool("scale_attn_by_inverse_layer_idx") == true)
            throw r.Error("scale_attn_by_inverse_layer_idx", "true is not supported");
        if (r.OptionalBool("scale_attn_weights") == false)
            throw r.Error("scale_attn_weights", "false is not supported");
        return new ModelSpec
        {
            Family = "gpt2",
            VocabSize = r.PositiveInt("vocab_size"),
            Dim = dim,
            Layers = r.PositiveInt("n_layer"),
            Heads = heads,
            KvHeads = heads,
            HeadDim = dim / heads,
            FeedForwardDim = r.OptionalPositiveInt("n_inner") ?? 4 * dim,
            MaxPositions = r.OptionalPositiveInt("n_positions") ?? r.PositiveInt("n_ctx"),
            Norm = NormKind.LayerNorm,
            NormEps = (float)(r.OptionalDouble("layer_norm_epsilon") ?? 1e-5),
            Mlp = MlpKind.GeluTanh,
            Positions = PositionKind.Learned,
            QkvBias = true,
            OutputBias = true,
            MlpBias = true,
            TiedEmbeddings = r.OptionalBool("tie_word_embeddings") ?? true,
            EosTokenIds = [],
        };
    }

    private static ModelSpec LlamaLike(FieldReader r, string family)
    {
        int dim = r.PositiveInt("hidden_size");
        int heads = r.PositiveInt("num_attention_heads");
        int kvHeads = r.OptionalInt("num_key_value_heads") ?? heads;
        if (kvHeads <= 0 || heads % kvHeads != 0)
            throw r.Error("num_key_value_heads", $"{kvHeads} does not divide num_attention_heads {heads}");
        int headDim = r.OptionalInt("head_dim") ?? (dim % heads == 0 ? dim / heads : throw r.Error("num_attention_heads", $"hidden_size {dim} is not divisible by {heads}"));
        if (headDim <= 0 || headDim % 2 != 0) throw r.Error("head_dim", $"{headDim} must be a positive even number for rotary embedding");
        string activation = r.OptionalString("hidden_act") ?? "silu";
        if (activation != "silu") throw r.Error("hidden_act", $"'{activation}' is not supported (silu)");
        int maxPositions = r.PositiveInt("max_position_embeddings");
        if (family == "mistral" && r.OptionalPositiveInt("sliding_window") is int window && window < maxPositions)
            maxPositions = window; // attention is exact up to the window; we refuse longer contexts instead of approximating
        if (family == "qwen2" && r.OptionalBool("use_sliding_window") == true && r.OptionalPositiveInt("sliding_window") is int qwenWindow && qwenWindow < maxPositions)
            maxPositions = qwenWindow;

        double theta = r.OptionalPositiveDouble("rope_theta") ?? 10000.0;
        var inverse = new double[headDim / 2];
        for (int i = 0; i < inverse.Length; i++) inverse[i] = 1.0 / Math.Pow(theta, 2.0 * i / headDim);
        ApplyRopeScaling(r, inverse);

        return new ModelSpec
        {
            Family = family,
            VocabSize = r.PositiveInt("vocab_size"),
            Dim = dim,
            Layers = r.PositiveInt("num_hidden_layers"),
            Heads = heads,
            KvHeads = kvHeads,
            HeadDim = headDim,
            FeedForwardDim = r.PositiveInt("intermediate_size"),
            MaxPositions = maxPositions,
            Norm = NormKind.RmsNorm,
            NormEps = (float)(r.OptionalDouble("rms_norm_eps") ?? 1e-6),
            Mlp = MlpKind.SiluGated,
            Positions = PositionKind.Rotary,
            Rope = new RopeTable(inverse),
            QkvBias = family == "qwen2" || (r.OptionalBool("attention_bias") ?? false),
            OutputBias = family != "qwen2" && (r.OptionalBool("attention_bias") ?? false),
            MlpBias = r.OptionalBool("mlp_bias") ?? false,
            TiedEmbeddings = r.OptionalBool("tie_word_embeddings") ?? false,
            EosTokenIds = [],
        };
    }

    /// <summary>HF's rope_scaling: none, "linear", or "llama3" (changes every frequency, not only past the original context).</summary>
    private static void ApplyRopeScaling(FieldReader r, double[] inverse)
    {
        if (!r.Root.TryGetProperty("rope_scaling", out var scaling) || scaling.ValueKind == JsonValueKind.Null) return;
        if (scaling.ValueKind != JsonValueKind.Object) throw r.Error("rope_scaling", "must be an object or null");
        var s = new FieldReader(r.Path, scaling, "rope_scaling.");
        string type = s.OptionalString("rope_type") ?? s.OptionalString("type") ?? "default";
        switch (type)
        {
            case "default":
                return;
            case "linear":
            {
                double factor = s.PositiveDouble("factor");
                for (int i = 0; i < inverse.Length; i++) inverse[i] /= factor;
                return;
            }
            case "llama3":
            {
                double factor = s.PositiveDouble("factor");
                double low = s.PositiveDouble("low_freq_factor");
                double high = s.PositiveDouble("high_freq_factor");
                double original = s.PositiveDouble("original_max_position_embeddings");
                if (high <= low) throw s.Error("high_freq_factor", $"must exceed low_freq_factor ({high} ≤ {low})");
                double lowWavelength = original / low;
                double highWavelength = original / high;
                for (int i = 0; i < inverse.Length; i++)
                {
                    double wavelength = 2 * Math.PI / inverse[i];
                    if (wavelength < highWavelength) continue;
                    if (wavelength > lowWavelength) { inverse[i] /= factor; continue; }
                    double smooth = (original / wavelength - low) / (high - low);
                    inverse[i] = (1 - smooth) * inverse[i] / factor + smooth * inverse[i];
                }
                return;
            }
            default:
                throw s.Error("rope_type", $"'{type}' is not supported (default, linear, llama3)");
        }
    }

    /// <summary>Typed access to config fields; every failure names the file and the field.</summary>
    internal sealed class FieldReader(string path, JsonElement root, string prefix = "")
    {
        public string Path { get; } = path;
        public JsonElement Root { get; } = root;

        public CheckpointException Error(string field, string problem) => new(Path, prefix + field, problem);

        private JsonElement? Get(string field) =>
            Root.ValueKind == JsonValueKind.Object && Root.TryGetProperty(field, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

        public string String(string field) => OptionalString(field) ?? throw Error(field, "missing");

        public string? OptionalString(string field)
        {
            if (Get(field) is not { } value) return null;
            if (value.ValueKind != JsonValueKind.String) throw Error(field, "must be a string");
            try
            {
                return value.GetString();
            }
            catch (InvalidOperationException e)
            {
                // An escaped lone surrogate ("\ud800") is valid JSON but cannot become a .NET string.
                throw new CheckpointException(Path, prefix + field, $"is not valid Unicode ({e.Message})", e);
            }
        }

        public int PositiveInt(string field) => OptionalPositiveInt(field) ?? throw Error(field, "missing");

        public int? OptionalPositiveInt(string field) => OptionalInt(field) switch
        {
            null => null,
            > 0 and int value => value,
            int value => throw Error(field, $"must be positive, got {value}"),
        };

        public int? OptionalInt(string field) => Get(field) switch
        {
            null => null,
            { ValueKind: JsonValueKind.Number } v when v.TryGetInt32(out int i) => i,
            _ => throw Error(field, "must be an integer"),
        };

        public double PositiveDouble(string field) => OptionalPositiveDouble(field) ?? throw Error(field, "missing");

        public double? OptionalPositiveDouble(string field) => OptionalDouble(field) switch
        {
            null => null,
            > 0 and double value => value,
            double value => throw Error(field, $"must be positive, got {value}"),
        };

        /// <summary>A finite number; JSON allows 1e999, which parses to infinity.</summary>
        public double? OptionalDouble(string field) => Get(field) switch
        {
            null => null,
            { ValueKind: JsonValueKind.Number } v when v.TryGetDouble(out double d) && double.IsFinite(d) => d,
            _ => throw Error(field, "must be a finite number"),
        };

        public bool? OptionalBool(string field) => Get(field) switch
        {
            null => null,
            { ValueKind: JsonValueKind.True } => true,
            { ValueKind: JsonValueKind.False } => false,
            _ => throw Error(field, "must be true or false"),
        };

        public IEnumerable<int> IntOrIntList(string field)
        {
            var value = Get(field);
            if (value is null) return [];
            if (value.Value.ValueKind == JsonValueKind.Number) return [OptionalInt(field)!.Value];
            if (value.Value.ValueKind != JsonValueKind.Array) throw Error(field, "must be an integer or a list of integers");
            return value.Value.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.Number && e.TryGetInt32(out int i) ? i : throw Error(field, "must be an integer or a list of integers")).ToList();
        }
    }
}
