using WeakToStrong.Checkpoints;

namespace WeakToStrong.Tests.Checkpoints;

/// <summary>EOS ids come from generation_config.json (int or list) and config.json (int or list), merged.</summary>
[Trait("Category", "Unit")]
public sealed class EosTokenTests
{
    private static IReadOnlyList<int> Eos(string directory) => ModelConfig.Load(directory).EosTokenIds;

    [Fact]
    public void ListInGenerationConfigAndIntInConfigAreMerged()
    {
        using var temp = TestPaths.Temp().WithFixture("llama-tiny");
        ModelLoadingTests.EditJson(temp.File_("generation_config.json"), ("eos_token_id", "[2, 5]"));
        ModelLoadingTests.EditJson(temp.File_("config.json"), ("eos_token_id", "7"));
        Assert.Equal([2, 5, 7], Eos(temp.Path).Order());
    }

    [Fact]
    public void IntInConfigAloneIsUsed()
    {
        using var temp = TestPaths.Temp().WithFixture("llama-tiny");
        File.Delete(temp.File_("generation_config.json"));
        ModelLoadingTests.EditJson(temp.File_("config.json"), ("eos_token_id", "3"));
        Assert.Equal([3], Eos(temp.Path));
    }

    [Fact]
    public void ListInConfigAndIntInGenerationConfigAreMergedWithoutDuplicates()
    {
        using var temp = TestPaths.Temp().WithFixture("llama-tiny");
        ModelLoadingTests.EditJson(temp.File_("generation_config.json"), ("eos_token_id", "4"));
        ModelLoadingTests.EditJson(temp.File_("config.json"), ("eos_token_id", "[2, 4]"));
        Assert.Equal([2, 4], Eos(temp.Path).Order());
    }

    [Fact]
    public void NoEosAnywhereGivesAnEmptyList()
    {
        using var temp = TestPaths.Temp().WithFixture("llama-tiny");
        ModelLoadingTests.EditJson(temp.File_("generation_config.json"), ("eos_token_id", null));
        ModelLoadingTests.EditJson(temp.File_("config.json"), ("eos_token_id", null));
        Assert.Empty(Eos(temp.Path));
    }

    [Theory]
    [InlineData("generation_config.json", "[2, 512]", "512")]
    [InlineData("generation_config.json", "-1", "-1")]
    [InlineData("generation_config.json", "[2, \"5\"]", "integer")]
    [InlineData("generation_config.json", "{\"id\": 2}", "integer")]
    [InlineData("config.json", "512", "512")]
    [InlineData("config.json", "[2, 2.5]", "integer")]
    public void BadEosIdNamesTheFileItCameFrom(string file, string json, string phrase)
    {
        using var temp = TestPaths.Temp().WithFixture("llama-tiny");
        ModelLoadingTests.EditJson(temp.File_(file), ("eos_token_id", json));
        CheckpointAssert.Throws(() => Eos(temp.Path), temp.File_(file), "eos_token_id", phrase);
    }

    [Fact]
    public void GenerationConfigThatIsNotJsonIsNamed()
    {
        using var temp = TestPaths.Temp().WithFixture("llama-tiny");
        File.WriteAllText(temp.File_("generation_config.json"), "{\"eos_token_id\": [2,");
        CheckpointAssert.Throws(() => Eos(temp.Path), temp.File_("generation_config.json"), null, "JSON");
    }
}
