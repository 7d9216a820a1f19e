using Microsoft.Extensions.AI;
using WeakToStrong.ChatClient;
using WeakToStrong.Engine.Scheduling;
using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;
using WeakToStrong.Tests.Search;
using WeakToStrong.Tokenization;

namespace WeakToStrong.Tests.ChatClient;

/// <summary>The chat client reserves each request's KV with the search's admission control (pools of 1024 blocks of 16 tokens).</summary>
[Trait("Category", "Integration")]
public sealed class ChatClientAdmissionTests(SearchModelsFixture models) : IClassFixture<SearchModelsFixture>
{
    private const string User = "Tell me about the movie you watched";

    private static readonly ChatMessage[] Messages = [new(ChatRole.User, User)];

    /// <summary>EOS off, so every candidate samples exactly MaxOutputTokens tokens.</summary>
    private static WeakToStrongChatClientOptions NoEos(int maxQueue = int.MaxValue, bool admission = true) => new()
    {
        Defaults = new SearchRequest { Prompt = "", Chat = true, EosTokenIds = [] },
        MaxQueue = maxQueue,
        AdmissionControl = admission,
    };

    private static ChatOptions Options(int maxTokens, string method, params (string Key, object? Value)[] w2s)
    {
        var options = new ChatOptions { MaxOutputTokens = maxTokens, Seed = 5, AdditionalProperties = new() { [WeakToStrongChatKeys.Method] = method } };
        foreach (var (key, value) in w2s) options.AdditionalProperties[key] = value;
        return options;
    }

    /// <summary>A large model that counts the searches that started on it.</summary>
    private sealed class CountingLargeModel(ILargeModel inner) : ILargeModel
    {
        public int Starts;

        public string Name => inner.Name;

        public TextTokenizer? Tokenizer => inner.Tokenizer;

        public Task<LargeCandidate> StartAsync(string prompt, GenerationSettings settings, SearchCounters counters, CancellationToken cancellationToken = default)
        {
            Interlocked.Increment(ref Starts);
            return inner.StartAsync(prompt, settings, counters, cancellationToken);
        }

        public Task ExtendAsync(IReadOnlyList<LargeCandidate> candidates, int maxTokens, SearchCounters counters, CancellationToken cancellationToken = default) =>
            inner.ExtendAsync(candidates, maxTokens, counters, cancellationToken);

        public void Dispose() => inner.Dispose();
    }

    [Fact]
    public async Task ARequestThatCouldNeverFitIsRefusedBeforeAnyWorkWithTheNumbers()
    {
        // Best-of-200 with 100 new tokens: the large model is not local, so the small pair's pools are reserved.
        var large = new CountingLargeModel(new LocalLargeModel(models.Large));
        using var search = new WeakToStrongSearch(large, models.Tuned, models.Untuned);
        using var client = search.AsChatClient(NoEos());
        var options = Options(100, "bon", (WeakToStrongChatKeys.N, 200));

        // By hand (KvDemand's tree with one chunk): the root's prompt blocks, and each of the N samples owns the
        // blocks from the one holding the prompt's last token to prompt + 100 + the scorer's 2 extra tokens.
        int p = models.Tuned.EncodePrompt(User, chat: true).Tokens.Count;
        long need = (p + 15) / 16 + 200L * ((p + 100 + 2 + 15) / 16 - (p - 1) / 16);
        Assert.True(need > 1024, $"the shape should not fit: {need} blocks");

        var never = await Assert.ThrowsAsync<KvNeverFitsException>(() => client.GetResponseAsync(Messages, options));
        Assert.Equal(("tuned", need, 1024L, 16), (never.Model, never.BlocksNeeded, never.PoolBlocks, never.BlockSize));
        var streamed = await Assert.ThrowsAsync<KvNeverFitsException>(async () =>
        {
            await foreach (var _ in client.GetStreamingResponseAsync(Messages, options)) { }
        });
        Assert.Equal(need, streamed.BlocksNeeded);
        Assert.Equal(0, large.Starts);
        Assert.Equal((0, 0), (search.Admission.Running, search.Admission.Queued));

        // Without admission control the search itself refuses it, naming the parameter to lower.
        using var withoutAdmission = search.AsChatClient(NoEos(admission: false));
        var alone = await Assert.ThrowsAnyAsync<ArgumentException>(() => withoutAdmission.GetResponseAsync(Messages, options));
        Assert.Equal(nameof(SearchRequest.N), alone.ParamName);
        Assert.Equal(0, large.Starts);
    }

