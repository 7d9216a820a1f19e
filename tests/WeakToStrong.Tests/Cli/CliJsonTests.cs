using System.Text.Json;
using System.Text.Json.Nodes;
using WeakToStrong.Cli.Json;

namespace WeakToStrong.Tests.Cli;

/// <summary>
/// The CLI's JSON goes through source-generated metadata only (it is published trimmed, where reflection-based
/// serialisation fails at run time). The trimmed single-file binary itself is run by CI's GPU-bundle rehearsal.
/// </summary>
[Trait("Category", "Unit")]
public class CliJsonTests
{
    [Fact]
    public void TheCliRunsWithReflectionBasedJsonOff()
    {
        // With this switch off, every CLI test that reads --json output would fail on a shape that needs reflection.
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "w2s.runtimeconfig.json")))!;
        var value = config["runtimeOptions"]?["configProperties"]?["System.Text.Json.JsonSerializer.IsReflectionEnabledByDefault"];
        Assert.NotNull(value);
        Assert.False(value.GetValue<bool>());
    }

    [Fact]
    public void EveryOutputRecordHasSourceGeneratedMetadata()
    {
        var records = typeof(CliJson).Assembly.GetTypes()
            .Where(t => t.Namespace == typeof(CliJson).Namespace && t.Name.EndsWith("Json", StringComparison.Ordinal) && t != typeof(CliJson))
            .ToArray();
        Assert.Contains(typeof(InfoJson), records);
        foreach (var type in records)
            Assert.True(CliJson.Output.GetTypeInfo(type) is not null, $"{type.Name} is not in CliJson");
    }

    [Fact]
    public void AShapeOutsideTheContextIsRefusedNotReflected()
    {
        var e = Record.Exception(() => JsonSerializer.Serialize(new { loose = 1 }, CliJson.Output.Options));
        Assert.True(e is NotSupportedException or InvalidOperationException, e?.GetType().Name ?? "no exception: reflection fallback is on");
    }

    [Fact]
    public void NamesAreSnakeCaseAndTextIsWrittenAsIs()
    {
        string json = JsonSerializer.Serialize(new GenerateJson([1, 2], "naïve “quote” ✓"), CliJson.Output.GenerateJson);
        Assert.Equal("{\"tokens\":[1,2],\"text\":\"naïve “quote” ✓\"}", json);
        json = JsonSerializer.Serialize(new DecodeSpeedupJson("BF16", 16, 2.5), CliJson.Output.DecodeSpeedupJson);
        Assert.Equal("{\"dtype\":\"BF16\",\"batch\":16,\"speedup_vs_batch1\":2.5}", json);
    }
}
