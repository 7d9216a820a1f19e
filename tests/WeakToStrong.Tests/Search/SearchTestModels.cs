using System.Text;
using System.Text.Json;
using WeakToStrong.Chat;
using WeakToStrong.Engine;
using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;
using WeakToStrong.Tokenization;

namespace WeakToStrong.Tests.Search;

/// <summary>
/// Writes GPT-2-shaped checkpoints with seeded random weights next to gpt2-tiny's real tokenizer files, so that
/// tests have a large model and a small pair with one vocabulary (and llama-tiny for another).
/// </summary>
internal static class SearchTestModels
{
    /// <summary>Writes a GPT-2 model folder; weights ~ N(0, σ) from <paramref name="seed"/>, norms at 1 ± noise.</summary>
    /// <param name="onlyTokens">When given, the model draws (almost) only these tokens, about uniformly: the final
    /// norm outputs a constant vector (weight 0, bias all ones) whose dot product with these tokens' embedding rows
    /// (all ones) beats every random row's by more than 30.</param>
    public static string WriteGpt2(string root, string name, int seed, int dim = 32, int layers = 2, int positions = 256, float embeddingStd = 0.3f,
        IReadOnlyCollection<int>? onlyTokens = null)
    {
        string dir = Path.Combine(root, name);
        Directory.CreateDirectory(dir);
        foreach (string file in new[] { "vocab.json", "merges.txt", "tokenizer_config.json", "generation_config.json" })
            File.Copy(Path.Combine(TestPaths.Fixture("gpt2-tiny"), file), Path.Combine(dir, file));
        const int vocab = 50257;
        var random = new Random(seed);
        var tensors = new List<(string Name, int[] Shape, float[] Data)>();
        void Add(string n, float std, float mean, params int[] shape)
        {
            var data = new float[shape.Aggregate(1, (a, b) => a * b)];
            for (int i = 0; i < data.Length; i++) data[i] = mean + std * Gaussian(random);
            tensors.Add((n, shape, data));
        }
        Add("transformer.wte.weight", embeddingStd, 0, vocab, dim);
        Add("transformer.wpe.weight", 0.1f, 0, positions, dim);
        for (int l = 0; l < layers; l++)
        {
            string p = $"transformer.h.{l}.";
            Add(p + "ln_1.weight", 0.1f, 1, dim);
            Add(p + "ln_1.bias", 0.05f, 0, dim);
            Add(p + "attn.c_attn.weight", 0.2f, 0, dim, 3 * dim);
            Add(p + "attn.c_attn.bias", 0.05f, 0, 3 * dim);
            Add(p + "attn.c_proj.weight", 0.2f, 0, dim, dim);
            Add(p + "attn.c_proj.bias", 0.05f, 0, dim);
            Add(p + "ln_2.weight", 0.1f, 1, dim);
            Add(p + "ln_2.bias", 0.05f, 0, dim);
            Add(p + "mlp.c_fc.weight", 0.2f, 0, dim, 4 * dim);
            Add(p + "mlp.c_fc.bias", 0.05f, 0, 4 * dim);
            Add(p + "mlp.c_proj.weight", 0.1f, 0, 4 * dim, dim);
            Add(p + "mlp.c_proj.bias", 0.05f, 0, dim);
        }
        Add("transformer.ln_f.weight", 0.1f, onlyTokens is null ? 1 : 0, dim);
        Add("transformer.ln_f.bias", 0.05f, 0, dim);
        if (onlyTokens is not null)
        {
            Array.Fill(tensors[^1].Data, 1f);
            Array.Clear(tensors[^2].Data);
            var wte = tensors[0].Data;
            foreach (int token in onlyTokens) Array.Fill(wte, 1f, token * dim, dim);
        }
        WriteSafeTensors(Path.Combine(dir, "model.safetensors"), tensors);
        var config = new Dictionary<string, object?>
        {
            ["architectures"] = new[] { "GPT2LMHeadModel" },
            ["model_type"] = "gpt2",
            ["activation_function"] = "gelu_new",
            ["bos_token_id"] = 50256,
            ["eos_token_id"] = 50256,
            ["layer_norm_epsilon"] = 1e-5,
            ["n_embd"] = dim,
            ["n_head"] = 4,
            ["n_inner"] = null,
            ["n_layer"] = layers,
            ["n_positions"] = positions,
            ["vocab_size"] = vocab,
        };
        File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(config));
        return dir;
    }

    /// <summary>safetensors: 8-byte little-endian header length, JSON header, raw little-endian data.</summary>
    private static void WriteSafeTensors(string path, List<(string Name, int[] Shape, float[] Data)> tensors)
    {
        var header = new Dictionary<string, object>();
        long offset = 0;
        foreach (var (name, shape, data) in tensors)
        {
            long bytes = data.Length * 4L;
            header[name] = new { dtype = "F32", shape, data_offsets = new[] { offset, offset + bytes } };
            offset += bytes;
        }
        byte[] json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int padded = (json.Length + 7) / 8 * 8;
        using var stream = File.Create(path);
        using var writer = new BinaryWriter(stream);
        writer.Write((ulong)padded);
        writer.Write(json);
        for (int i = json.Length; i < padded; i++) writer.Write((byte)' ');
        foreach (var (_, _, data) in tensors)
            foreach (float x in data) writer.Write(x);
    }

    private static float Gaussian(Random random)
    {
        double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
        return (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
    }
}

