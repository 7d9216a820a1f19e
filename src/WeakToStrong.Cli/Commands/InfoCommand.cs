using System.CommandLine;
using Spectre.Console;
using WeakToStrong.Checkpoints;
using WeakToStrong.Engine;
using WeakToStrong.Tokenization;

namespace WeakToStrong.Cli.Commands;

/// <summary><c>w2s info --model DIR [--json]</c>: what a checkpoint is, without loading its weights; refuses every
/// checkpoint that loading refuses, with the same message.</summary>
internal static class InfoCommand
{
    public static Command Create()
    {
        var model = Cli.Model();
        var json = Cli.Json();
        var command = new Command("info", "Describe a model folder: family, sizes, dtype, parameters, tokenizer, EOS ids") { model, json };
        command.SetAction(r => Cli.Run(() =>
        {
            string dir = r.GetValue(model)!;
            using var checkpoint = Checkpoint.Open(dir);
            ModelWeights.Validate(checkpoint); // what loading checks (tensors present, shapes, dtypes), no weight bytes read
            var spec = checkpoint.Spec;
            string tokenizer;
            try
            {
                tokenizer = TextTokenizer.Load(dir).Kind;
            }
            catch (TokenizerException)
            {
                tokenizer = "none";
            }
            var dtypes = checkpoint.Files.SelectMany(f => f.Tensors).Select(t => t.DTypeName).Distinct().Order().ToArray();
            var info = new
            {
                directory = Path.GetFullPath(dir),
                family = spec.Family,
                vocab_size = spec.VocabSize,
                hidden_size = spec.Dim,
                layers = spec.Layers,
                heads = spec.Heads,
                kv_heads = spec.KvHeads,
                head_dim = spec.HeadDim,
                intermediate_size = spec.FeedForwardDim,
                max_positions = spec.MaxPositions,
                dtype = string.Join(",", dtypes),
                parameters = checkpoint.StoredParameterCount,
                tied_embeddings = spec.TiedEmbeddings,
                norm = spec.Norm.ToString(),
                positions = spec.Positions.ToString(),
                tokenizer,
                eos_token_ids = spec.EosTokenIds,
                bos_token_id = spec.BosTokenId,
                files = checkpoint.Files.Select(f => Path.GetFileName(f.FilePath)).ToArray(),
            };
            if (r.GetValue(json))
            {
                Cli.WriteJson(info);
                return 0;
            }
            var table = new Table().AddColumn("field").AddColumn("value").Border(TableBorder.Rounded);
            table.AddRow("family", info.family);
            table.AddRow("parameters", $"{info.parameters:N0}");
            table.AddRow("dtype", info.dtype);
            table.AddRow("vocab / hidden / layers", $"{info.vocab_size} / {info.hidden_size} / {info.layers}");
            table.AddRow("heads / kv heads / head dim", $"{info.heads} / {info.kv_heads} / {info.head_dim}");
            table.AddRow("intermediate", info.intermediate_size.ToString());
            table.AddRow("context", info.max_positions.ToString());
            table.AddRow("norm / positions", $"{info.norm} / {info.positions}");
            table.AddRow("tied embeddings", info.tied_embeddings.ToString());
            table.AddRow("tokenizer", Markup.Escape(info.tokenizer));
            table.AddRow("EOS ids", string.Join(", ", info.eos_token_ids));
            table.AddRow("files", Markup.Escape(string.Join(", ", info.files)));
            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }
}
