using System.Text.Json;
using Xunit;

namespace WeakToStrong.Tests.Tokenization;

/// <summary>Paths to the golden fixtures and their tokenization.json cases.</summary>
internal static class TokenizerTestData
{
    public static string Gpt2Tiny { get; } = Fixture("gpt2-tiny");

    public static string LlamaTiny { get; } = Fixture("llama-tiny");

    public static IReadOnlyList<Gpt2Case> Gpt2Cases { get; } = ReadCases(Gpt2Tiny)
        .Select(c => new Gpt2Case(c.GetProperty("text").GetString()!, Ids(c)))
        .ToList();

    public static IReadOnlyList<SentencePieceCase> LlamaCases { get; } = ReadCases(LlamaTiny)
        .Select(c => new SentencePieceCase(
            c.GetProperty("text").GetString()!,
            Ids(c),
            c.GetProperty("pieces").EnumerateArray().Select(p => p.GetString()!).ToArray(),
            c.GetProperty("decoded").GetString()!))
        .ToList();

    public static TheoryData<int> Gpt2CaseIndices => Indices(Gpt2Cases.Count);

    public static TheoryData<int> LlamaCaseIndices => Indices(LlamaCases.Count);

    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "TestData", "fixtures", name);

    private static TheoryData<int> Indices(int count)
    {
        var data = new TheoryData<int>();
        for (var i = 0; i < count; i++)
        {
            data.Add(i);
        }

        return data;
    }

    private static List<JsonElement> ReadCases(string folder)
    {
        using var document = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(folder, "tokenization.json")));
        return document.RootElement.GetProperty("cases").EnumerateArray().Select(c => c.Clone()).ToList();
    }

    private static int[] Ids(JsonElement c) => c.GetProperty("ids").EnumerateArray().Select(i => i.GetInt32()).ToArray();

    public sealed record Gpt2Case(string Text, int[] Ids);

    public sealed record SentencePieceCase(string Text, int[] Ids, string[] Pieces, string Decoded);
}

/// <summary>A fresh folder under the temp directory, deleted on dispose.</summary>
internal sealed class TempDirectory : IDisposable
{
    public TempDirectory()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "w2s-tok-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void CopyFrom(string folder, string name) => System.IO.File.Copy(System.IO.Path.Combine(folder, name), File(name));

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
