using System.Buffers.Binary;
using System.Text.Json.Nodes;
using WeakToStrong.Backends;
using WeakToStrong.Backends.Cuda;
using WeakToStrong.Engine;
using WeakToStrong.Tests.Checkpoints;
using WeakToStrong.Tests.Cuda;

namespace WeakToStrong.Tests.Engine;

/// <summary>
/// A model stored in F16 or BF16 and the same weights widened exactly to F32 must give the same log-probs and
/// greedy tokens (compute is F32 in both), for every family and every tensor role alone in the narrow dtype, and
/// for files that mix dtypes; on the CPU backend and the emulated CUDA backend. This is the class of test that
/// catches a narrow tensor read as if it were F32 (GPT-2's F16 position table did) without Hugging Face.
/// </summary>
[Trait("Category", "Integration")]
public class NarrowDTypeTests
{
    /// <summary>Per-token log-probs agree to float rounding (the arithmetic is the same F32 on both sides).</summary>
    private static readonly Tolerance LogProbs = new(1e-5, 1e-5);

    public enum Role
    {
        TokenEmbedding,
        PositionEmbedding,
        Norms,
        FusedLinears,
        SeparateLinears,
        Biases,
        LmHead,

        /// <summary>Every group of tensors in one of F32, F16, BF16 in turn (fused parts share one).</summary>
        Mixed,
    }

    /// <summary>The family's fixture, with GPT-2's vocabulary cut to 512 rows so that the emulator runs it quickly.</summary>
    private static readonly Dictionary<string, string> Families = new()
    {
        ["gpt2"] = "gpt2-tiny",          // tied head, Conv1D, learned positions, biases everywhere
        ["llama"] = "llama31-small",     // untied head, llama3 rope scaling
        ["mistral"] = "llama-tiny",      // as model_type mistral, stored BF16
        ["qwen2"] = "qwen2-small",       // tied head, q/k/v bias, stored F16
    };

    private static bool InRole(string name, Role role)
    {
        bool norm = name.Contains("norm") || name.Contains(".ln_");
        bool fused = name.Contains("c_attn") || name.Contains("q_proj") || name.Contains("k_proj") || name.Contains("v_proj")
            || name.Contains("gate_proj") || name.Contains("up_proj");
        bool separate = name.Contains("c_proj") || name.Contains("c_fc") || name.Contains("o_proj") || name.Contains("down_proj");
        return role switch
        {
            Role.TokenEmbedding => name.EndsWith("wte.weight") || name.EndsWith("embed_tokens.weight"),
            Role.PositionEmbedding => name.EndsWith("wpe.weight"),
            Role.Norms => norm,
            Role.FusedLinears => fused && name.EndsWith(".weight"),
            Role.SeparateLinears => separate && name.EndsWith(".weight"),
            Role.Biases => !norm && name.EndsWith(".bias"),
            Role.LmHead => name == "lm_head.weight",
            _ => true,
        };
    }

    /// <summary>Tensors that the loader fuses (q|k|v, gate|up) share a group, hence one dtype in a mixed file.</summary>
    private static string Group(string name) =>
        name.Replace("q_proj", "qkv").Replace("k_proj", "qkv").Replace("v_proj", "qkv").Replace("gate_proj", "gateup").Replace("up_proj", "gateup");

