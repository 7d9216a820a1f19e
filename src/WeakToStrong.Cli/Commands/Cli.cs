using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using WeakToStrong.Chat;
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
        InvalidSettingException s => OptionNames.Describe(s),
        OperationCanceledException => "cancelled",
        IOException or UnauthorizedAccessException => e.Message,
        NotSupportedException => e.Message,
        // Anything else is a check the CLI missed; its whole message, on one line, says where.
        _ => $"{e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}",
    };

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

    /// <summary>
    /// The conversation in an OpenAI messages array; an error is a usage error naming <paramref name="where"/> (the
    /// option or file:line) and the message's field.
    /// </summary>
    public static ChatConversation Conversation(JsonElement messages, string where)
    {
        try
        {
            return OpenAiMessages.Parse(messages);
        }
        catch (JsonFieldException e)
        {
            throw new UsageException($"{where}: {e.Message}");
        }
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
