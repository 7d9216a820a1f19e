using System.Text.Json;
using WeakToStrong.Cli.Commands;
using WeakToStrong.Cli.Rewards;
using WeakToStrong.Engine;
using WeakToStrong.Search;

namespace WeakToStrong.Tests.Sentiment;

/// <summary>
/// The project's central claim on the bundled models: weak-to-strong search (CBS 4,4,5 with the small tuned/untuned
/// pair) makes the large model's text more positive than plain sampling, as the gold reward (VADER's compound score)
/// judges it, without the degenerate repetition a lexicon sum used to reward. A fixed set: the first prompts of the
/// bundled prompt set (file order) × fixed seeds, the experiment's settings (temperature 0.7, top-k 50, 50 tokens).
/// </summary>
[Trait("Category", "Integration")]
public class VaderSteeringTests
{
    private const int Prompts = 12;
    private static readonly ulong[] Seeds = [1, 2];

    private static List<string> BundledPrompts(int count) => File.ReadLines(Path.Combine(BundledModels.Root(), "prompts.jsonl"))
        .Take(count).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("prompt").GetString()!).ToList();

    private static WeakToStrongSearch Load() => WeakToStrongSearch.Load(new SearchModelOptions
    {
        LargeDirectory = BundledModels.Folder(BundledModels.Large),
        TunedDirectory = BundledModels.Folder(BundledModels.Tuned),
        UntunedDirectory = BundledModels.Folder(BundledModels.Untuned),
        Model = new ModelOptions(),
    });

    private static string Run(WeakToStrongSearch search, string prompt, SearchMethodKind method, ulong seed) =>
        search.RunAsync(new SearchRequest { Prompt = prompt, Method = method, Seed = seed }).GetAwaiter().GetResult().Text;

    [Fact]
    public void CbsMeanGoldRewardBeatsPlainSampling()
    {
        using var search = Load();
        var vader = VaderSentiment.Default;
        var baseRewards = new List<double>();
        var cbsRewards = new List<double>();
        foreach (string prompt in BundledPrompts(Prompts))
            foreach (ulong seed in Seeds)
            {
                baseRewards.Add(vader.Compound(Run(search, prompt, SearchMethodKind.Sample, seed)));
                cbsRewards.Add(vader.Compound(Run(search, prompt, SearchMethodKind.ChunkBeamSearch, seed)));
            }
        Assert.True(cbsRewards.Average() > baseRewards.Average(), $"CBS {cbsRewards.Average():F3} vs Base {baseRewards.Average():F3}");
    }

    /// <summary>
    /// The steered text the demo shows does not degenerate. Plain sampling is not held to it: it is the large model
    /// alone, which does repeat itself (2 of the demo's 10 responses at seed 1), and is what the steering is compared with.
    /// </summary>
    [Fact]
    public void NoSteeredDemoResponseRepeatsA3GramThreeTimes()
    {
        using var search = Load();
        foreach (string prompt in BundledPrompts(DemoCommand.DefaultPrompts))
        {
            string text = Run(search, prompt, SearchMethodKind.ChunkBeamSearch, seed: 1);
            Assert.True(Fluency.Measure(text).Max3GramCount < 3, text);
        }
    }
}
