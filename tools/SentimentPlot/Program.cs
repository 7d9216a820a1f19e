// Sentiment experiment report: reads w2s eval JSONL files (with --reward), writes the gold-reward-vs-compute plot
// (PNG, ScottPlot), optionally gold reward against large-model tokens per response, and a Markdown table. Usage:
//   dotnet run --project tools/SentimentPlot -- --png OUT.png [--tokens-png OUT.png] --table OUT.md FILE.jsonl...
// A file whose name starts with "xtok" holds runs with the cross-tokenizer small pair; its methods get a suffix.
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

return SentimentPlot.Report.Run(args);

namespace SentimentPlot
{
    /// <summary>One eval result line (the fields the report uses).</summary>
    internal sealed record EvalRun(string Series, string Method, string Id, ulong Seed, double Reward, string RewardName, double? Fluency, long SmallTokens, long LargeTokens, double WallMs,
        double? Distinct1, double? Distinct2, double? Repeated3GramShare);

    /// <summary>Mean, standard error over prompts, and counts of one method.</summary>
    internal sealed record Row(string Series, string Method, int Runs, int Prompts, int Seeds, double Reward, double RewardSe, double? Fluency,
        double SmallTokens, double LargeTokens, double WallMs, double? Distinct1, double? Distinct2, double? Repeated3GramShare);

    internal static partial class Report
    {
        public static int Run(string[] args)
        {
            string? png = null, tokensPng = null, table = null;
            var files = new List<string>();
            for (int i = 0; i < args.Length; i++)
            {
                switch (args[i])
                {
                    case "--png" when i + 1 < args.Length: png = args[++i]; break;
                    case "--table" when i + 1 < args.Length: table = args[++i]; break;
                    case "--tokens-png" when i + 1 < args.Length: tokensPng = args[++i]; break;
                    default:
                        if (args[i].StartsWith("--", StringComparison.Ordinal))
                        {
                            Console.Error.WriteLine($"error: unknown option {args[i]} (usage: --png OUT.png [--tokens-png OUT.png] [--table OUT.md] FILE.jsonl...)");
                            return 2;
                        }
                        files.Add(args[i]);
                        break;
                }
            }
            if (files.Count == 0 || png is null)
            {
                Console.Error.WriteLine("error: usage: --png OUT.png [--tokens-png OUT.png] [--table OUT.md] FILE.jsonl...");
                return 2;
            }
            List<EvalRun> runs;
            try
            {
                runs = files.SelectMany(Read).ToList();
            }
            catch (Exception e) when (e is IOException or InvalidDataException)
            {
                Console.Error.WriteLine("error: " + e.Message);
                return 1;
            }
            var rows = Summarise(runs);
            var rewardNames = runs.Select(r => r.RewardName).Distinct().ToList();
            if (rewardNames.Count != 1)
            {
                Console.Error.WriteLine($"error: the files mix gold rewards ({string.Join(", ", rewardNames)})");
                return 1;
            }
            string reward = RewardLabel(rewardNames[0]);
            string markdown = Markdown(rows, reward);
            Console.Write(markdown);
            if (table is not null) File.WriteAllText(table, markdown);
            Plot(rows, png, reward);
            Console.Error.WriteLine($"wrote {png}");
            if (tokensPng is not null)
            {
                PlotTokens(rows, tokensPng, reward);
                Console.Error.WriteLine($"wrote {tokensPng}");
            }
            return 0;
        }

