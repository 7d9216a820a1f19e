using WeakToStrong.Checkpoints;
using WeakToStrong.Engine;

namespace WeakToStrong.Tests.Checkpoints;

/// <summary>Sharded checkpoints: tensors found through the index's weight_map only, never by layer order.</summary>
[Trait("Category", "Unit")]
public sealed class ShardedCheckpointTests
{
    /// <summary>The golden-fixture bar (GoldenFixtureTests); sharding must not move scores at all, this is the sanity check.</summary>
    private const double LogProbTolerance = 2e-4;

    private const string Index = "model.safetensors.index.json";

    /// <summary>
    /// Replaces a fixture copy's model.safetensors with <paramref name="shards"/> shards: tensors dealt to shards in a
    /// seeded random order, stored in that order, and the weight_map written in another random order.
    /// </summary>
    internal static List<(string Tensor, string Shard)> Shard(TempDirectory temp, int shards, int seed)
    {
        string single = temp.File_("model.safetensors");
        var tensors = SafeTensorsWriter.Read(single);
        File.Delete(single);
        var random = new Random(seed);
        var dealt = tensors.OrderBy(_ => random.Next()).ToList();
        var map = new List<(string Tensor, string Shard)>();
        for (int s = 0; s < shards; s++)
        {
            string name = $"model-{s + 1:D5}-of-{shards:D5}.safetensors";
            var mine = dealt.Where((_, i) => i % shards == s).ToList();
            SafeTensorsWriter.Write(temp.File_(name), mine);
            map.AddRange(mine.Select(t => (t.Name, name)));
        }
        map = [.. map.OrderBy(_ => random.Next())];
        SafeTensorsWriter.WriteIndex(temp.File_(Index), map, tensors.Sum(t => (long)t.Data.Length));
        return map;
    }

    internal static List<float[]> ScoreGoldenCases(LanguageModel model, string fixture) =>
        GoldenCase.Load(fixture).Select(c => model.Score(c.PromptTokens, c.ContinuationTokens)).ToList();

    [Theory]
    [InlineData("llama31-small", 3)]
    [InlineData("llama-tiny", 2)]
    [InlineData("qwen2-small", 3)]
    [InlineData("gpt2-tiny", 2)]
    public void ShardedCheckpointScoresExactlyLikeTheSingleFile(string fixture, int shards)
    {
        using var temp = TestPaths.Temp().WithFixture(fixture);
        var map = Shard(temp, shards, seed: 7);
        Assert.False(File.Exists(temp.File_("model.safetensors")));
        var names = map.Select(m => m.Tensor).ToList();
        Assert.NotEqual(names.Order(StringComparer.Ordinal), names); // the index is not in layer order
        foreach (var shard in map.Select(m => m.Shard).Distinct())
        {
            var stored = SafeTensorsWriter.Read(temp.File_(shard)).Select(t => t.Name).ToList();
            Assert.NotEqual(stored.Order(StringComparer.Ordinal), stored); // nor is any shard's data
        }

        using var reference = LanguageModel.Load(TestPaths.Fixture(fixture));
        using var sharded = LanguageModel.Load(temp.Path);
        Assert.Equal(shards, sharded.Checkpoint.Files.Count);
        Assert.Equal(reference.Checkpoint.StoredParameterCount, sharded.Checkpoint.StoredParameterCount);
        var expected = ScoreGoldenCases(reference, fixture);
        var actual = ScoreGoldenCases(sharded, fixture);
        var golden = GoldenCase.Load(fixture);
        for (int c = 0; c < golden.Count; c++)
        {
            Assert.Equal(expected[c], actual[c]);
            for (int i = 0; i < actual[c].Length; i++)
                Assert.True(Math.Abs(actual[c][i] - golden[c].ContinuationLogprobs[i]) <= LogProbTolerance,
                    $"{fixture} case {c} token {i}: sharded {actual[c][i]}, transformers {golden[c].ContinuationLogprobs[i]}");
        }
    }

    [Theory]
    [InlineData("{\"weight_map\": {")]
    [InlineData("")]
    [InlineData("{\"weight_map\": {\"a\": \"b\"}} }")]
    public void IndexThatIsNotJsonIsNamed(string text)
    {
        using var temp = TestPaths.Temp().WithFixture("llama31-small");
        Shard(temp, 2, seed: 1);
        File.WriteAllText(temp.File_(Index), text);
        CheckpointAssert.Throws(() => Checkpoint.Open(temp.Path).Dispose(), temp.File_(Index), null, "JSON");
    }

    [Theory]
    [InlineData("{\"metadata\": {}}")]
    [InlineData("{\"weight_map\": [\"model-00001-of-00002.safetensors\"]}")]
    [InlineData("{\"weight_map\": null}")]
    [InlineData("[]")]
    public void IndexWithoutAWeightMapObjectIsNamed(string text)
    {
        using var temp = TestPaths.Temp().WithFixture("llama31-small");
        Shard(temp, 2, seed: 1);
        File.WriteAllText(temp.File_(Index), text);
        CheckpointAssert.Throws(() => Checkpoint.Open(temp.Path).Dispose(), temp.File_(Index), "weight_map", "missing");
    }

