using System.Net;
using System.Text;
using System.Text.Json;
using WeakToStrong.Engine.Scheduling;
using WeakToStrong.Search;

namespace WeakToStrong.Tests.Server;

/// <summary>
/// Many clients at once on one engine loop: 50 mixed requests (completions and chat, streamed and not, every
/// method) each return what they return alone; clients that disconnect mid-stream stop their searches; and
/// afterwards every model's KV blocks in use are back to 0.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ServerLoadTests(ServerFixture server) : IClassFixture<ServerFixture>
{
    private const string M = ServerFixture.Model;

    private sealed record Call(string Path, string Json, bool Stream, bool Chat, int Choices);

    private static Call Mixed(int i)
    {
        int seed = 1000 + i, max = 6 + i % 5;
        return (i % 5) switch
        {
            0 => new("v1/completions", $$"""{"model":"{{M}}","prompt":"Request {{i}} begins","max_tokens":{{max}},"seed":{{seed}},"method":"sample"}""", false, false, 1),
            1 => new("v1/completions", $$$"""{"model":"{{{M}}}","prompt":"Request {{{i}}} begins","max_tokens":{{{max}}},"seed":{{{seed}}},"stream":true,"search":{"method":"cbs","beam_width":2,"successors":2,"chunk_length":3}}""", true, false, 1),
            2 => new("v1/chat/completions", $$$"""{"model":"{{{M}}}","messages":[{"role":"user","content":"Request {{{i}}}"}],"max_tokens":{{{max}}},"seed":{{{seed}}},"search":{"method":"bon","n":3}}""", false, true, 1),
            3 => new("v1/chat/completions", $$"""{"model":"{{M}}","messages":[{"role":"user","content":"Request {{i}}"}],"max_tokens":{{max}},"seed":{{seed}},"stream":true,"method":"eft"}""", true, true, 1),
            _ => new("v1/completions", $$"""{"model":"{{M}}","prompt":"Request {{i}} begins","max_tokens":{{max}},"seed":{{seed}},"n":2,"stream":true,"method":"sample"}""", true, false, 2),
        };
    }

    private async Task<string[]> Texts(Call call)
    {
        if (call.Stream)
        {
            var events = await Api.StreamAsync(server.Http, call.Path, call.Json);
            return Enumerable.Range(0, call.Choices).Select(c => Api.StreamedText(events, c, call.Chat)).ToArray();
        }
        var body = await Api.OkAsync(server.Http, call.Path, call.Json);
        return Enumerable.Range(0, call.Choices).Select(c => Api.Text(body, c, call.Chat)).ToArray();
    }

    [Fact]
    public async Task FiftyConcurrentMixedRequestsEqualTheirSoloResults()
    {
        var calls = Enumerable.Range(0, 50).Select(Mixed).ToList();
        var solo = new List<string[]>();
        foreach (var call in calls) solo.Add(await Texts(call));

        var batches = new List<BatchedForward>();
        void Record(BatchedForward b)
        {
            lock (batches) batches.Add(b);
        }
        server.Search.Loop!.ForwardCompleted += Record;
        string[][] together;
        try
        {
            together = await Task.WhenAll(calls.Select(c => Task.Run(() => Texts(c))));
        }
        finally
        {
            server.Search.Loop.ForwardCompleted -= Record;
        }

        for (int i = 0; i < calls.Count; i++) Assert.Equal(solo[i], together[i]);
        Assert.True(batches.Max(b => b.Submissions) >= 5, $"requests should share forwards; the most callers in one forward was {batches.Max(b => b.Submissions)}");
        await AssertIdle();
    }

    [Fact]
    public async Task ClientsThatDisconnectStopTheirSearchesAndFreeTheirKv()
    {
        const int streams = 6, maxTokens = 180;
        var large = server.Search.LocalModels[0].Transformer;
        long before = large.TokensProcessed;

        // A non-streamed request whose client gives up before the answer: cancelled from the engine loop right
        // after the request's first forward (nothing else runs on this server yet), so it cannot have been answered.
        // Cancelling once other clients were done instead raced it: under load it sometimes finished first.
        using var cancel = new CancellationTokenSource();
        void GiveUp(BatchedForward _) => cancel.Cancel();
        server.Search.Loop!.ForwardCompleted += GiveUp;
        try
        {
            var gaveUp = Api.PostAsync(server.Http, "v1/completions", $$"""{"model":"{{M}}","prompt":"Impatient","max_tokens":{{maxTokens}},"seed":1,"method":"sample"}""", cancel.Token);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => gaveUp);
        }
        finally
        {
            server.Search.Loop.ForwardCompleted -= GiveUp;
        }

        var aborted = Enumerable.Range(0, streams).Select(async i =>
        {
            string method = i % 2 == 0 ? "sample" : "eft";
            using var request = new HttpRequestMessage(HttpMethod.Post, "v1/completions")
            {
                Content = new StringContent($$"""{"model":"{{M}}","prompt":"Disconnect {{i}}","max_tokens":{{maxTokens}},"seed":{{i}},"stream":true,"method":"{{method}}"}""", Encoding.UTF8, "application/json"),
            };
            var response = await server.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
            // Wait for real text, then hang up.
            while (await reader.ReadLineAsync() is { } line)
                if (line.StartsWith("data: {", StringComparison.Ordinal) && JsonDocument.Parse(line[6..]).RootElement.GetProperty("choices")[0].GetProperty("text").GetString() != "")
                    break;
            response.Dispose();
        }).ToList();
        await Task.WhenAll(aborted);

        await AssertIdle();
        // Had they run to the end, the large model would have fed every token of every candidate.
        long fed = large.TokensProcessed - before;
        Assert.True(fed < (streams + 1) * maxTokens, $"disconnected searches should stop early; the large model fed {fed} tokens");
        await Api.OkAsync(server.Http, "v1/completions", $$"""{"model":"{{M}}","prompt":"after","max_tokens":3,"method":"sample"}""");
    }

    /// <summary>Every request has released its reservation and every model's KV blocks.</summary>
    private async Task AssertIdle()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(1);
        while (server.Server.Admission.Running > 0 || server.Search.LocalModels.Any(m => m.Transformer.Cache.UsedBlocks > 0))
        {
            Assert.True(DateTime.UtcNow < deadline,
                $"still running {server.Server.Admission.Running}; KV in use {string.Join(", ", server.Search.LocalModels.Select(m => m.Transformer.Cache.UsedBlocks))}");
            await Task.Delay(10);
        }
        Assert.Equal(0, server.Server.Admission.Queued);
        for (int m = 0; m < server.Server.Admission.Models; m++) Assert.Equal(0, server.Server.Admission.Reserved(m));
    }
}
