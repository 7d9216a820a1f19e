using System.Buffers.Binary;
using WeakToStrong.Checkpoints;
using WeakToStrong.Engine;
using Xunit.Abstractions;

namespace WeakToStrong.Tests.Checkpoints;

/// <summary>
/// Seeded mutations of the golden fixtures, single-file and sharded (bit flips and byte swaps in the header and
/// anywhere in the file, header-length rewrites, truncations, broken configs and index). Each mutated folder is loaded, and scored when it loads:
/// the only failure allowed is a <see cref="CheckpointException"/> naming a file of the folder; a mutated data
/// section may also load fine. Any other exception, a hang or a huge allocation fails the test. What <c>w2s info</c>
/// checks (<see cref="ModelWeights.Validate"/>) must refuse exactly what loading refuses, with the same message.
/// </summary>
[Trait("Category", "Integration")]
public sealed class CheckpointFuzzTests(ITestOutputHelper output)
{
    private const int Seed = 20240611;

    private static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(15);

    /// <summary>Managed bytes one load + score may allocate; the largest fixture (gpt2-tiny) needs about 30 MB.</summary>
    private const long MaxManagedBytesPerAttempt = 256L << 20;

    /// <summary>Resident weights of a loaded model: every byte comes from the file, norms widened to F32 at most 2×.</summary>
    private const int MaxResidentPerFileByte = 2;

    /// <summary>Fixture, shards (1: the fixture's own single file), iterations; about 10 s on two cores.</summary>
    private static readonly (string Fixture, int Shards, int Iterations)[] Plan =
        [("llama-tiny", 1, 200), ("qwen2-small", 1, 180), ("llama31-small", 1, 140), ("llama31-small", 3, 140), ("gpt2-tiny", 1, 60)];

    /// <summary>Bytes that change a JSON header's structure or its UTF-8 when they replace another.</summary>
    private static readonly byte[] Interesting = "\"{}[],:-09.e \\"u8.ToArray().Concat(new byte[] { 0x00, 0x80, 0xC3, 0xFF }).ToArray();

    private sealed record Mutation(string File, string Description, byte[] Bytes);

    private sealed record Outcome(Exception? Error, bool TimedOut, long ManagedBytes, string? Problem);

    [Fact]
    public void MutatedCheckpointsFailOnlyWithCheckpointException()
    {
        var random = new Random(Seed);
        var failures = new List<string>();
        int typed = 0, loaded = 0;
        var kinds = new Dictionary<string, int>();
        foreach (var (fixture, shards, iterations) in Plan)
        {
            using var temp = TestPaths.Temp().WithFixture(fixture);
            if (shards > 1) ShardedCheckpointTests.Shard(temp, shards, seed: Seed);
            var originals = Directory.GetFiles(temp.Path)
                .Select(Path.GetFileName)
                .Where(f => f!.EndsWith(".safetensors", StringComparison.Ordinal) || f is "config.json" or "generation_config.json" or "model.safetensors.index.json")
                .ToDictionary(f => f!, f => File.ReadAllBytes(temp.File_(f!)));
            var golden = GoldenCase.Load(fixture)[0];
            for (int i = 0; i < iterations; i++)
            {
                var mutation = Mutate(random, originals);
                string kind = mutation.Description.Split(' ')[0];
                kinds[kind] = kinds.GetValueOrDefault(kind) + 1;
                File.WriteAllBytes(temp.File_(mutation.File), mutation.Bytes);
                var outcome = Attempt(temp.Path, golden);
                string what = $"{fixture}/{shards} #{i} {mutation.File}: {mutation.Description}";
                if (outcome.TimedOut)
                {
                    failures.Add($"{what}: no answer within {AttemptTimeout}");
                    break; // the hung attempt still holds the files
                }
                if (outcome.ManagedBytes > MaxManagedBytesPerAttempt) failures.Add($"{what}: allocated {outcome.ManagedBytes} managed bytes");
                if (outcome.Problem is not null) failures.Add($"{what}: {outcome.Problem}");
                switch (outcome.Error)
                {
                    case null:
                        loaded++;
                        break;
                    case CheckpointException e when e.FilePath.StartsWith(temp.Path, StringComparison.Ordinal) && e.Message.Contains(e.FilePath, StringComparison.Ordinal):
                        typed++;
                        break;
                    case CheckpointException e:
                        failures.Add($"{what}: CheckpointException does not name a file of the folder: {e.Message}");
                        break;
                    default:
                        failures.Add($"{what}: {outcome.Error.GetType().FullName}: {outcome.Error.Message}\n{outcome.Error.StackTrace}");
                        break;
                }
                File.WriteAllBytes(temp.File_(mutation.File), originals[mutation.File]);
            }
        }

        output.WriteLine($"typed failures {typed}, loaded and scored {loaded}; mutations: {string.Join(", ", kinds.Select(k => $"{k.Key} {k.Value}"))}");
        Assert.True(failures.Count == 0, $"{failures.Count} attempts broke the contract:\n" + string.Join("\n", failures.Take(20)));
        Assert.True(typed > 0, "no mutation was refused; the fuzzer is not reaching the validation");
        Assert.True(loaded > 0, "no mutation loaded; the fuzzer never reaches the data section");
    }

