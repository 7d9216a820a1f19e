// Weak-to-strong search as an IChatClient: a large model steered by a small tuned/untuned pair.
// Usage: dotnet run -- LARGE_DIR TUNED_DIR UNTUNED_DIR "your prompt"
using Microsoft.Extensions.AI;
using WeakToStrong.ChatClient;
using WeakToStrong.Search;

if (args.Length != 4)
{
    Console.Error.WriteLine("usage: ChatClientSample LARGE_DIR TUNED_DIR UNTUNED_DIR PROMPT");
    return 2;
}

using var search = WeakToStrongSearch.Load(new SearchModelOptions { LargeDirectory = args[0], TunedDirectory = args[1], UntunedDirectory = args[2] });
IChatClient client = search.AsChatClient();

var options = new ChatOptions
{
    Temperature = 0.7f,
    MaxOutputTokens = 40,
    Seed = 1,
    AdditionalProperties = new() { ["w2s.method"] = "cbs", ["w2s.beam_width"] = 2, ["w2s.successors"] = 2, ["w2s.chunk_length"] = 5 },
};

// The text arrives as the search makes it final: the common prefix of every surviving candidate.
ChatResponseUpdate? last = null;
await foreach (var update in client.GetStreamingResponseAsync(args[3], options))
{
    Console.Write(update.Text);
    last = update;
}
Console.WriteLine();
Console.WriteLine($"score (log π_tuned − log π_untuned): {last?.AdditionalProperties?["w2s.score"]}");
return 0;
