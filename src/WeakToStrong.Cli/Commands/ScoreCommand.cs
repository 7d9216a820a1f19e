using System.CommandLine;
using WeakToStrong.Cli.Json;
using WeakToStrong.Engine;
using WeakToStrong.Tokenization;

namespace WeakToStrong.Cli.Commands;

/// <summary>
/// <c>w2s score</c>: log p(continuation[i] | prompt, continuation[&lt;i]) for each continuation token.
/// Text prompts get the tokenizer's BOS when the model expects one; continuations never do.
/// </summary>
internal static class ScoreCommand
{
    public static Command Create()
    {
        var model = Cli.Model();
        var prompt = new TextOrTokensOptions("prompt");
        var continuation = new TextOrTokensOptions("continuation");
        var device = Cli.Device();
        var weights = WeightsOption.Create();
        var json = Cli.Json();
        var command = new Command("score", "Log-probabilities of a continuation given a prompt") { model };
        Option[] options = [.. prompt.All, .. continuation.All, device, weights, json];
        foreach (var option in options) command.Options.Add(option);
        command.SetAction(r => Cli.Run(() =>
        {
            string dir = r.GetValue(model)!;
            TextTokenizer? tokenizer = null;
            TextTokenizer Tok() => tokenizer ??= Cli.LoadTokenizer(dir);
            var p = prompt.Read(r, Tok, addBos: true);
            var c = continuation.Read(r, Tok, addBos: false);
            using var lm = LanguageModel.Load(dir, new ModelOptions { Device = r.GetValue(device)!, Weights = WeightsOption.Parse(r.GetValue(weights)!) });
            prompt.CheckVocabulary(r, p, lm.Spec.VocabSize);
            continuation.CheckVocabulary(r, c, lm.Spec.VocabSize);
            var logprobs = lm.Score(p, c);
            double total = logprobs.Sum(x => (double)x);
            if (r.GetValue(json))
            {
                Cli.WriteJson(new ScoreJson(p, c, logprobs, total), CliJson.Output.ScoreJson);
                return 0;
            }
            for (int i = 0; i < c.Length; i++)
            {
                string piece = tokenizer is not null ? tokenizer.Decode([c[i]], skipSpecialTokens: false) : "";
                Console.WriteLine($"{c[i],8} {logprobs[i],12:F6}  {piece.ReplaceLineEndings("\\n")}");
            }
            Console.WriteLine($"total {total:F6} over {c.Length} tokens");
            return 0;
        }));
        return command;
    }
}
