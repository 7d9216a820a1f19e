using System.ClientModel;
using Microsoft.Extensions.AI;
using OpenAI;
using WeakToStrong.ChatClient;
using WeakToStrong.Tests.Server;

namespace WeakToStrong.Tests.ChatClient;

/// <summary>
/// Microsoft.Extensions.AI.OpenAI's IChatClient pointed at <c>w2s serve</c> (a real server on loopback) and our
/// in-process chat client over the same search give the same text for the same seed.
/// </summary>
[Trait("Category", "Integration")]
public sealed class OpenAiProviderTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private static readonly Microsoft.Extensions.AI.ChatMessage[] Messages =
        [new(ChatRole.System, "Be brief."), new(ChatRole.User, "What did you think of the film?")];

    private IChatClient Remote => new OpenAIClient(new ApiKeyCredential("unused"), new OpenAIClientOptions { Endpoint = new Uri(server.Server.BaseAddress, "v1") })
        .GetChatClient(ServerFixture.Model).AsIChatClient();

    [Theory]
    [InlineData(21)]
    [InlineData(22)]
    public async Task TheOpenAiProviderAgainstTheServerGivesTheInProcessText(long seed)
    {
        var options = new ChatOptions { Seed = seed, MaxOutputTokens = 9, Temperature = 0.7f };
        using var local = server.Search.AsChatClient();
        using var remote = Remote;

        var expected = await local.GetResponseAsync(Messages, options);
        var plain = await remote.GetResponseAsync(Messages, options);
        Assert.Equal(expected.Text, plain.Text);
        Assert.Equal(expected.FinishReason, plain.FinishReason);
        Assert.Equal(expected.Usage!.OutputTokenCount, plain.Usage!.OutputTokenCount);

        var streamed = new List<ChatResponseUpdate>();
        await foreach (var update in remote.GetStreamingResponseAsync(Messages, options)) streamed.Add(update);
        Assert.Equal(expected.Text, string.Concat(streamed.Select(u => u.Text)));
    }
}
