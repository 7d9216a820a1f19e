using System.CommandLine;
using WeakToStrong.Backends;

namespace WeakToStrong.Cli.Commands;

/// <summary><c>--weights stored|int8</c> (and the per-model <c>--large-weights</c>, <c>--small-weights</c> of the search
/// commands): how a local model's linear weights are held (<see cref="LinearWeights"/>).</summary>
internal static class WeightsOption
{
    /// <summary>The option for every local model of a command, default "stored".</summary>
    public static Option<string> Create() =>
        new("--weights") { Description = "linear weights: stored (as in the checkpoint) or int8 (quantized at load; cpu only; see docs/int8.md)", DefaultValueFactory = _ => "stored" };

    /// <summary>An option overriding <c>--weights</c> for some of the models; absent means the same.</summary>
    public static Option<string> Override(string name, string models) =>
        new(name) { Description = $"linear weights of {models} when they differ from --weights: stored or int8" };

    /// <summary>The value as a <see cref="LinearWeights"/>; an unknown one is a usage error naming the option.</summary>
    public static LinearWeights Parse(string value, string option = "--weights")
    {
        try
        {
            return LinearWeightsNames.Parse(value);
        }
        catch (ArgumentException)
        {
            throw new UsageException($"{option}: '{value}' is not a weight format (stored, int8)");
        }
    }

    /// <summary><see cref="Parse"/> of an override, null when it is absent.</summary>
    public static LinearWeights? ParseOverride(string? value, string option) => value is null ? null : Parse(value, option);
}