        public static IEnumerable<EvalRun> Read(string path)
        {
            string series = Path.GetFileName(path).StartsWith("xtok", StringComparison.Ordinal) ? "cross-tokenizer pair" : "same-tokenizer pair";
            int number = 0;
            foreach (string line in File.ReadLines(path))
            {
                number++;
                if (string.IsNullOrWhiteSpace(line)) continue;
                JsonDocument doc;
                try
                {
                    doc = JsonDocument.Parse(line);
                }
                catch (JsonException e)
                {
                    throw new InvalidDataException($"{path}:{number}: not JSON ({e.Message})");
                }
                using (doc)
                {
                    var root = doc.RootElement;
                    if (!root.TryGetProperty("reward", out var reward) || reward.ValueKind != JsonValueKind.Number)
                        throw new InvalidDataException($"{path}:{number}: no \"reward\" (run w2s eval with --reward)");
                    var stats = root.GetProperty("stats");
                    yield return new EvalRun(series, root.GetProperty("method").GetString()!, root.GetProperty("id").ToString(), root.GetProperty("seed").GetUInt64(),
                        reward.GetDouble(), root.GetProperty("reward_name").GetString()!, Optional(root, "large_logprob_per_token"),
                        stats.GetProperty("small_tokens_scored").GetInt64(), stats.GetProperty("large_tokens_sampled").GetInt64(), stats.GetProperty("wall_ms").GetDouble(),
                        Optional(root, "distinct_1"), Optional(root, "distinct_2"), Optional(root, "repeated_3gram_share"));
                }
            }
        }

        private static double? Optional(JsonElement root, string name) =>
            root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number ? value.GetDouble() : null;

        private static double? MeanOfPresent(IEnumerable<double?> values)
        {
            var present = values.Where(v => v is not null).Select(v => v!.Value).ToList();
            return present.Count > 0 ? present.Average() : null;
        }

        /// <summary>How the table and the plot name a reward_name of w2s eval.</summary>
        public static string RewardLabel(string rewardName) => rewardName switch
        {
            "vader-sentiment-1.1.3" => "VADER compound",
            "afinn-165" => "AFINN-165 sum",
            _ => rewardName,
        };

        /// <summary>Per (series, method): means; the reward's standard error is over prompts (each prompt's mean over its seeds).</summary>
        public static List<Row> Summarise(IEnumerable<EvalRun> runs) => runs
            .GroupBy(r => (r.Series, r.Method))
            .Select(g =>
            {
                var perPrompt = g.GroupBy(r => r.Id).Select(p => p.Average(r => r.Reward)).ToList();
                double m = perPrompt.Average();
                double se = perPrompt.Count > 1 ? Math.Sqrt(perPrompt.Sum(x => (x - m) * (x - m)) / (perPrompt.Count - 1) / perPrompt.Count) : 0;
                var fluency = g.Where(r => r.Fluency is not null).Select(r => r.Fluency!.Value).ToList();
                return new Row(g.Key.Series, g.Key.Method, g.Count(), perPrompt.Count, g.Select(r => r.Seed).Distinct().Count(), g.Average(r => r.Reward), se,
                    fluency.Count > 0 ? fluency.Average() : null, g.Average(r => (double)r.SmallTokens), g.Average(r => (double)r.LargeTokens), g.Average(r => r.WallMs),
                    MeanOfPresent(g.Select(r => r.Distinct1)), MeanOfPresent(g.Select(r => r.Distinct2)), MeanOfPresent(g.Select(r => r.Repeated3GramShare)));
            })
            .OrderBy(r => r.Series, StringComparer.Ordinal).ThenBy(r => Order(r.Method)).ThenBy(r => Compute(r.Method) ?? 0)
            .ToList();

        private static int Order(string method) => method.StartsWith("sample", StringComparison.Ordinal) ? 0
            : method.StartsWith("bon", StringComparison.Ordinal) ? 1 : method.StartsWith("eft", StringComparison.Ordinal) ? 2 : 3;

        [GeneratedRegex(@"^cbs\((\d+),(\d+),(\d+|inf)\)$")]
        private static partial Regex CbsLabel();

        /// <summary>CBS's chunk length L ("inf" as 0), or null for the other methods.</summary>
        public static int? ChunkLength(string method) =>
            CbsLabel().Match(method) is { Success: true } c ? (c.Groups[3].Value == "inf" ? 0 : int.Parse(c.Groups[3].Value, CultureInfo.InvariantCulture)) : null;

        [GeneratedRegex(@"^bon\((\d+)\)$")]
        private static partial Regex BonLabel();