/// <summary>
/// The models the search tests share (tests of one class run one after another): a GPT-2-vocabulary large model
/// and small pair with random weights, and llama-tiny, whose SentencePiece vocabulary differs.
/// </summary>
public sealed class SearchModelsFixture : IDisposable
{
    private readonly TempDirectory _folder = TestPaths.Temp();

    public SearchModelsFixture()
    {
        var options = new ModelOptions { KvBlocks = 1024 };
        LargeDirectory = SearchTestModels.WriteGpt2(_folder.Path, "large", seed: 11, dim: 48, layers: 3);
        TunedDirectory = SearchTestModels.WriteGpt2(_folder.Path, "tuned", seed: 22);
        UntunedDirectory = SearchTestModels.WriteGpt2(_folder.Path, "untuned", seed: 33);
        Large = ChatModel.Load(LargeDirectory, options);
        Tuned = ChatModel.Load(TunedDirectory, options);
        Untuned = ChatModel.Load(UntunedDirectory, options);
        Llama = ChatModel.Load(TestPaths.Fixture("llama-tiny"), options);
    }

    public string LargeDirectory { get; }

    public string TunedDirectory { get; }

    public string UntunedDirectory { get; }

    /// <summary>A scratch folder deleted with the fixture.</summary>
    public string Folder => _folder.Path;

    /// <summary>GPT-2 vocabulary, 3 layers, width 48.</summary>
    public ChatModel Large { get; }

    /// <summary>GPT-2 vocabulary, 2 layers, width 32.</summary>
    public ChatModel Tuned { get; }

    public ChatModel Untuned { get; }

    /// <summary>llama-tiny: SentencePiece vocabulary of 512, BOS added.</summary>
    public ChatModel Llama { get; }

    public SearchContext Context(ChatModel large, ChatModel tuned, ChatModel untuned) => new(new LocalLargeModel(large), tuned, untuned);

    public void Dispose()
    {
        Large.Dispose();
        Tuned.Dispose();
        Untuned.Dispose();
        Llama.Dispose();
        _folder.Dispose();
    }
}

/// <summary>Scores a response the way the issue defines it, with the engine's plain scoring call and the tokenizer alone.</summary>
internal static class IndependentScore
{
    /// <summary>
    /// log π(response | prompt) for a model without a chat template: when the large model shares the vocabulary,
    /// its response tokens follow the prompt's tokens; otherwise prompt + text is tokenized in one call and the
    /// response is what follows the longest common prefix with the prompt's own tokens. A finished response ends
    /// with the model's EOS.
    /// </summary>
    public static double LogProb(ChatModel model, string prompt, string text, IReadOnlyList<int>? sameVocabularyTokens, bool finished)
    {
        TextTokenizer tokenizer = model.Tokenizer;
        var bos = tokenizer.AddBosToken ? new[] { tokenizer.BosTokenId!.Value } : [];
        var promptTokens = bos.Concat(tokenizer.Encode(prompt)).ToList();
        List<int> continuation;
        if (sameVocabularyTokens is not null)
        {
            continuation = [.. sameVocabularyTokens];
        }
        else
        {
            var joint = bos.Concat(tokenizer.Encode(prompt + text)).ToList();
            int common = 0;
            while (common < promptTokens.Count && common < joint.Count && promptTokens[common] == joint[common]) common++;
            continuation = joint.Skip(common).ToList();
            promptTokens = joint.Take(common).ToList();
        }
        int eos = tokenizer.EosTokenId!.Value;
        if (finished && (continuation.Count == 0 || continuation[^1] != eos)) continuation.Add(eos);
        return model.Model!.Score(promptTokens, continuation).Sum(x => (double)x);
    }

    /// <summary>
    /// score = log π_tuned − log π_untuned. <paramref name="tokens"/> (the large model's) are used as they are for
    /// a small model with the large model's vocabulary, unless null (the text was cut inside a token).
    /// </summary>
    public static double Score(ChatModel large, ChatModel tuned, ChatModel untuned, string prompt, string text, IReadOnlyList<int>? tokens, bool finished)
    {
        IReadOnlyList<int>? Same(ChatModel small) => tokens is not null && large.Tokenizer.HasSameVocabulary(small.Tokenizer) ? tokens : null;
        return LogProb(tuned, prompt, text, Same(tuned), finished) - LogProb(untuned, prompt, text, Same(untuned), finished);
    }
}
