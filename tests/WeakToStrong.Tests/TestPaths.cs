using System.Text.Json;

namespace WeakToStrong.Tests;

internal static class TestPaths
{
    public static string Fixtures { get; } = Path.Combine(AppContext.BaseDirectory, "TestData", "fixtures");

    public static string Fixture(string name) => Path.Combine(Fixtures, name);

    public static IEnumerable<object[]> FixtureNames => new[] { "gpt2-tiny", "llama-tiny", "llama31-small", "qwen2-small" }.Select(n => new object[] { n });

    /// <summary>A fresh temporary folder, deleted with the returned handle.</summary>
    public static TempDirectory Temp() => new();
}

internal sealed class TempDirectory : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "w2s-test-" + Guid.NewGuid().ToString("N"));

    public TempDirectory() => Directory.CreateDirectory(Path);

    /// <summary>Copies a fixture's files into this folder (writable copies).</summary>
    public TempDirectory WithFixture(string name)
    {
        foreach (var f in Directory.GetFiles(TestPaths.Fixture(name)))
        {
            string destination = System.IO.Path.Combine(Path, System.IO.Path.GetFileName(f));
            File.Copy(f, destination);
            File.SetAttributes(destination, FileAttributes.Normal);
        }
        return this;
    }

    public string File_(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        try { Directory.Delete(Path, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>The golden values written by Hugging Face transformers (see TestData/fixtures/README.md).</summary>
internal sealed record GoldenCase(int[] PromptTokens, int[] ContinuationTokens, double[] ContinuationLogprobs, int[] GreedyTokens, double GreedyMinMargin)
{
    public static IReadOnlyList<GoldenCase> Load(string fixture)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(TestPaths.Fixture(fixture), "golden.json")));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => new GoldenCase(
            c.GetProperty("prompt_tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
            c.GetProperty("continuation_tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
            c.GetProperty("continuation_logprobs").EnumerateArray().Select(e => e.GetDouble()).ToArray(),
            c.GetProperty("greedy_tokens").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
            c.GetProperty("greedy_min_margin").GetDouble())).ToList();
    }
}
