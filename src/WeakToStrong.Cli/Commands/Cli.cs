using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using WeakToStrong.Cli.Json;
using WeakToStrong.Checkpoints;
using WeakToStrong.Engine;
using WeakToStrong.Engine.KvCache;
using WeakToStrong.Tokenization;

namespace WeakToStrong.Cli.Commands;

/// <summary>Options and plumbing shared by the commands.</summary>
internal static class Cli
{
    public static Option<string> Model(string name = "--model", string description = "Hugging Face model folder") =>
        new(name) { Description = description, Required = true };

    public static Option<string> Device() => new("--device") { Description = "cpu (default) or cuda", DefaultValueFactory = _ => "cpu" };

    public static Option<bool> Json() => new("--json") { Description = "machine-readable JSON output" };

    /// <summary>Writes one JSON document to stdout through the source-generated metadata in <see cref="CliJson"/>.</summary>
    public static void WriteJson<T>(T value, JsonTypeInfo<T> type) => Console.Out.WriteLine(JsonSerializer.Serialize(value, type));

    /// <summary>
    /// Runs a command body: any failure becomes one line on stderr and exit code 1 (2 for bad usage), never a
    /// stack trace (set W2S_DEBUG=1 to see one).
    /// </summary>
    public static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Console.Error.WriteLine("error: " + Describe(e));
            if (Environment.GetEnvironmentVariable("W2S_DEBUG") == "1") Console.Error.WriteLine(e);
            return e is UsageException or ArgumentException ? 2 : 1;
        }
    }

    private static string Describe(Exception e) => e switch
    {
        CheckpointException or TokenizerException or UsageException or KvCacheExhaustedException => e.Message,
        WeakToStrong.Backends.Cuda.Interop.CudaUnavailableException => "--device cuda cannot run here: " + e.Message,
        ArgumentException a => WithoutParameterSuffix(a),
        OperationCanceledException => "cancelled",
        IOException or UnauthorizedAccessException => e.Message,
        NotSupportedException => e.Message,
        _ => $"{e.GetType().Name}: {e.Message}",
    };

    /// <summary>ArgumentException appends "(Parameter 'x')" and "Actual value was …" lines; keep our sentence only.</summary>
    private static string WithoutParameterSuffix(ArgumentException e)
    {
        string message = e.Message.Split('\n')[0];
        int at = message.IndexOf(" (Parameter '", StringComparison.Ordinal);
        return at >= 0 ? message[..at] : message;
    }

    /// <summary>"1,2,3" → [1, 2, 3]; a bad entry names the option.</summary>
    public static int[] ParseTokens(string text, string option)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var result = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!int.TryParse(parts[i], out result[i]) || result[i] < 0)
                throw new UsageException($"{option}: '{parts[i]}' is not a token id (expected comma-separated non-negative integers)");
        return result;
    }

    /// <summary>Exactly one of a text option and a token option must be given.</summary>
    public static int[] TextOrTokens(string? text, string? tokens, string textOption, string tokensOption, Func<TextTokenizer> tokenizer, bool addBos, bool allowEmpty)
    {
        if ((text is null) == (tokens is null)) throw new UsageException($"give exactly one of {textOption} and {tokensOption}");
        int[] ids = tokens is not null ? ParseTokens(tokens, tokensOption) : [.. tokenizer().Encode(text!, addBos)];
        if (ids.Length == 0 && !allowEmpty) throw new UsageException($"{(text is not null ? textOption : tokensOption)} gives no tokens");
        return ids;
    }

    /// <summary>The value of --kv-memory (e.g. 512MiB, 2GB) as a budget; null when the option is absent.</summary>
    public static KvBudget? KvMemory(string? text)
    {
        if (text is null) return null;
        if (!ByteSize.TryParse(text, out var size, out string? error)) throw new UsageException($"--kv-memory: {error}");
        if (size.Bytes < 1) throw new UsageException($"--kv-memory: '{text}' is not a positive size");
        return KvBudget.FromBytes(size.Bytes);
    }

    public static TextTokenizer LoadTokenizer(string modelDirectory)
    {
        try
        {
            return TextTokenizer.Load(modelDirectory);
        }
        catch (TokenizerException e)
        {
            throw new UsageException($"{e.Message}; pass token ids with --prompt-tokens/--continuation-tokens instead");
        }
    }
}

/// <summary>Bad command-line usage (exit code 2).</summary>
internal sealed class UsageException(string message) : Exception(message);