        /// <summary>Compute as the paper counts it: W·K for CBS, N for Best-of-N, 1 for sampling; null for EFT.</summary>
        public static int? Compute(string method)
        {
            if (CbsLabel().Match(method) is { Success: true } c) return int.Parse(c.Groups[1].Value, CultureInfo.InvariantCulture) * int.Parse(c.Groups[2].Value, CultureInfo.InvariantCulture);
            if (BonLabel().Match(method) is { Success: true } b) return int.Parse(b.Groups[1].Value, CultureInfo.InvariantCulture);
            return method == "sample" ? 1 : null;
        }

        public static string Markdown(List<Row> rows, string reward)
        {
            var sb = new StringBuilder();
            sb.AppendLine($"| small pair | method | compute (W·K or N) | prompts × seeds | gold reward ({reward}) ± s.e. | large log-lik./token | distinct-1 | distinct-2 | rep-3 | small tokens scored / run | large tokens sampled / run | wall ms / run |");
            sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
            static string F(double? x) => x is { } v ? v.ToString("F3", CultureInfo.InvariantCulture) : "-";
            foreach (var r in rows)
                sb.AppendLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {r.Series} | {r.Method} | {(Compute(r.Method) is { } c ? c.ToString(CultureInfo.InvariantCulture) : "-")} | {r.Prompts} × {r.Seeds} | {r.Reward:F3} ± {r.RewardSe:F3} | {F(r.Fluency)} | {F(r.Distinct1)} | {F(r.Distinct2)} | {F(r.Repeated3GramShare)} | {r.SmallTokens:F0} | {r.LargeTokens:F0} | {r.WallMs:F0} |"));
            return sb.ToString();
        }

        private static void Plot(List<Row> rows, string path, string reward)
        {
            var plot = new ScottPlot.Plot();
            var same = rows.Where(r => r.Series == "same-tokenizer pair").ToList();
            void Line(IEnumerable<Row> points, string label, ScottPlot.Color color, ScottPlot.MarkerShape marker)
            {
                var p = points.Where(r => Compute(r.Method) is not null).OrderBy(r => Compute(r.Method)).ToList();
                if (p.Count == 0) return;
                double[] xs = p.Select(r => Math.Log2(Compute(r.Method)!.Value)).ToArray();
                double[] ys = p.Select(r => r.Reward).ToArray();
                var scatter = plot.Add.Scatter(xs, ys, color);
                scatter.LegendText = label;
                scatter.MarkerShape = marker;
                scatter.MarkerSize = 8;
                var bars = plot.Add.ErrorBar(xs, ys, p.Select(r => r.RewardSe).ToArray());
                bars.Color = color;
            }
            // Sampling is compute 1 of a series that has no point of its own there (Best-of-1 is sampling; CBS(1,1,L) is its own run).
            var baseRow = same.FirstOrDefault(r => r.Method == "sample");
            IEnumerable<Row> WithBase(List<Row> series) => baseRow is not null && !series.Any(r => Compute(r.Method) == 1) ? series.Append(baseRow) : series;
            Line(WithBase(same.Where(r => ChunkLength(r.Method) == 5).ToList()), "CBS (L = 5), W·K", ScottPlot.Colors.Blue, ScottPlot.MarkerShape.FilledCircle);
            Line(same.Where(r => ChunkLength(r.Method) == 1), "CBS (L = 1), W·K", ScottPlot.Colors.DarkCyan, ScottPlot.MarkerShape.OpenCircle);
            Line(WithBase(same.Where(r => r.Method.StartsWith("bon", StringComparison.Ordinal)).ToList()), "Best-of-N, N (N = 1: sampling)", ScottPlot.Colors.OrangeRed, ScottPlot.MarkerShape.FilledSquare);
            Line(rows.Where(r => r.Series == "cross-tokenizer pair" && ChunkLength(r.Method) == 5), "CBS (L = 5), cross-tokenizer pair", ScottPlot.Colors.Green, ScottPlot.MarkerShape.FilledTriangleUp);
            Line(rows.Where(r => r.Series == "cross-tokenizer pair" && ChunkLength(r.Method) == 1), "CBS (L = 1), cross-tokenizer pair", ScottPlot.Colors.Olive, ScottPlot.MarkerShape.OpenTriangleUp);
            foreach (var (method, label, color) in new[] { ("sample", "Base (sampling)", ScottPlot.Colors.Gray), ("eft(1)", "EFT (β = 1)", ScottPlot.Colors.Purple) })
                if (same.FirstOrDefault(r => r.Method == method) is { } row)
                {
                    var h = plot.Add.HorizontalLine(row.Reward, 1, color, ScottPlot.LinePattern.Dashed);
                    h.LegendText = label;
                }
            double[] ticks = [0, 1, 2, 3, 4];
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks, ticks.Select(t => Math.Pow(2, t).ToString(CultureInfo.InvariantCulture)).ToArray());
            plot.XLabel("compute: W·K (CBS) or N (Best-of-N), log scale");
            plot.YLabel($"gold reward ({reward}) ± s.e.");
            plot.Title("Steering the bundled sentiment models");
            plot.ShowLegend(ScottPlot.Alignment.UpperLeft);
            plot.SavePng(path, 900, 560);
        }

