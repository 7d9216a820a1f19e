namespace WeakToStrong.Cli.Commands;

/// <summary>
/// The sentiment models trained for this project (samples/sentiment; recipe in its README.md): a Llama "large"
/// model and a GPT-2 tuned/untuned pair (DPO on AFINN-labelled preferences), plus a pair on a second tokenizer.
/// The build copies them next to w2s (models/sentiment); a run from a source tree also finds samples/sentiment.
/// </summary>
internal static class BundledModels
{
    public const string Large = "large";
    public const string Tuned = "tuned";
    public const string Untuned = "untuned";
    public const string TunedCrossTokenizer = "tuned-xtok";
    public const string UntunedCrossTokenizer = "untuned-xtok";

    /// <summary>The folder holding the bundled model folders.</summary>
    /// <exception cref="UsageException">Neither beside w2s nor in a source tree above the working directory.</exception>
    public static string Root()
    {
        string beside = Path.Combine(AppContext.BaseDirectory, "models", "sentiment");
        if (IsRoot(beside)) return beside;
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "samples", "sentiment");
            if (IsRoot(candidate)) return candidate;
        }
        throw new UsageException($"the bundled models are missing (looked in {beside} and for samples/sentiment above {Directory.GetCurrentDirectory()}); pass --large, --tuned and --untuned");
    }

    public static string Folder(string name) => Path.Combine(Root(), name);

    private static bool IsRoot(string folder) =>
        File.Exists(Path.Combine(folder, Large, "config.json")) && File.Exists(Path.Combine(folder, Tuned, "config.json"))
        && File.Exists(Path.Combine(folder, Untuned, "config.json"));
}
