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
    CompareCommand.Create(),
};
var parsed = root.Parse(args);
// A usage error is one line naming the option or token, exit code 2 (System.CommandLine's default prints the whole help
// and exits 1). --help and --version parse without errors and keep their own actions.
if (parsed.Errors.Count > 0)
{
    string hint = parsed.CommandResult.Command == root ? "w2s --help" : $"w2s {parsed.CommandResult.Command.Name} --help";
    // The error about a token the user typed (a bad value, an unknown option) before "Option '--x' is required".
    var error = parsed.Errors.FirstOrDefault(e => args.Any(a => e.Message.Contains($"'{a}'", StringComparison.Ordinal))) ?? parsed.Errors[0];
    Console.Error.WriteLine($"error: {error.Message} (see {hint})");
    return 2;
}
// `w2s serve` leaves SIGTERM/SIGINT to its web host, which drains for --shutdown-timeout and exits 0;
// System.CommandLine's own handler would end the process 2 s after the signal, with exit code 143/130.
return parsed.Invoke(parsed.CommandResult.Command.Name == "serve" ? new InvocationConfiguration { ProcessTerminationTimeout = null } : new InvocationConfiguration());