        /// <summary>
        /// Gold reward against the large-model tokens a response cost (measured, log scale): the cost the large
        /// model pays, where compute (W·K) hides the chunk length and finished candidates.
        /// </summary>
        private static void PlotTokens(List<Row> rows, string path, string reward)
        {
            var plot = new ScottPlot.Plot();
            void Series(IEnumerable<Row> points, string label, ScottPlot.Color color, ScottPlot.MarkerShape marker)
            {
                var p = points.OrderBy(r => r.LargeTokens).ToList();
                if (p.Count == 0) return;
                double[] xs = p.Select(r => Math.Log2(r.LargeTokens)).ToArray();
                double[] ys = p.Select(r => r.Reward).ToArray();
                var scatter = plot.Add.Scatter(xs, ys, color);
                scatter.LegendText = label;
                scatter.MarkerShape = marker;
                scatter.MarkerSize = 8;
                var bars = plot.Add.ErrorBar(xs, ys, p.Select(r => r.RewardSe).ToArray());
                bars.Color = color;
            }
            var same = rows.Where(r => r.Series == "same-tokenizer pair").ToList();
            var cross = rows.Where(r => r.Series == "cross-tokenizer pair").ToList();
            var sample = same.Where(r => r.Method == "sample").ToList();
            Series(sample.Concat(same.Where(r => ChunkLength(r.Method) == 5 && Compute(r.Method) > 1)), "CBS (L = 5) over W·K", ScottPlot.Colors.Blue, ScottPlot.MarkerShape.FilledCircle);
            Series(same.Where(r => ChunkLength(r.Method) == 1), "CBS (L = 1) over W·K", ScottPlot.Colors.DarkCyan, ScottPlot.MarkerShape.OpenCircle);
            Series(sample.Concat(same.Where(r => r.Method.StartsWith("bon", StringComparison.Ordinal))), "Best-of-N over N (N = 1: sampling)", ScottPlot.Colors.OrangeRed, ScottPlot.MarkerShape.FilledSquare);
            Series(cross.Where(r => ChunkLength(r.Method) == 5), "CBS (L = 5), cross-tokenizer pair", ScottPlot.Colors.Green, ScottPlot.MarkerShape.FilledTriangleUp);
            Series(cross.Where(r => ChunkLength(r.Method) == 1), "CBS (L = 1), cross-tokenizer pair", ScottPlot.Colors.Olive, ScottPlot.MarkerShape.OpenTriangleUp);
            double[] ticks = [5.64, 6.64, 7.64, 8.64, 9.64];
            plot.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericManual(ticks, ["50", "100", "200", "400", "800"]);
            plot.XLabel("large-model tokens sampled per response (measured), log scale");
            plot.YLabel($"gold reward ({reward}) ± s.e.");
            plot.Title("Gold reward against the large model's tokens");
            plot.ShowLegend(ScottPlot.Alignment.UpperLeft);
            plot.SavePng(path, 900, 560);
        }
    }
}
