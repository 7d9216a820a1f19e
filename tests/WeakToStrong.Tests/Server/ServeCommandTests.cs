using System.Diagnostics;
using System.Text.Json;
using WeakToStrong.Search.LargeModels;
using WeakToStrong.Server;
using WeakToStrong.Tests.Cli;

namespace WeakToStrong.Tests.Server;

/// <summary><c>w2s serve</c> as a process: it listens, serves, and can be another server's black-box large model.</summary>
[Trait("Category", "Integration")]
public sealed class ServeCommandTests(ServerFixture models) : IClassFixture<ServerFixture>
{
    /// <summary>A running <c>w2s serve</c> on a free loopback port; killed on dispose.</summary>
    private sealed class ServeProcess : IDisposable
    {
        private readonly Process _process;

        public ServeProcess(params string[] args)
        {
            _process = Process.Start(CliRunner.StartInfo(["serve", .. args]))!;
            var line = _process.StandardOutput.ReadLineAsync();
            if (!line.Wait(TimeSpan.FromMinutes(2)) || line.Result is not { } text || !text.StartsWith("listening on ", StringComparison.Ordinal))
            {
                Dispose();
                throw new InvalidOperationException($"w2s serve did not start: {line.Result} {_process.StandardError.ReadToEnd()}");
            }
            BaseAddress = new Uri(text["listening on ".Length..]);
        }

        public Uri BaseAddress { get; }

        public void Dispose()
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit(30_000);
            _process.Dispose();
        }
    }

    [Fact]
    public async Task ServeListensAndIsTheBlackBoxLargeModelOfAnotherServer()
    {
        string tiny = TestPaths.Fixture("gpt2-tiny");
        using var inner = new ServeProcess("--large", tiny, "--tuned", tiny, "--untuned", tiny, "--port", "0", "--kv-memory", "32MiB",
            "--served-model-name", "tiny", "--default-method", "sample");
        using var http = new HttpClient { BaseAddress = inner.BaseAddress };
        using (var list = JsonDocument.Parse(await http.GetStringAsync("v1/models")))
            Assert.Equal("tiny", list.RootElement.GetProperty("data")[0].GetProperty("id").GetString());
        var sampled = await Api.OkAsync(http, "v1/completions", """{"model":"tiny","prompt":"Hello","max_tokens":4,"n":3,"seed":1}""");
        Assert.Equal(3, sampled.GetProperty("choices").GetArrayLength());
        Assert.Equal("sample", sampled.GetProperty("search").GetProperty("method").GetString());

        // The in-process server's small pair steers the w2s serve process through --large-url's path.
        var remote = new OpenAiCompletionsModel(new OpenAiCompletionsOptions { Endpoint = new Uri(inner.BaseAddress, "v1"), Model = "tiny", MaxRetries = 1 });
        using var search = models.Load(kvBlocks: 1024, remoteLarge: remote);
        await using var outer = await W2sServer.StartAsync(search, new ServerOptions { Port = 0, Limits = ServerFixture.Limits });
        using var client = new HttpClient { BaseAddress = outer.BaseAddress };
        var body = await Api.OkAsync(client, "v1/chat/completions",
            $$$"""{"model":"{{{ServerFixture.Model}}}","messages":[{"role":"user","content":"Hello"}],"max_tokens":6,"seed":2,"search":{"method":"cbs","beam_width":2,"successors":2,"chunk_length":2}}""");
        var info = body.GetProperty("search");
        Assert.Equal(4L * info.GetProperty("chunks").GetInt32(), info.GetProperty("candidates_evaluated").GetInt64());
        Assert.True(info.GetProperty("chunks").GetInt32() >= 2);
    }

    [Theory]
    [InlineData("--port 70000", "--port must be between 0 and 65535")]
    [InlineData("--default-method beam", "--default-method: 'beam' is not one of")]
    [InlineData("--host 999.1.1.1", "--host: '999.1.1.1' is not an IP address, localhost or *")]
    [InlineData("--host example.com", "--host: 'example.com' is not an IP address")]
    [InlineData("--host 1.2.3", "--host: '1.2.3' is not an IP address")]
    [InlineData("--max-queue -1", "--max-queue must be between")]
    [InlineData("--kv-memory lots", "--kv-memory")]
    public void BadServeOptionsAreUsageErrors(string options, string message)
    {
        string tiny = TestPaths.Fixture("gpt2-tiny");
        var r = CliRunner.Run(["serve", "--large", tiny, "--tuned", tiny, "--untuned", tiny, .. options.Split(' ')]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains(message, r.Stderr);
        Assert.Single(r.Stderr.Trim().Split('\n'));
    }

    [Fact]
    public void ServeNeedsExactlyOneLargeModel()
    {
        string tiny = TestPaths.Fixture("gpt2-tiny");
        var r = CliRunner.Run("serve", "--tuned", tiny, "--untuned", tiny);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("exactly one of --large", r.Stderr);
    }
}
