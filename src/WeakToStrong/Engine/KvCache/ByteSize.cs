using System.Globalization;

namespace WeakToStrong.Engine.KvCache;

/// <summary>
/// A number of bytes as people write it: <c>1048576</c>, <c>1MB</c>, <c>512MiB</c>, <c>2GB</c>, <c>1.5 GiB</c>.
/// Decimal units (kB/KB, MB, GB, TB) are powers of 1000, binary units (KiB, MiB, GiB, TiB) powers of 1024; a bare
/// number (or one followed by <c>B</c>) is bytes. Units are case-insensitive, a space before the unit is allowed.
/// </summary>
public readonly record struct ByteSize(long Bytes) : IComparable<ByteSize>
{
    private static readonly (string Unit, long Factor)[] Units =
    [
        ("b", 1), ("kb", 1000), ("mb", 1000_000), ("gb", 1000_000_000), ("tb", 1000_000_000_000),
        ("kib", 1L << 10), ("mib", 1L << 20), ("gib", 1L << 30), ("tib", 1L << 40),
    ];

    /// <summary>Parses a size; throws <see cref="FormatException"/> whose message quotes the text and says what is wrong.</summary>
    public static ByteSize Parse(string text) =>
        TryParse(text, out var size, out string? error) ? size : throw new FormatException(error);

    /// <summary>Parses a size; on failure <paramref name="error"/> says why (quoting the text).</summary>
    public static bool TryParse(string? text, out ByteSize size, out string? error)
    {
        size = default;
        string trimmed = (text ?? "").Trim();
        int split = 0;
        while (split < trimmed.Length && (char.IsAsciiDigit(trimmed[split]) || trimmed[split] == '.')) split++;
        string number = trimmed[..split], unit = trimmed[split..].TrimStart().ToLowerInvariant();
        if (number.Length == 0 || !decimal.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal value))
        {
            error = $"'{text}' is not a size (examples: 1048576, 1MB, 512MiB, 2GB)";
            return false;
        }
        long factor = 0;
        if (unit.Length == 0) factor = 1;
        foreach (var (name, f) in Units)
            if (unit == name) factor = f;
        if (factor == 0)
        {
            error = $"'{text}': unknown unit '{trimmed[split..].TrimStart()}' (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)";
            return false;
        }
        decimal bytes = Math.Floor(value * factor);
        if (bytes > long.MaxValue)
        {
            error = $"'{text}' is too large (at most {long.MaxValue} bytes)";
            return false;
        }
        size = new ByteSize((long)bytes);
        error = null;
        return true;
    }

    public int CompareTo(ByteSize other) => Bytes.CompareTo(other.Bytes);

    /// <summary>The size in the largest binary unit that keeps it ≥ 1, e.g. "512 MiB", "1.5 GiB", "100 B".</summary>
    public override string ToString()
    {
        string[] names = ["B", "KiB", "MiB", "GiB", "TiB"];
        double value = Bytes;
        int i = 0;
        while (i < names.Length - 1 && Math.Abs(value) >= 1024)
        {
            value /= 1024;
            i++;
        }
        return i == 0 ? string.Create(CultureInfo.InvariantCulture, $"{Bytes} B") : string.Create(CultureInfo.InvariantCulture, $"{value:0.##} {names[i]}");
    }
}
