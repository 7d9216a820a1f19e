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
        var prompt = new Option<string>("--prompt") { Description = "prompt text" };
        var promptTokens = new Option<string>("--prompt-tokens") { Description = "prompt token ids, e.g. 1,2,3" };
        var continuation = new Option<string>("--continuation") { Description = "continuation text" };
        var continuationTokens = new Option<string>("--continuation-tokens") { Description = "continuation token ids" };
        var device = Cli.Device();
        var weights = WeightsOption.Create();
        var json = Cli.Json();
        var command = new Command("score", "Log-probabilities of a continuation given a prompt")
        {
            model, prompt, promptTokens, continuation, continuationTokens, device, weights, json,
        };
        command.SetAction(r => Cli.Run(() =>
        {
            string dir = r.GetValue(model)!;
            TextTokenizer? tokenizer = null;
            TextTokenizer Tok() => tokenizer ??= Cli.LoadTokenizer(dir);
            var p = Cli.TextOrTokens(r.GetValue(prompt), r.GetValue(promptTokens), "--prompt", "--prompt-tokens", Tok, addBos: true, allowEmpty: false);
            var c = Cli.TextOrTokens(r.GetValue(continuation), r.GetValue(continuationTokens), "--continuation", "--continuation-tokens", Tok, addBos: false, allowEmpty: false);
            using var lm = LanguageModel.Load(dir, new ModelOptions { Device = r.GetValue(device)!, Weights = WeightsOption.Parse(r.GetValue(weights)!) });
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
