using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using WeakToStrong.Chat;
using WeakToStrong.Cli.Json;
using WeakToStrong.Cli.Rewards;
using WeakToStrong.Search;

namespace WeakToStrong.Cli.Commands;

/// <summary>
/// <c>w2s eval</c>: runs a prompt set (× seeds) through one search method, appending one JSON line per result to
/// the output file. Results already in the file (same id, seed and method) are skipped, so an interrupted run
/// resumes where it stopped; the summary covers every method recorded in the file.
/// </summary>
internal static class EvalCommand
{
    public static Command Create()
    {
        var options = new SearchOptions();
        var prompts = new Option<string>("--prompts") { Description = "JSONL file, one {\"id\": …, \"prompt\": …} per line (\"instruction\" also works, as in AlpacaEval; or \"messages\": a conversation in OpenAI's format ending with a user message, run with the chat templates)", Required = true };
        var output = new Option<string>("--out") { Description = "JSONL file results are appended to; ids already in it are skipped", Required = true };
        var seeds = new Option<string>("--seeds") { Description = "comma-separated seeds; each prompt runs once per seed (default: --seed)" };
        var rewardOption = new Option<string>("--reward") { Description = "gold reward of each response: vader (VADER's compound score in [-1, 1], bundled), afinn (sum of AFINN-165 word valences, bundled) or lexicon:PATH (word<TAB>valence lines); also adds the large model's log-likelihood per token" };
        var command = new Command("eval", "Run a prompt set through a search method; resumable; ends with a summary table") { prompts, output, seeds, rewardOption };
        options.AddTo(command);
        command.SetAction((r, cancellationToken) => Task.FromResult(Cli.Run(() =>
        {
            var items = ReadPrompts(r.GetValue(prompts)!);
            var reward = r.GetValue(rewardOption) is { } rewardSpec ? EvalMetrics.Reward(rewardSpec) : null;
            var seedList = r.GetValue(seeds) is { } s ? ParseSeeds(s) : [r.GetValue(options.Sampling.Seed)];
            string outPath = r.GetValue(output)!;
            string label = SearchJson.Label(options.Request(r, "", seed: null));
            var done = ReadRecords(outPath).Select(x => (x.Id, x.Seed, x.Method)).ToHashSet();
            var jobs = (from item in items from seed in seedList where !done.Contains((item.Id, seed, label)) select (item, seed)).ToList();
            int skipped = items.Count * seedList.Length - jobs.Count;
            bool json = r.GetValue(options.Json);

            if (jobs.Count > 0)
            {
                string? folder = Path.GetDirectoryName(Path.GetFullPath(outPath));
                if (folder is not null) Directory.CreateDirectory(folder);
                SearchRequest RequestFor(Prompt item, ulong seed) => item.Conversation is { } c ? options.Request(r, c, seed) : options.Request(r, item.Text, seed);
                using var search = options.Models.Load(r, RequestFor(jobs[0].item, jobs[0].seed));
                using var writer = new StreamWriter(outPath, append: true);
                void RunOne((Prompt Item, ulong Seed) job)
                {
                    var request = RequestFor(job.Item, job.Seed);
                    var result = SearchOptions.Explained(() => search.RunAsync(request, cancellationToken).GetAwaiter().GetResult());
                    double? gold = reward?.Score(result.Text);
                    double? fluency = reward is null ? null : EvalMetrics.LargeLogProbPerToken(search, request, result);
                    var degeneration = Fluency.Measure(result.Text);
                    writer.WriteLine(JsonSerializer.Serialize(
                        new EvalLineJson(job.Item.Id, job.Seed, label, job.Item.Text, result.Text, result.Score, SearchJson.Finish(result.Finish), SearchJson.Stats(result.Stats, search),
                            gold, reward?.Name, fluency, degeneration.Distinct1, degeneration.Distinct2, degeneration.Repeated3GramShare),
                        CliJson.Output.EvalLineJson));
                    writer.Flush();
                }

                if (json || !AnsiConsole.Profile.Capabilities.Interactive)
                {
                    for (int i = 0; i < jobs.Count; i++)
                    {
                        RunOne(jobs[i]);
                        if (!json) Console.Error.WriteLine($"[{i + 1}/{jobs.Count}] {jobs[i].item.Id} seed {jobs[i].seed}");
                    }
                }
                else
                {
                    AnsiConsole.Progress()
                        .AutoClear(false)
                        .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new ElapsedTimeColumn(), new SpinnerColumn())
                        .Start(context =>
                        {
                            var task = context.AddTask($"{label} · {jobs.Count} runs ({skipped} already done)", maxValue: jobs.Count);
                            foreach (var job in jobs)
                            {
                                RunOne(job);
                                task.Increment(1);
                            }
                        });
                }
            }

            var summary = Summarise(ReadRecords(outPath));
            if (json)
            {
                Cli.WriteJson(new EvalJson(jobs.Count, skipped, outPath, summary), CliJson.Output.EvalJson);
                return 0;
            }
            if (jobs.Count == 0) Console.Error.WriteLine($"all {skipped} runs of {label} are already in {outPath}");
            bool rewards = summary.Any(x => x.MeanReward is not null);
            var table = new Table().AddColumns("method", "runs", "mean score");
            if (rewards) table.AddColumns("gold reward ± s.e.", "large logp/tok");
            table.AddColumns("distinct-1", "distinct-2", "rep-3", "large tok", "small tok", "ms/run", "total s");
            table.Caption("per run: mean large-model tokens sampled, small-model tokens scored, wall ms"
                + (rewards ? "; gold reward: mean ± standard error over prompts (seeds averaged per prompt); large logp/tok: the large model's mean log-likelihood per response token" : "")
                + "; distinct-n: unique word n-grams / n-grams of a response; rep-3: share of its word 3-grams that repeat an earlier one (means over responses)");
            foreach (var row in summary)
            {
                var cells = new List<string> { Markup.Escape(row.Method), row.Runs.ToString(CultureInfo.InvariantCulture), F(row.MeanScore, "F4") };
                if (rewards)
                {
                    cells.Add(row.MeanReward is { } m ? $"{F(m, "F3")} ± {F(row.RewardStdErr ?? 0, "F3")}" : "-");
                    cells.Add(row.MeanLargeLogprobPerToken is { } f ? F(f, "F3") : "-");
                }
                cells.AddRange([row.MeanDistinct1 is { } d1 ? F(d1, "F3") : "-", row.MeanDistinct2 is { } d2 ? F(d2, "F3") : "-",
                    row.MeanRepeated3GramShare is { } r3 ? F(r3, "F3") : "-", F(row.MeanLargeTokensSampled, "F1"), F(row.MeanSmallTokensScored, "F1"), F(row.MeanWallMs, "F0"), F(row.TotalWallMs / 1000, "F1")]);
                table.AddRow(cells.ToArray());
            }
            // Redirected output has no width of its own; keep a row on one line in logs.
            if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = Math.Max(AnsiConsole.Profile.Width, 160);
            AnsiConsole.Write(table);
            return 0;
        })));
        return command;
    }

    private static string F(double x, string format) => x.ToString(format, CultureInfo.InvariantCulture);

    /// <summary>A prompt line: its text (a conversation's last user message), and the conversation when it is one.</summary>
    private sealed record Prompt(string Id, string Text, ChatConversation? Conversation = null);

    private sealed record Record(string Id, ulong Seed, string Method, double Score, long LargeTokensSampled, long SmallTokensScored, double WallMs,
        double? Reward, double? LargeLogProbPerToken, double? Distinct1, double? Distinct2, double? Repeated3GramShare);

    private static List<Prompt> ReadPrompts(string path)
    {
        if (!File.Exists(path)) throw new UsageException($"--prompts: {path} does not exist");
        var prompts = new List<Prompt>();
        var ids = new HashSet<string>();
        int line = 0;
        foreach (string text in File.ReadLines(path))
        {
            line++;
            if (string.IsNullOrWhiteSpace(text)) continue;
            JsonElement root;
            try
            {
                using var doc = JsonDocument.Parse(text);
                root = doc.RootElement.Clone();
            }
            catch (JsonException e)
            {
                throw new UsageException($"{path}:{line}: not a JSON object ({e.Message})");
            }
            if (root.ValueKind != JsonValueKind.Object) throw new UsageException($"{path}:{line}: not a JSON object");
            string id = root.TryGetProperty("id", out var idElement)
                ? idElement.ValueKind == JsonValueKind.String ? idElement.GetString()! : idElement.GetRawText()
                : line.ToString(CultureInfo.InvariantCulture);
            if (root.TryGetProperty("messages", out var messages))
            {
                var conversation = Cli.Conversation(messages, $"{path}:{line}");
                if (!ids.Add(id)) throw new UsageException($"{path}:{line}: id {id} appears twice");
                prompts.Add(new Prompt(id, conversation.Prompt, conversation));
                continue;
            }
            string? prompt = null;
            foreach (string name in new[] { "prompt", "instruction", "text" })
                if (root.TryGetProperty(name, out var p) && p.ValueKind == JsonValueKind.String)
                {
                    prompt = p.GetString();
                    break;
                }
            if (prompt is null) throw new UsageException($"{path}:{line}: no \"prompt\" (or \"instruction\") string and no \"messages\"");
            if (!ids.Add(id)) throw new UsageException($"{path}:{line}: id {id} appears twice");
            prompts.Add(new Prompt(id, prompt));
        }
        if (prompts.Count == 0) throw new UsageException($"--prompts: {path} holds no prompt");
        return prompts;
    }

    private static ulong[] ParseSeeds(string text)
    {
        var parts = text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var seeds = new ulong[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!ulong.TryParse(parts[i], NumberStyles.None, CultureInfo.InvariantCulture, out seeds[i]))
                throw new UsageException($"--seeds: '{parts[i]}' is not a seed (expected comma-separated non-negative integers)");
        if (seeds.Length == 0) throw new UsageException("--seeds: no seed given");
        return seeds.Distinct().ToArray();
    }

    /// <summary>The results already in the output file; a line cut short by an interrupted run is passed over (and run again).</summary>
    private static List<Record> ReadRecords(string path)
    {
        var records = new List<Record>();
        if (!File.Exists(path)) return records;
        foreach (string line in File.ReadLines(path))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            try
            {
                using var doc = JsonDocument.Parse(line);
                var root = doc.RootElement;
                var stats = root.GetProperty("stats");
                records.Add(new Record(
                    root.GetProperty("id").GetString()!,
                    root.GetProperty("seed").GetUInt64(),
                    root.GetProperty("method").GetString()!,
                    root.GetProperty("score").GetDouble(),
                    stats.GetProperty("large_tokens_sampled").GetInt64(),
                    stats.GetProperty("small_tokens_scored").GetInt64(),
                    stats.GetProperty("wall_ms").GetDouble(),
                    RequestJson.Double(root, "reward"),
                    RequestJson.Double(root, "large_logprob_per_token"),
                    RequestJson.Double(root, "distinct_1"),
                    RequestJson.Double(root, "distinct_2"),
                    RequestJson.Double(root, "repeated_3gram_share")));
            }
            catch (Exception e) when (e is JsonException or JsonFieldException or KeyNotFoundException or InvalidOperationException or FormatException)
            {
                Console.Error.WriteLine($"warning: {path}: passing over an unreadable line ({e.Message})");
            }
        }
        return records;
    }

    private static List<EvalSummaryJson> Summarise(List<Record> records) => records
        .GroupBy(r => r.Method)
        .Select(g => new EvalSummaryJson(
            g.Key,
            g.Count(),
            g.Average(r => r.Score),
            g.Average(r => (double)r.LargeTokensSampled),
            g.Average(r => (double)r.SmallTokensScored),
            g.Average(r => r.WallMs),
            g.Sum(r => r.WallMs),
            EvalMetrics.MeanAndStandardError(g.Where(r => r.Reward is not null).Select(r => (r.Id, r.Reward!.Value)).ToList()) is var (mean, se) && mean is not null ? mean : null,
            se,
            g.Any(r => r.LargeLogProbPerToken is not null) ? g.Where(r => r.LargeLogProbPerToken is not null).Average(r => r.LargeLogProbPerToken!.Value) : null,
            EvalMetrics.MeanOfPresent(g.Select(r => r.Distinct1)),
            EvalMetrics.MeanOfPresent(g.Select(r => r.Distinct2)),
            EvalMetrics.MeanOfPresent(g.Select(r => r.Repeated3GramShare))))
        .OrderBy(s => s.Method, StringComparer.Ordinal)
        .ToList();
}
