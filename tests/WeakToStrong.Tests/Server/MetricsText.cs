using System.Globalization;

namespace WeakToStrong.Tests.Server;

/// <summary>Reads samples out of Prometheus text exposition (<c>name{label="value",…} number</c>).</summary>
internal static class MetricsText
{
    /// <summary>The sum of every sample of <paramref name="name"/> carrying all of <paramref name="labels"/> (0 when none does).</summary>
    public static double Value(string text, string name, params (string Label, string Value)[] labels)
    {
        double sum = 0;
        foreach (var raw in text.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            if (line.StartsWith('#') || !line.StartsWith(name, StringComparison.Ordinal)) continue;
            string rest = line[name.Length..];
            string labelText = "";
            if (rest.StartsWith('{'))
            {
                int close = rest.IndexOf('}');
                labelText = rest[1..close];
                rest = rest[(close + 1)..];
            }
            else if (!rest.StartsWith(' '))
            {
                continue; // another metric whose name starts with this one
            }
            if (!labels.All(l => labelText.Contains($"{l.Label}=\"{l.Value}\"", StringComparison.Ordinal))) continue;
            sum += double.Parse(rest.Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        }
        return sum;
    }
}