    /// <summary>Loads (and scores) on a dedicated thread so a hang is caught and allocations are counted.</summary>
    private static Outcome Attempt(string directory, GoldenCase golden)
    {
        var task = Task.Factory.StartNew(() =>
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            string? info = null;
            try
            {
                using var checkpoint = Checkpoint.Open(directory);
                ModelWeights.Validate(checkpoint);
            }
            catch (CheckpointException e)
            {
                info = e.Message;
            }
            try
            {
                using var model = LanguageModel.Load(directory);
                long resident = model.Transformer.Weights.ResidentBytes;
                long fileBytes = Directory.GetFiles(directory, "*.safetensors").Sum(f => new FileInfo(f).Length);
                string? problem = resident > MaxResidentPerFileByte * fileBytes ? $"loaded {resident} resident bytes from a {fileBytes}-byte file"
                    : info is not null ? $"loads, but info refuses it: {info}" : null;
                int[] prompt = golden.PromptTokens[..Math.Min(4, golden.PromptTokens.Length)];
                int[] continuation = golden.ContinuationTokens[..Math.Min(4, golden.ContinuationTokens.Length)];
                // A mutated config may shrink the context (e.g. "256" → " 56"); scoring past it is an argument error.
                if (prompt.Length + continuation.Length <= model.Spec.MaxPositions)
                {
                    float[] logprobs = model.Score(prompt, continuation);
                    if (logprobs.Length != continuation.Length) problem = $"scored {logprobs.Length} of {continuation.Length} tokens";
                }
                return new Outcome(null, false, GC.GetAllocatedBytesForCurrentThread() - before, problem);
            }
            catch (Exception e)
            {
                string? problem = e is CheckpointException && e.Message != info ? $"loading says '{e.Message}', info '{info ?? "(accepts it)"}'" : null;
                return new Outcome(e, false, GC.GetAllocatedBytesForCurrentThread() - before, problem);
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        return task.Wait(AttemptTimeout) ? task.Result : new Outcome(null, true, 0, null);
    }

    /// <summary>80% a safetensors file (most often its header), 20% a JSON file of the folder.</summary>
    private static Mutation Mutate(Random random, IReadOnlyDictionary<string, byte[]> originals)
    {
        string[] weights = [.. originals.Keys.Where(f => f.EndsWith(".safetensors", StringComparison.Ordinal)).Order(StringComparer.Ordinal)];
        string[] json = [.. originals.Keys.Where(f => f.EndsWith(".json", StringComparison.Ordinal)).Order(StringComparer.Ordinal)];
        int roll = random.Next(100);
        if (roll < 80)
        {
            string file = weights[random.Next(weights.Length)];
            byte[] model = originals[file];
            int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(model);
            if (roll < 35) return Flip(random, file, model, 0, headerEnd, "header-flip");
            if (roll < 45) return Replace(random, file, model, 8, headerEnd, "header-byte");
            if (roll < 50) return HeaderLength(random, file, model, headerEnd);
            if (roll < 65) return Replace(random, file, model, 0, model.Length, "file-byte");
            return Truncate(random, file, model, random.Next(2) == 0 ? headerEnd + 64 : model.Length, "truncate");
        }
        string config = json[random.Next(json.Length)];
        byte[] bytes = originals[config];
        return random.Next(3) switch
        {
            0 => Flip(random, config, bytes, 0, bytes.Length, "json-flip"),
            1 => Replace(random, config, bytes, 0, bytes.Length, "json-byte"),
            _ => Truncate(random, config, bytes, bytes.Length, "json-truncate"),
        };
    }

    /// <summary>1–3 single-bit flips in [from, to).</summary>
    private static Mutation Flip(Random random, string file, byte[] original, int from, int to, string kind)
    {
        byte[] bytes = (byte[])original.Clone();
        var changes = new List<string>();
        for (int n = random.Next(1, 4); n > 0; n--)
        {
            int at = random.Next(from, to), bit = random.Next(8);
            bytes[at] ^= (byte)(1 << bit);
            changes.Add($"@{at}^{1 << bit}");
        }
        return new Mutation(file, $"{kind} {string.Join(" ", changes)}", bytes);
    }

    /// <summary>1–8 bytes in [from, to) replaced, half by JSON-structural or non-UTF-8 bytes, half at random.</summary>
    private static Mutation Replace(Random random, string file, byte[] original, int from, int to, string kind)
    {
        byte[] bytes = (byte[])original.Clone();
        var changes = new List<string>();
        for (int n = random.Next(1, 9); n > 0; n--)
        {
            int at = random.Next(from, to);
            bytes[at] = random.Next(2) == 0 ? Interesting[random.Next(Interesting.Length)] : (byte)random.Next(256);
            changes.Add($"@{at}={bytes[at]:X2}");
        }
        return new Mutation(file, $"{kind} {string.Join(" ", changes)}", bytes);
    }

    private static Mutation HeaderLength(Random random, string file, byte[] original, int headerEnd)
    {
        ulong[] candidates = [0, 1, 2, (ulong)headerEnd - 9, (ulong)headerEnd - 7, (ulong)original.Length - 8, (ulong)original.Length, 1UL << 60, ulong.MaxValue, (ulong)random.NextInt64()];
        ulong value = candidates[random.Next(candidates.Length)];
        byte[] bytes = (byte[])original.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        return new Mutation(file, $"header-length {value}", bytes);
    }

    /// <summary>The file cut to a random length below <paramref name="within"/>.</summary>
    private static Mutation Truncate(Random random, string file, byte[] original, int within, string kind)
    {
        int length = random.Next(Math.Min(within, original.Length));
        return new Mutation(file, $"{kind} {length}/{original.Length}", original[..length]);
    }
}
