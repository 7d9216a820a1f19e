using System.CommandLine;
using Spectre.Console;
using WeakToStrong.Cli.Commands;

// Spectre trusts TERM even when stdout is a pipe or a file: keep escape codes out of redirected output.
if (Console.IsOutputRedirected) AnsiConsole.Profile.Capabilities.Ansi = false;

var root = new RootCommand("w2s — weak-to-strong search: steer a large model with a small tuned/untuned pair")
{
    DemoCommand.Create(),
    InfoCommand.Create(),
    ScoreCommand.Create(),
    GenerateCommand.Create(),
    BenchCommand.Create(),
    KernelsCommand.Create(),
    SearchCommand.Create(),
    EvalCommand.Create(),
    OpsCommand.Create(),
    ServeCommand.Create(),
};
return root.Parse(args).Invoke();
