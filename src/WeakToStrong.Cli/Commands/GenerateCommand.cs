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
        var prompt = new Option<string>("--prompt") { Description = "prompt text" };
        var promptTokens = new Option<string>("--prompt-tokens") { Description = "prompt token ids, e.g. 1,2,3" };
        var maxNew = new Option<int>("--max-new-tokens") { Description = "most tokens to generate", Required = true };
        var temperature = new Option<float>("--temperature") { Description = "0 = greedy", DefaultValueFactory = _ => 1f };
        var topK = new Option<int>("--top-k") { Description = "keep the K most likely tokens (0 = all)", DefaultValueFactory = _ => 0 };
        var topP = new Option<float>("--top-p") { Description = "nucleus probability (1 = all)", DefaultValueFactory = _ => 1f };
        var seed = new Option<ulong>("--seed") { Description = "RNG seed", DefaultValueFactory = _ => 0UL };
        var device = Cli.Device();
        var weights = WeightsOption.Create();
        var json = Cli.Json();
        var command = new Command("generate", "Generate a continuation with one model")
        {
            model, prompt, promptTokens, maxNew, temperature, topK, topP, seed, device, weights, json,
        };
        command.SetAction(r => Cli.Run(() =>
        {
            string dir = r.GetValue(model)!;
            TextTokenizer? tokenizer = null;
            TextTokenizer Tok() => tokenizer ??= Cli.LoadTokenizer(dir);
            var p = Cli.TextOrTokens(r.GetValue(prompt), r.GetValue(promptTokens), "--prompt", "--prompt-tokens", Tok, addBos: true, allowEmpty: false);
            int max = r.GetValue(maxNew);
            if (max < 0) throw new UsageException("--max-new-tokens must be ≥ 0");
            var sampling = new SamplingSettings(r.GetValue(temperature), r.GetValue(topK), r.GetValue(topP), r.GetValue(seed));
            try
            {
                sampling.Validate();
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw new UsageException($"--{e.ParamName switch { "TopK" => "top-k", "TopP" => "top-p", _ => "temperature" }}: {e.Message.Split(" (Parameter")[0]}");
            }
            using var lm = LanguageModel.Load(dir, new ModelOptions { Device = r.GetValue(device)!, Weights = WeightsOption.Parse(r.GetValue(weights)!) });
            if (p.Length >= lm.Spec.MaxPositions)
                throw new UsageException($"the prompt has {p.Length} tokens; the model's context is {lm.Spec.MaxPositions}");
            bool asJson = r.GetValue(json);
            var decoder = lm.HasTokenizer ? lm.Tokenizer : null;
            var stream = asJson ? null : new TextStream(decoder);
            var tokens = lm.Generate(p, max, sampling, onToken: stream is null ? null : stream.Add);
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