    public static IEnumerable<object[]> Cases()
    {
        foreach (var (family, fixture) in Families)
        {
            var names = SafeTensorsWriter.Read(Path.Combine(TestPaths.Fixture(fixture), "model.safetensors")).Select(t => t.Name).ToList();
            foreach (var role in Enum.GetValues<Role>().Where(r => r != Role.Mixed))
                if (names.Any(n => InRole(n, role)))
                    foreach (string dtype in new[] { "F16", "BF16" })
                        yield return [family, role, dtype];
            yield return [family, Role.Mixed, "F32+F16+BF16"];
        }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void CpuNarrowEqualsExactF32Upcast(string family, Role role, string dtype) => AssertSame(family, role, dtype, () => null);

    [EmulatorTheory]
    [MemberData(nameof(Cases))]
    public void EmulatedCudaNarrowEqualsExactF32Upcast(string family, Role role, string dtype) =>
        AssertSame(family, role, dtype, () => new CudaBackend(new EmulatorRuntime(), new CudaBackendOptions()));

    /// <summary>The position table is what went wrong: pin that it loads as F32 whatever its stored dtype.</summary>
    [Theory]
    [InlineData("F16")]
    [InlineData("BF16")]
    public void NarrowPositionTableIsWidenedAtLoad(string dtype)
    {
        using var dir = TestPaths.Temp();
        var (narrow, _) = Write(dir, "gpt2", Role.PositionEmbedding, dtype);
        using var model = LanguageModel.Load(narrow, new ModelOptions { KvBlocks = 8 });
        Assert.Equal(DType.F32, model.Transformer.Weights.PositionEmbedding!.DType);
    }

    private static void AssertSame(string family, Role role, string dtype, Func<IBackend?> backend)
    {
        using var dir = TestPaths.Temp();
        var (narrow, wide) = Write(dir, family, role, dtype);
        using var device = backend();
        using var a = LanguageModel.Load(narrow, new ModelOptions { KvBlocks = 16 }, device);
        using var b = LanguageModel.Load(wide, new ModelOptions { KvBlocks = 16 }, device);
        var random = new Random(HashCode.Combine(family.Length, role, dtype.Length));
        int vocab = a.Spec.VocabSize;
        int[] prompt = Enumerable.Range(0, 5).Select(_ => random.Next(vocab)).ToArray();
        int[] continuation = Enumerable.Range(0, 11).Select(_ => random.Next(vocab)).ToArray();
        var ours = a.Score(prompt, continuation);
        var exact = b.Score(prompt, continuation);
        LogProbs.AssertClose(exact, ours, $"{family} {role} in {dtype} on {(device?.Name ?? "cpu")}");
        Assert.Equal(b.Generate(prompt, 3, SamplingSettings.Greedy), a.Generate(prompt, 3, SamplingSettings.Greedy));
    }

    /// <summary>
    /// Writes the fixture twice: with the role's tensors in <paramref name="dtype"/> (the rest exactly as F32), and
    /// with every tensor widened exactly to F32 from what the first file holds.
    /// </summary>
    private static (string Narrow, string Wide) Write(TempDirectory dir, string family, Role role, string dtype)
    {
        string fixture = Families[family];
        var tensors = SafeTensorsWriter.Read(Path.Combine(TestPaths.Fixture(fixture), "model.safetensors"));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixture(fixture), "config.json")))!.AsObject();
        if (family == "gpt2")
        {
            const int vocab = 512;
            tensors = tensors.Select(t => t.Name.EndsWith("wte.weight")
                ? t with { Shape = [vocab, t.Shape[1]], Data = t.Data[..(int)(vocab * t.Shape[1] * Size(t.DType))] }
                : t).ToList();
            config["vocab_size"] = vocab;
            config["bos_token_id"] = 0;
            config["eos_token_id"] = 0;
        }
        if (family == "mistral") config["model_type"] = "mistral";

        string[] cycle = ["F16", "BF16", "F32"];
        var groups = tensors.Select(t => Group(t.Name)).Distinct().ToList();
        var narrow = tensors.Select(t =>
        {
            string target = role == Role.Mixed ? cycle[groups.IndexOf(Group(t.Name)) % 3] : InRole(t.Name, role) ? dtype : "F32";
            return t with { DType = target, Data = Encode(Decode(t), target) };
        }).ToList();
        Assert.Contains(narrow, t => t.DType != "F32");
        var wide = narrow.Select(t => t with { DType = "F32", Data = Encode(Decode(t), "F32") }).ToList();

        string Folder(string name, List<RawTensor> content)
        {
            string path = Path.Combine(dir.Path, name);
            Directory.CreateDirectory(path);
            File.WriteAllText(Path.Combine(path, "config.json"), config.ToJsonString());
            SafeTensorsWriter.Write(Path.Combine(path, "model.safetensors"), content);
            return path;
        }
        return (Folder("narrow", narrow), Folder("wide", wide));
    }

    private static int Size(string dtype) => dtype == "F32" ? 4 : 2;

    private static float[] Decode(RawTensor t)
    {
        var values = new float[t.Data.Length / Size(t.DType)];
        for (int i = 0; i < values.Length; i++)
            values[i] = t.DType switch
            {
                "F32" => BinaryPrimitives.ReadSingleLittleEndian(t.Data.AsSpan(4 * i)),
                "F16" => (float)BinaryPrimitives.ReadHalfLittleEndian(t.Data.AsSpan(2 * i)),
                "BF16" => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(t.Data.AsSpan(2 * i)) << 16),
                _ => throw new ArgumentOutOfRangeException(nameof(t), t.DType, "not a float dtype"),
            };
        return values;
    }

    /// <summary>F16 and BF16 rounded to nearest even (the wide file is made from what this returns, so any rounding would do).</summary>
    private static byte[] Encode(float[] values, string dtype)
    {
        var bytes = new byte[values.Length * Size(dtype)];
        for (int i = 0; i < values.Length; i++)
        {
            switch (dtype)
            {
                case "F32":
                    BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), values[i]);
                    break;
                case "F16":
                    BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(2 * i), (Half)values[i]);
                    break;
                default:
                    uint u = BitConverter.SingleToUInt32Bits(values[i]);
                    BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2 * i), (ushort)((u + 0x7FFF + ((u >> 16) & 1)) >> 16));
                    break;
            }
        }
        return bytes;
    }
}
