using System.Net;
using System.Text.Json;
using WeakToStrong.Server;

namespace WeakToStrong.Tests.Server;

/// <summary>/metrics scraped after known traffic: every count equals what the clients saw.</summary>
[Trait("Category", "Integration")]
[Collection(ExactMetricsCollection.Name)]
public sealed class DeploymentMetricsTests(ServerModels models)
{
    private const string M = ServerFixture.Model;

    [Fact]
    public async Task MetricsCountWhatTheClientsSaw()
    {
        using var search = models.Load(kvBlocks: 512);
        var server = await W2sServer.StartAsync(search, new ServerOptions { Port = 0, Limits = ServerFixture.Limits });
        await using var _ = server;
        using var http = new HttpClient { BaseAddress = server.BaseAddress };

        long large = 0, small = 0;
        foreach (var (method, tokens) in new[] { ("sample", 5), ("cbs", 6), ("bon", 4) })
        {
            var body = await Api.OkAsync(http, "v1/completions",
                $$$"""{"model":"{{{M}}}","prompt":"The film was","max_tokens":{{{tokens}}},"seed":1,"search":{"method":"{{{method}}}","beam_width":2,"successors":2,"chunk_length":3,"n":3}}""");
            large += body.GetProperty("usage").GetProperty("large_tokens_sampled").GetInt64();
            small += body.GetProperty("usage").GetProperty("small_tokens_scored").GetInt64();
        }
        var (status, _, _) = await Api.PostAsync(http, "v1/chat/completions", """{"model":"nope","messages":[]}""");
        Assert.Equal(HttpStatusCode.NotFound, status); // model_not_found

        string text = await http.GetStringAsync("metrics");
        Assert.Equal(3, MetricsText.Value(text, "w2s_requests_total", ("endpoint", "completions"), ("status", "200")));
        Assert.Equal(1, MetricsText.Value(text, "w2s_requests_total", ("endpoint", "chat_completions"), ("status", "404")));
        Assert.Equal(4, MetricsText.Value(text, "w2s_requests_total"));
        Assert.Equal(large, MetricsText.Value(text, "w2s_large_tokens_sampled_total"));
        Assert.Equal(small, MetricsText.Value(text, "w2s_small_tokens_scored_total"));
        Assert.Equal(0, MetricsText.Value(text, "w2s_queue_depth"));
        foreach (var (role, model) in Enumerable.Range(0, search.Admission.Models).Select(search.Admission.Name).Zip(search.LocalModels))
        {
            // At rest every block is free again, and the two gauges add up to the pool.
            Assert.Equal(0, MetricsText.Value(text, "w2s_kv_blocks_in_use", ("model", role)));
            Assert.Equal(model.Transformer.Cache.TotalBlocks, MetricsText.Value(text, "w2s_kv_blocks_free", ("model", role)));
            double forwards = MetricsText.Value(text, "w2s_forward_duration_seconds_count", ("model", role));
            Assert.True(forwards > 0, $"{role}: no forward recorded");
            Assert.True(MetricsText.Value(text, "w2s_forward_duration_seconds_sum", ("model", role)) > 0);
        }
        Assert.Equal(1, MetricsText.Value(text, "w2s_requests_in_flight")); // the scrape itself
        Assert.Equal(0, MetricsText.Value(text, "w2s_draining"));
    }

    [Fact]
    public async Task KvBlocksInUseShowWhileARequestRuns()
    {
        using var search = models.Load(kvBlocks: 512);
        search.Loop!.ForwardCompleted += _ => Thread.Sleep(10);
        var server = await W2sServer.StartAsync(search, new ServerOptions { Port = 0, Limits = ServerFixture.Limits });
        await using var _ = server;
        using var http = new HttpClient { BaseAddress = server.BaseAddress };
        var running = Api.OkAsync(http, "v1/completions", $$$"""{"model":"{{{M}}}","prompt":"The film was","max_tokens":120,"search":{"method":"sample"}}""");
        double inUse = 0;
        while (!running.IsCompleted && inUse == 0)
            inUse = MetricsText.Value(await http.GetStringAsync("metrics"), "w2s_kv_blocks_in_use", ("model", "large"));
        Assert.True(inUse > 0, "a running request holds KV blocks");
        await running;
        string text = await http.GetStringAsync("metrics");
        Assert.Equal(0, MetricsText.Value(text, "w2s_kv_blocks_in_use"));
        Assert.Equal(search.LocalModels.Sum(m => m.Transformer.Cache.TotalBlocks), MetricsText.Value(text, "w2s_kv_blocks_free"));
    }
}
