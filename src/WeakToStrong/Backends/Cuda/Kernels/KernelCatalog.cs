namespace WeakToStrong.Backends.Cuda.Kernels;

/// <summary>One kernel file and the <c>extern "C"</c> kernels it defines.</summary>
internal sealed record KernelModule(string File, IReadOnlyList<string> Kernels);

/// <summary>
/// The kernel registry: op family → module file in <c>kernels/</c> → function names. Every name launched by the
/// backend is listed here; the compile check and the emulator tests verify that each file defines exactly these.
/// </summary>
internal static class KernelCatalog
{
    /// <summary>The shared header every module includes (handed to NVRTC as an include).</summary>
    public const string Header = "common.cuh";

    public const string EmbedF32 = "embed_f32", EmbedBf16 = "embed_bf16", EmbedF16 = "embed_f16";
    public const string AddRmsNorm = "add_rms_norm_f32", AddLayerNorm = "add_layer_norm_f32";
    public const string LinearF32 = "linear_f32", LinearBf16 = "linear_bf16", LinearF16 = "linear_f16";
    public const string RopeKvWrite = "rope_kv_write_f32";
    public const string AttentionPrefill = "attention_prefill_f32", AttentionDecode = "attention_decode_f32", AttentionCombine = "attention_combine_f32";
    public const string GeluTanh = "gelu_tanh_f32", SiluGate = "silu_gate_f32";
    public const string LogProbGather = "logprob_gather_f32";
    public const string ArgMax = "argmax_f32", Sample = "sample_f32";
    public const string GatherRows = "gather_rows_f32", CopyBlock = "copy_block_f32";
    public const string ConvertBf16 = "convert_f32_bf16", ConvertF16 = "convert_f32_f16", WidenBf16 = "widen_bf16_f32", WidenF16 = "widen_f16_f32";
    public const string AddBias = "add_bias_f32";

    public static IReadOnlyList<KernelModule> Modules { get; } =
    [
        new("embed.cu", [EmbedF32, EmbedBf16, EmbedF16]),
        new("norm.cu", [AddRmsNorm, AddLayerNorm]),
        new("linear.cu", [LinearF32, LinearBf16, LinearF16]),
        new("rope.cu", [RopeKvWrite]),
        new("attention.cu", [AttentionPrefill, AttentionDecode, AttentionCombine]),
        new("activation.cu", [GeluTanh, SiluGate]),
        new("logprob.cu", [LogProbGather]),
        new("sample.cu", [ArgMax, Sample]),
        new("copy.cu", [GatherRows, CopyBlock, ConvertBf16, ConvertF16, WidenBf16, WidenF16, AddBias]),
    ];

    private static readonly Dictionary<string, KernelModule> ByKernel =
        Modules.SelectMany(m => m.Kernels.Select(k => (k, m))).ToDictionary(p => p.k, p => p.m);

    /// <summary>The module defining <paramref name="kernel"/>.</summary>
    public static KernelModule ModuleOf(string kernel) =>
        ByKernel.TryGetValue(kernel, out var module) ? module : throw new ArgumentException($"no kernel named '{kernel}' in the catalog", nameof(kernel));

    public static IEnumerable<string> AllKernels => Modules.SelectMany(m => m.Kernels);

    /// <summary>The kernel of a family for a weight type, e.g. (embed_, BF16) → embed_bf16.</summary>
    public static string ForWeights(string f32, string bf16, string f16, DType dtype) => dtype switch
    {
        DType.F32 => f32,
        DType.BF16 => bf16,
        DType.F16 => f16,
        _ => throw new ArgumentException($"weights of type {dtype} are not supported", nameof(dtype)),
    };
}
