using System.CommandLine;
using Spectre.Console;
using WeakToStrong.Checkpoints;
using WeakToStrong.Cli.Json;
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
            var info = new InfoJson(
                Directory: Path.GetFullPath(dir),
                Family: spec.Family,
                VocabSize: spec.VocabSize,
                HiddenSize: spec.Dim,
                Layers: spec.Layers,
                Heads: spec.Heads,
                KvHeads: spec.KvHeads,
                HeadDim: spec.HeadDim,
                IntermediateSize: spec.FeedForwardDim,
                MaxPositions: spec.MaxPositions,
                Dtype: string.Join(",", dtypes),
                Parameters: checkpoint.StoredParameterCount,
                TiedEmbeddings: spec.TiedEmbeddings,
                Norm: spec.Norm.ToString(),
                Positions: spec.Positions.ToString(),
                Tokenizer: tokenizer,
                EosTokenIds: spec.EosTokenIds,
                BosTokenId: spec.BosTokenId,
                Files: checkpoint.Files.Select(f => Path.GetFileName(f.FilePath)).ToArray());
            if (r.GetValue(json))
            {
                Cli.WriteJson(info, CliJson.Output.InfoJson);
                return 0;
            }
            var table = new Table().AddColumn("field").AddColumn("value").Border(TableBorder.Rounded);
            table.AddRow("family", info.Family);
            table.AddRow("parameters", $"{info.Parameters:N0}");
            table.AddRow("dtype", info.Dtype);
            table.AddRow("vocab / hidden / layers", $"{info.VocabSize} / {info.HiddenSize} / {info.Layers}");
            table.AddRow("heads / kv heads / head dim", $"{info.Heads} / {info.KvHeads} / {info.HeadDim}");
            table.AddRow("intermediate", info.IntermediateSize.ToString());
            table.AddRow("context", info.MaxPositions.ToString());
            table.AddRow("norm / positions", $"{info.Norm} / {info.Positions}");
            table.AddRow("tied embeddings", info.TiedEmbeddings.ToString());
            table.AddRow("tokenizer", Markup.Escape(info.Tokenizer));
            table.AddRow("EOS ids", string.Join(", ", info.EosTokenIds));
            table.AddRow("files", Markup.Escape(string.Join(", ", info.Files)));
            AnsiConsole.Write(table);
            return 0;
        }));
        return command;
    }
}
