namespace WeakToStrong.Checkpoints;

/// <summary>
/// A checkpoint folder, config or safetensors file is missing, malformed or does not fit the model.
/// The message always names the file and, where there is one, the tensor or field.
/// </summary>
public sealed class CheckpointException : Exception
{
    public CheckpointException(string filePath, string? field, string problem, Exception? inner = null)
        : base(Format(filePath, field, problem), inner)
    {
        FilePath = filePath;
        Field = field;
    }

    /// <summary>The file (or folder) at fault.</summary>
    public string FilePath { get; }

    /// <summary>The tensor or config field at fault, when there is one.</summary>
    public string? Field { get; }

    private static string Format(string filePath, string? field, string problem) =>
        field is null ? $"{filePath}: {problem}" : $"{filePath}: '{field}': {problem}";
}
