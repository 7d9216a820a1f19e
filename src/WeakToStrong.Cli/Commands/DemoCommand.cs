using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using WeakToStrong.Cli.Json;
using WeakToStrong.Cli.Rewards;
using WeakToStrong.Engine;
using WeakToStrong.Search;

namespace WeakToStrong.Cli.Commands;

/// <summary>
/// <c>w2s demo</c>: the bundled sentiment models (samples/sentiment) steered toward positive text. For the first
/// prompts of the held-out prompt set (file order, not picked), plain sampling from the large model and CBS
/// (W,K,L = 4,4,5) with the small tuned/untuned pair, side by side, each with its gold reward (VADER's compound) and time.
/// </summary>
internal static class DemoCommand
{
    /// <summary>Ten: with fewer, one prompt's luck can hide the steering (the first three favour Base at seed 1).</summary>
    public const int DefaultPrompts = 10;

    public static Command Create()
    {
        var count = new Option<int>("--prompts") { Description = "how many prompts of the bundled prompt set", DefaultValueFactory = _ => DefaultPrompts };
        var seed = new Option<ulong>("--seed") { Description = "RNG seed (the same for both methods)", DefaultValueFactory = _ => 1UL };
        var json = Cli.Json();
        var weights = WeightsOption.Create();
        var command = new Command("demo", "Steer the bundled sentiment models: plain sampling vs weak-to-strong search, with gold rewards") { count, seed, weights, json };
        command.SetAction((r, cancellationToken) => Task.FromResult(Cli.Run(() =>
        {
            int n = r.GetValue(count);
            if (n < 1) throw new UsageException($"--prompts: {n} must be at least 1");
            var clock = Stopwatch.StartNew();
            string root = BundledModels.Root();
            var prompts = ReadPrompts(Path.Combine(root, "prompts.jsonl"), n);
            var reward = GoldReward.Vader;
            using var search = WeakToStrongSearch.Load(new SearchModelOptions
            {
                LargeDirectory = BundledModels.Folder(BundledModels.Large),
                TunedDirectory = BundledModels.Folder(BundledModels.Tuned),
                UntunedDirectory = BundledModels.Folder(BundledModels.Untuned),
                Model = new ModelOptions { Weights = WeightsOption.Parse(r.GetValue(weights)!) },
            });
            // Warm-up (JIT, first-use allocations) so that the per-method times below compare the methods, not the cold start.
            foreach (var method in new[] { SearchMethodKind.Sample, SearchMethodKind.ChunkBeamSearch })
                search.RunAsync(new SearchRequest { Prompt = prompts[0], Method = method, MaxNewTokens = 2 }, cancellationToken).GetAwaiter().GetResult();
            double loadMs = clock.Elapsed.TotalMilliseconds;
            var rows = new List<DemoRowJson>();
            foreach (string prompt in prompts)
            {
                var sample = Run(search, reward, new SearchRequest { Prompt = prompt, Method = SearchMethodKind.Sample, Seed = r.GetValue(seed) }, cancellationToken);
                var cbs = Run(search, reward, new SearchRequest { Prompt = prompt, Method = SearchMethodKind.ChunkBeamSearch, Seed = r.GetValue(seed) }, cancellationToken);
                rows.Add(new DemoRowJson(prompt, sample, cbs));
            }
            var demo = new DemoJson(root, Math.Round(loadMs, 1), Math.Round(clock.Elapsed.TotalMilliseconds, 1), "sample", "cbs(4,4,5)", reward.Name, rows,
                rows.Average(x => x.Base.Reward), rows.Average(x => x.Cbs.Reward), rows.Count(x => x.Cbs.Reward > x.Base.Reward));
            if (r.GetValue(json))
            {
                Cli.WriteJson(demo, CliJson.Output.DemoJson);
                return 0;
            }
            Print(demo);
            return 0;
        })));
        return command;
    }

    private static DemoResultJson Run(WeakToStrongSearch search, GoldReward reward, SearchRequest request, CancellationToken cancellationToken)
    {
        var result = search.RunAsync(request, cancellationToken).GetAwaiter().GetResult();
        return new DemoResultJson(result.Text, reward.Score(result.Text), Math.Round(result.Score, 4), Math.Round(result.Stats.WallMs, 1),
            result.Stats.LargeTokensSampled, result.Stats.SmallTokensScored, Fluency.Measure(result.Text).Max3GramCount);
    }

    private static List<string> ReadPrompts(string path, int count)
    {
        if (!File.Exists(path)) throw new UsageException($"{path}: the bundled prompt set is missing");
        var prompts = new List<string>();
        foreach (string line in File.ReadLines(path))
        {
            if (prompts.Count == count) break;
            if (string.IsNullOrWhiteSpace(line)) continue;
            using var doc = JsonDocument.Parse(line);
            prompts.Add(doc.RootElement.GetProperty("prompt").GetString()!);
        }
        if (prompts.Count < count) throw new UsageException($"--prompts: the bundled set has only {prompts.Count} prompts");
        return prompts;
    }

    private static void Print(DemoJson demo)
    {
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = Math.Max(AnsiConsole.Profile.Width, 140);
        AnsiConsole.MarkupLine($"[bold]Weak-to-strong search on the bundled sentiment models[/] ({Markup.Escape(demo.Models)})");
        AnsiConsole.MarkupLine("large: Llama trained here on English text; tuned/untuned: a small GPT-2 pair, tuned by DPO toward positive sentiment as VADER scores it.");
        AnsiConsole.MarkupLine("Both columns sample the same large model (temperature 0.7, top-k 50, 50 new tokens); CBS keeps the chunks the small pair scores as more 'tuned'.");
        var table = new Table().Border(TableBorder.Rounded).AddColumns("prompt", "Base: sampling", "CBS (W,K,L = 4,4,5)");
        foreach (var row in demo.Rows)
            table.AddRow(new Markup(Markup.Escape(row.Prompt)), Cell(row.Base), Cell(row.Cbs));
        table.AddRow(new Markup("[bold]mean gold reward[/]"), new Markup($"[bold]{F(demo.MeanBaseReward)}[/]"), new Markup($"[bold]{F(demo.MeanCbsReward)}[/]"));
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"CBS scored higher than Base on [bold]{demo.CbsWins} of {demo.Rows.Count}[/] prompts (the first {demo.Rows.Count} of the held-out set, not picked; the experiment's 200 × 3 runs: docs/sentiment.md).");
        AnsiConsole.MarkupLine(string.Create(CultureInfo.InvariantCulture,
            $"gold reward: VADER's compound score, -1 (negative) to +1 (positive) · models loaded and warmed up in {demo.LoadMs / 1000:F1} s · total {demo.TotalMs / 1000:F1} s"));
    }

    private static Markup Cell(DemoResultJson x) => new(
        Markup.Escape(x.Text.ReplaceLineEndings(" ")) + string.Create(CultureInfo.InvariantCulture,
            $"\n[dim]gold reward[/] [bold]{F(x.Reward)}[/] [dim]· {x.WallMs:F0} ms · {x.LargeTokensSampled} large tokens · {x.SmallTokensScored} small tokens scored[/]"));

    private static string F(double x) => x.ToString("+0.00;-0.00;0", CultureInfo.InvariantCulture);
}
