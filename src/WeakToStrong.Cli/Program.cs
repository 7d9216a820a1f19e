using System.CommandLine;
using WeakToStrong.Cli.Commands;

var root = new RootCommand("w2s — weak-to-strong search: steer a large model with a small tuned/untuned pair")
{
    InfoCommand.Create(),
    ScoreCommand.Create(),
    GenerateCommand.Create(),
    BenchCommand.Create(),
    KernelsCommand.Create(),
    SearchCommand.Create(),
    EvalCommand.Create(),
    ServeCommand.Create(),
};
return root.Parse(args).Invoke();
