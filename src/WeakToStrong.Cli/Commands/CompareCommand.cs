using System.CommandLine;
using WeakToStrong.Backends;
using WeakToStrong.Cli.Json;
using WeakToStrong.Diagnostics;
using WeakToStrong.Engine;

namespace WeakToStrong.Cli.Commands;

/// <summary>
/// <c>w2s compare</c>: a model loaded with other linear weights (<c>--weights int8</c>) against the same model as
/// stored, over a text: mean KL(stored ‖ other) of the next-token distributions, top-1 agreement and both
/// perplexities (<see cref="WeightsComparison"/>).
/// </summary>
internal static class CompareCommand
{
    public static Command Create()
    {
        var model = Cli.Model();
        var weights = new Option<string>("--weights") { Description = "the weights compared with the stored ones: int8", DefaultValueFactory = _ => "int8" };
        var text = new Option<string>("--text") { Description = "file of text to read (tokenized with the model's tokenizer, BOS first)", Required = true };
        var window = new Option<int?>("--window") { Description = "tokens predicted per window, each from one token of context (default 128, or the context − 1 when shorter)" };
        var device = Cli.Device();
        var json = Cli.Json();
        var command = new Command("compare", "How far a model with int8 weights is from the stored model: KL, top-1 agreement, perplexity")
        {
            model, weights, text, window, device, json,
        };
        command.SetAction(r => Cli.Run(() =>
        {
            string dir = r.GetValue(model)!;
            var format = WeightsOption.Parse(r.GetValue(weights)!);
            string path = r.GetValue(text)!;
            if (!File.Exists(path)) throw new UsageException($"--text: no file '{path}'");
            var tokens = Cli.LoadTokenizer(dir).Encode(File.ReadAllText(path), addBos: true);
            var options = new ModelOptions { Device = r.GetValue(device)! };
            using var stored = LanguageModel.Load(dir, options);
            using var other = LanguageModel.Load(dir, options with { Weights = format });
            var result = WeightsComparison.Run(stored, other, tokens, r.GetValue(window));
            if (r.GetValue(json))
            {
                Cli.WriteJson(new CompareJson(Path.GetFullPath(dir), format.Name(), stored.Transformer.Weights.WeightDType.Name(), result.Positions,
                    result.MeanKl, result.MaxKl, result.Top1Agreement, result.ReferencePerplexity, result.CandidatePerplexity, result.PerplexityChange,
                    stored.Transformer.Weights.ResidentBytes, other.Transformer.Weights.ResidentBytes), CliJson.Output.CompareJson);
                return 0;
            }
            Console.WriteLine($"{Path.GetFullPath(dir)}: {format.Name()} against the stored {stored.Transformer.Weights.WeightDType.Name()} weights over {result.Positions} positions of {Path.GetFileName(path)}");
            Console.WriteLine($"mean KL(stored ‖ {format.Name()})  {result.MeanKl:G4} nats/token (max {result.MaxKl:G4})");
            Console.WriteLine($"top-1 agreement         {result.Top1Agreement:P2}");
            Console.WriteLine($"perplexity              {result.ReferencePerplexity:F3} stored, {result.CandidatePerplexity:F3} {format.Name()} ({result.PerplexityChange:+0.00%;-0.00%})");
            Console.WriteLine($"weights held            {stored.Transformer.Weights.ResidentBytes / 1e6:F2} MB stored, {other.Transformer.Weights.ResidentBytes / 1e6:F2} MB {format.Name()}");
            return 0;
        }));
        return command;
    }
}

/// <summary><c>w2s compare --json</c>.</summary>
internal sealed record CompareJson(string Model, string Weights, string StoredDtype, int Positions, double MeanKl, double MaxKl, double Top1Agreement,
    double StoredPerplexity, double Perplexity, double PerplexityChange, long StoredWeightBytes, long WeightBytes);
