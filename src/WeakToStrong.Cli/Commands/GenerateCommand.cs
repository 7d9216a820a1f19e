using System.CommandLine;
using WeakToStrong.Cli.Json;
using WeakToStrong.Engine;
using WeakToStrong.Tokenization;

namespace WeakToStrong.Cli.Commands;

/// <summary><c>w2s generate</c>: sample from one model; temperature 0 is greedy; stops at EOS.</summary>
internal static class GenerateCommand
{
    public static Command Create()
    {
        var model = Cli.Model();
        var prompt = new TextOrTokensOptions("prompt");
        var sampling = SamplingOptions.ForGenerate();
        var device = Cli.Device();
        var weights = WeightsOption.Create();
        var json = Cli.Json();
        var command = new Command("generate", "Generate a continuation with one model") { model };
        Option[] options = [.. prompt.All, .. sampling.All, device, weights, json];
        foreach (var option in options) command.Options.Add(option);
        command.SetAction(r => Cli.Run(() =>
        {
            string dir = r.GetValue(model)!;
            TextTokenizer? tokenizer = null;
            TextTokenizer Tok() => tokenizer ??= Cli.LoadTokenizer(dir);
            var p = prompt.Read(r, Tok, addBos: true);
            int max = r.GetValue(sampling.MaxNewTokens);
            if (max < 0) throw new UsageException("--max-new-tokens must be ≥ 0");
            var settings = sampling.Settings(r).Validate();
            using var lm = LanguageModel.Load(dir, new ModelOptions { Device = r.GetValue(device)!, Weights = WeightsOption.Parse(r.GetValue(weights)!) });
            prompt.CheckVocabulary(r, p, lm.Spec.VocabSize);
            if (p.Length >= lm.Spec.MaxPositions)
                throw new UsageException($"the prompt has {p.Length} tokens; the model's context is {lm.Spec.MaxPositions}");
            bool asJson = r.GetValue(json);
            var decoder = lm.HasTokenizer ? lm.Tokenizer : null;
            var stream = asJson ? null : new TextStream(decoder);
            var tokens = lm.Generate(p, max, settings, onToken: stream is null ? null : stream.Add);
            string? text = decoder?.Decode(tokens);
            if (asJson)
            {
                Cli.WriteJson(new GenerateJson(tokens, text), CliJson.Output.GenerateJson);
                return 0;
            }
            stream!.Finish();
            return 0;
        }));
        return command;
    }

    /// <summary>
    /// Prints text as tokens arrive. Byte-level tokens can split a UTF-8 character, so the decoded text is held
    /// back while it ends in a replacement character. Without a tokenizer, token ids are printed.
    /// </summary>
    private sealed class TextStream(TextTokenizer? tokenizer)
    {
        private readonly List<int> _tokens = [];
        private int _printed;

        public void Add(int token)
        {
            _tokens.Add(token);
            if (tokenizer is null)
            {
                Console.Write((_tokens.Count > 1 ? "," : "") + token);
                return;
            }
            string text = tokenizer.Decode(_tokens);
            if (text.EndsWith('\uFFFD') || text.Length <= _printed) return;
            Console.Write(text[_printed..]);
            _printed = text.Length;
        }

        public void Finish()
        {
            if (tokenizer is not null)
            {
                string text = tokenizer.Decode(_tokens);
                if (text.Length > _printed) Console.Write(text[_printed..]);
            }
            Console.WriteLine();
        }
    }
}
