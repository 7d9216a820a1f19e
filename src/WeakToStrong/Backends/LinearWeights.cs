namespace WeakToStrong.Backends;

/// <summary>How a model's linear weights are held by the backend (<see cref="IBackend.LoadLinear(ReadOnlySpan{byte}, DType, int, int, bool, LinearWeights)"/>).</summary>
public enum LinearWeights
{
    /// <summary>In the checkpoint's own dtype (F32, F16 or BF16): the model's exact values.</summary>
    Stored,

    /// <summary>
    /// Symmetric int8 with one F32 scale per group of inputs, quantized at load; activations are quantized per token
    /// and group as they enter each linear (CPU backend only; see docs/int8.md). Half the bytes of BF16 and twice the
    /// multiply-adds per instruction, at a measured cost in accuracy.
    /// </summary>
    Int8,
}

/// <summary>Spellings of <see cref="LinearWeights"/> for command lines and configuration.</summary>
public static class LinearWeightsNames
{
    /// <summary>"stored" or "int8".</summary>
    public static string Name(this LinearWeights weights) => weights switch
    {
        LinearWeights.Stored => "stored",
        LinearWeights.Int8 => "int8",
        _ => throw new ArgumentOutOfRangeException(nameof(weights), weights, null),
    };

    /// <summary>Parses "stored" or "int8" (case-insensitive); anything else throws <see cref="ArgumentException"/> listing both.</summary>
    public static LinearWeights Parse(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return value.Trim().ToLowerInvariant() switch
        {
            "stored" => LinearWeights.Stored,
            "int8" => LinearWeights.Int8,
            _ => throw new ArgumentException($"'{value}' is not a weight format (known: stored, int8)", nameof(value)),
        };
    }
}
