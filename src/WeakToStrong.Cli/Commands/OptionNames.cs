using WeakToStrong.Engine;
using WeakToStrong.Engine.KvCache;
using WeakToStrong.Search;

namespace WeakToStrong.Cli.Commands;

/// <summary>The command-line option behind each setting the library can refuse, and the error line that names it.</summary>
internal static class OptionNames
{
    /// <summary>
    /// The option each <see cref="SearchField"/> is set by. The prompt has none: it comes from --prompt, --messages
    /// or a prompt file, and the library's reason already says "the prompt".
    /// </summary>
    public static readonly IReadOnlyDictionary<SearchField, string?> Fields = new Dictionary<SearchField, string?>
    {
        [SearchField.Prompt] = null,
        [SearchField.History] = "--messages",
        [SearchField.Method] = "--method",
        [SearchField.BeamWidth] = "--beam-width",
        [SearchField.Successors] = "--successors",
        [SearchField.ChunkLength] = "--chunk-length",
        [SearchField.N] = "--n",
        [SearchField.Beta] = "--beta",
        [SearchField.Temperature] = "--temperature",
        [SearchField.TopK] = "--top-k",
        [SearchField.TopP] = "--top-p",
        [SearchField.MaxNewTokens] = "--max-new-tokens",
        [SearchField.StopStrings] = "--stop",
    };

    /// <summary>The option a KV budget comes from (<see cref="KvBudget.BlocksPerModel"/> blames <see cref="KvBudget.Bytes"/>).</summary>
    public const string KvMemory = "--kv-memory";

    /// <summary>The refusal as the CLI prints it: the option, then the library's reason.</summary>
    public static string Describe(InvalidSettingException e) => e switch
    {
        RequestValidationException { Field: var field } when Fields[field] is { } option => $"{option}: {e.Reason}",
        { ParamName: nameof(KvBudget.Bytes) } => $"{KvMemory}: {e.Reason}",
        _ => e.Reason,
    };
}