    [Fact]
    public void WeightMapWithALoneSurrogateEscapeIsNamed()
    {
        using var temp = TestPaths.Temp().WithFixture("llama31-small");
        var map = Shard(temp, 2, seed: 1);
        File.WriteAllText(temp.File_(Index), $"{{\"weight_map\": {{\"w\\ud800\": \"{map[0].Shard}\"}}}}");
        CheckpointAssert.Throws(() => Checkpoint.Open(temp.Path).Dispose(), temp.File_(Index), "weight_map", "Unicode");
    }

    [Fact]
    public void WeightMapValueThatIsNotAFileNameIsNamed()
    {
        using var temp = TestPaths.Temp().WithFixture("llama31-small");
        var map = Shard(temp, 2, seed: 1);
        ModelLoadingTests.EditJson(temp.File_(Index), ("weight_map", $"{{\"{map[0].Tensor}\": 3}}"));
        CheckpointAssert.Throws(() => Checkpoint.Open(temp.Path).Dispose(), temp.File_(Index), map[0].Tensor, "not a file name");
    }

    [Fact]
    public void MissingShardIsNamedWithATensorThatNeedsIt()
    {
        using var temp = TestPaths.Temp().WithFixture("llama31-small");
        var map = Shard(temp, 3, seed: 2);
        string gone = map[0].Shard;
        File.Delete(temp.File_(gone));
        var e = CheckpointAssert.Throws(() => LanguageModel.Load(temp.Path).Dispose(), temp.File_(gone), map[0].Tensor, "not found");
        Assert.Contains(Index, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TensorListedInTheIndexButAbsentFromItsShardIsNamed()
    {
        using var temp = TestPaths.Temp().WithFixture("llama31-small");
        var map = Shard(temp, 3, seed: 3);
        var (tensor, shard) = map.First(m => m.Tensor == "model.layers.1.self_attn.v_proj.weight");
        string path = temp.File_(shard);
        var kept = SafeTensorsWriter.Read(path).Where(t => t.Name != tensor).ToList();
        SafeTensorsWriter.Write(path, kept);
        CheckpointAssert.Throws(() => LanguageModel.Load(temp.Path).Dispose(), path, tensor, "not in this shard");
    }

    [Fact]
    public void RequiredTensorMissingFromTheWeightMapIsNamed()
    {
        using var temp = TestPaths.Temp().WithFixture("llama31-small");
        var map = Shard(temp, 2, seed: 4);
        const string tensor = "model.layers.0.mlp.gate_proj.weight";
        SafeTensorsWriter.WriteIndex(temp.File_(Index), map.Where(m => m.Tensor != tensor), 0);
        CheckpointAssert.Throws(() => LanguageModel.Load(temp.Path).Dispose(), temp.File_(Index), tensor, "missing");
    }

    [Theory]
    [InlineData("../x.safetensors")]
    [InlineData("sub/model-00001-of-00002.safetensors")]
    [InlineData("/tmp/model-00001-of-00002.safetensors")]
    [InlineData("..")]
    [InlineData(".")]
    [InlineData("")]
    public void ShardNameThatIsNotAPlainFileNameIsRefused(string shard)
    {
        using var temp = TestPaths.Temp().WithFixture("llama31-small");
        var map = Shard(temp, 2, seed: 5);
        map[^1] = (map[^1].Tensor, shard);
        SafeTensorsWriter.WriteIndex(temp.File_(Index), map, 0);
        CheckpointAssert.Throws(() => Checkpoint.Open(temp.Path).Dispose(), temp.File_(Index), map[^1].Tensor, "plain file name");
    }

    [Fact]
    public void IndexThatCannotBeReadIsNamed()
    {
        using var temp = TestPaths.Temp().WithFixture("llama31-small");
        Shard(temp, 2, seed: 6);
        using var exclusive = new FileStream(temp.File_(Index), FileMode.Open, FileAccess.ReadWrite, FileShare.None);
        CheckpointAssert.Throws(() => Checkpoint.Open(temp.Path).Dispose(), temp.File_(Index), null, "cannot be read");
    }

    [Fact]
    public void CorruptShardIsNamed()
    {
        using var temp = TestPaths.Temp().WithFixture("llama31-small");
        var map = Shard(temp, 2, seed: 8);
        string path = temp.File_(map[0].Shard);
        string last = SafeTensorsWriter.Read(path)[^1].Name;
        using (var stream = new FileStream(path, FileMode.Open, FileAccess.Write)) stream.SetLength(stream.Length - 1);
        CheckpointAssert.Throws(() => Checkpoint.Open(temp.Path).Dispose(), path, last, "past the data section");
    }
}