    [Fact]
    public async Task CallsBeyondCapacityWaitInArrivalOrderAndPastTheQueueBoundAreRefused()
    {
        using var search = new WeakToStrongSearch(new LocalLargeModel(models.Large), models.Tuned, models.Untuned);
        var admission = search.Admission;
        Assert.Equal(new[] { "large", "tuned", "untuned" }, Enumerable.Range(0, admission.Models).Select(admission.Name));
        var expected = await search.AsChatClient(NoEos()).GetResponseAsync(Messages, Options(12, "sample"));

        // Every pool but one block is held, and any request needs at least a prompt block and a response block.
        var held = await admission.AcquireAsync([.. Enumerable.Range(0, admission.Models).Select(m => (long)admission.Pool(m).TotalBlocks - 1)], CancellationToken.None);
        using var patient = search.AsChatClient(NoEos());
        using var bounded = search.AsChatClient(NoEos(maxQueue: 1));
        var waiting = Collect(bounded.GetStreamingResponseAsync(Messages, Options(12, "sample")));
        await Until(() => admission.Queued == 1);
        var behind = patient.GetResponseAsync(Messages, Options(12, "sample"));
        await Until(() => admission.Queued == 2);

        var full = await Assert.ThrowsAsync<KvQueueFullException>(() => bounded.GetResponseAsync(Messages, Options(12, "sample")));
        Assert.Equal((1, 2, 1, TimeSpan.FromSeconds(1)), (full.Running, full.Queued, full.MaxQueue, full.RetryAfter));
        Assert.False(waiting.IsCompleted);
        Assert.False(behind.IsCompleted);

        held.Dispose(); // both fit once the reservation ends, and run with the text they get alone
        Assert.Equal(expected.Text, await waiting.WaitAsync(TimeSpan.FromMinutes(2)));
        Assert.Equal(expected.Text, (await behind.WaitAsync(TimeSpan.FromMinutes(2))).Text);
        Assert.Equal((0, 0), (admission.Running, admission.Queued));
        for (int m = 0; m < admission.Models; m++) Assert.Equal(0, admission.Reserved(m));
        foreach (var model in search.LocalModels) Assert.Equal(0, model.Transformer.Cache.UsedBlocks);
    }

    [Fact]
    public async Task CancellingAWaitingCallLeavesTheQueue()
    {
        using var search = new WeakToStrongSearch(new LocalLargeModel(models.Large), models.Tuned, models.Untuned);
        var admission = search.Admission;
        using var held = await admission.AcquireAsync([.. Enumerable.Range(0, admission.Models).Select(m => (long)admission.Pool(m).TotalBlocks)], CancellationToken.None);
        using var client = search.AsChatClient(NoEos());
        using var cancel = new CancellationTokenSource();
        var waiting = client.GetResponseAsync(Messages, Options(12, "sample"), cancel.Token);
        await Until(() => admission.Queued == 1);

        cancel.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting);
        Assert.Equal((1, 0), (admission.Running, admission.Queued));
    }

    private static async Task<string> Collect(IAsyncEnumerable<ChatResponseUpdate> updates)
    {
        var text = new System.Text.StringBuilder();
        await foreach (var update in updates) text.Append(update.Text);
        return text.ToString();
    }

    private static async Task Until(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for the queue");
            await Task.Delay(5);
        }
    }
}
