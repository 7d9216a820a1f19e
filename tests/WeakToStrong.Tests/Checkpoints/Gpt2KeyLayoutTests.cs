using WeakToStrong.Engine;

namespace WeakToStrong.Tests.Checkpoints;

/// <summary>
/// GPT-2's two key layouts: HF fine-tunes use the <c>transformer.</c> prefix; the original <c>gpt2</c> file has no
/// prefix and also stores the old causal-mask buffers <c>h.N.attn.bias</c> [1, 1, n_pos, n_pos] and
/// <c>h.N.attn.masked_bias</c> (a scalar), which must be ignored.
/// </summary>
[Trait("Category", "Unit")]
public sealed class Gpt2KeyLayoutTests
{
    private const string Fixture = "gpt2-tiny";

    [Fact]
    public void UnprefixedLayoutWithMaskBuffersScoresExactlyLikeThePrefixedOne()
    {
        using var temp = TestPaths.Temp().WithFixture(Fixture);
        string path = temp.File_("model.safetensors");
        var tensors = SafeTensorsWriter.Read(path);
        Assert.All(tensors, t => Assert.StartsWith("transformer.", t.Name, StringComparison.Ordinal));
        var rewritten = tensors.Select(t => t with { Name = t.Name["transformer.".Length..] }).ToList();

        using (var original = LanguageModel.Load(TestPaths.Fixture(Fixture)))
        {
            int positions = original.Spec.MaxPositions;
            for (int layer = 0; layer < original.Spec.Layers; layer++)
            {
                rewritten.Add(new RawTensor($"h.{layer}.attn.bias", "F32", [1, 1, positions, positions], CausalMask(positions)));
                rewritten.Add(new RawTensor($"h.{layer}.attn.masked_bias", "F32", [], BitConverter.GetBytes(-1e4f)));
            }
            File.Delete(path);
            SafeTensorsWriter.Write(path, rewritten.OrderBy(t => t.Name, StringComparer.Ordinal));

            using var unprefixed = LanguageModel.Load(temp.Path);
            Assert.Contains("h.0.attn.bias", unprefixed.Checkpoint.TensorNames);
            Assert.DoesNotContain(unprefixed.Checkpoint.TensorNames, n => n.StartsWith("transformer.", StringComparison.Ordinal));
            var expected = ShardedCheckpointTests.ScoreGoldenCases(original, Fixture);
            var actual = ShardedCheckpointTests.ScoreGoldenCases(unprefixed, Fixture);
            Assert.Equal(expected.Count, actual.Count);
            for (int c = 0; c < expected.Count; c++) Assert.Equal(expected[c], actual[c]);
        }
    }

    [Fact]
    public void UnprefixedLayoutMissingATensorNamesItWithoutThePrefix()
    {
        using var temp = TestPaths.Temp().WithFixture(Fixture);
        string path = temp.File_("model.safetensors");
        var tensors = SafeTensorsWriter.Read(path)
            .Select(t => t with { Name = t.Name["transformer.".Length..] })
            .Where(t => t.Name != "h.1.mlp.c_fc.bias")
            .ToList();
        File.Delete(path);
        SafeTensorsWriter.Write(path, tensors);
        CheckpointAssert.Throws(() => LanguageModel.Load(temp.Path).Dispose(), path, "h.1.mlp.c_fc.bias", "missing");
    }

    /// <summary>The lower-triangular ones the old GPT-2 checkpoints stored, [n, n] row-major F32.</summary>
    private static byte[] CausalMask(int n)
    {
        var mask = new float[n * n];
        for (int r = 0; r < n; r++)
            for (int c = 0; c <= r; c++) mask[r * n + c] = 1f;
        return [.. mask.SelectMany(BitConverter.GetBytes)];
    }
}
