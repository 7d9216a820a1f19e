using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Text.Json;
using WeakToStrong.Tests.Cli;

namespace WeakToStrong.Tests.Server;

/// <summary>
/// <c>w2s serve</c> as a deployment sees it: keys from W2S_API_KEY, the warning for an open non-loopback bind, and
/// SIGTERM, which drains (a request in flight finishes) and exits 0.
/// </summary>
[Trait("Category", "Integration")]
public sealed partial class ServeSignalTests
{
    private const int Sigterm = 15;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);

    /// <summary>A <c>w2s serve</c> on gpt2-tiny with a free port; its stderr is collected; killed if still running on dispose.</summary>
    private sealed class Serve : IDisposable
    {
        private readonly Process _process;
        private readonly Task<string> _stderr;

        public Serve(IReadOnlyDictionary<string, string>? environment, params string[] args)
        {
            string tiny = TestPaths.Fixture("gpt2-tiny");
            var start = CliRunner.StartInfo(["serve", "--large", tiny, "--tuned", tiny, "--untuned", tiny, "--port", "0", "--kv-memory", "32MiB",
                "--served-model-name", "tiny", "--default-method", "sample", .. args]);
            start.Environment.Remove("W2S_API_KEY");
            foreach (var (name, value) in environment ?? new Dictionary<string, string>()) start.Environment[name] = value;
            _process = Process.Start(start)!;
            _stderr = _process.StandardError.ReadToEndAsync();
            var line = _process.StandardOutput.ReadLineAsync();
            if (!line.Wait(TimeSpan.FromMinutes(2)) || line.Result is not { } text || !text.StartsWith("listening on ", StringComparison.Ordinal))
            {
                Dispose();
                throw new InvalidOperationException($"w2s serve did not start: {line.Result} {_stderr.Result}");
            }
            // Kestrel reports the address it bound (0.0.0.0 for every interface); loopback reaches it either way.
            var bound = new Uri(text["listening on ".Length..]);
            BaseAddress = new Uri($"http://127.0.0.1:{bound.Port}/");
        }

        public Uri BaseAddress { get; }

        public int Id => _process.Id;

        /// <summary>Waits for the exit; returns its code and everything written to stderr.</summary>
        public async Task<(int ExitCode, string Stderr)> ExitAsync(TimeSpan within)
        {
            using var timeout = new CancellationTokenSource(within);
            await _process.WaitForExitAsync(timeout.Token);
            return (_process.ExitCode, await _stderr);
        }

        public void Dispose()
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit(30_000);
            _process.Dispose();
        }
    }

    [Fact]
    public async Task AnOpenNonLoopbackBindWarnsAndSigtermExitsZero()
    {
        using var serve = new Serve(null, "--host", "0.0.0.0");
        using var http = new HttpClient { BaseAddress = serve.BaseAddress };
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("v1/models")).StatusCode); // open, as warned
        Assert.Equal(0, Kill(serve.Id, Sigterm));
        var (code, stderr) = await serve.ExitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(0, code);
        Assert.Contains("warning: listening on 0.0.0.0 without an API key", stderr);
        Assert.DoesNotContain("error", stderr);
    }

    [Fact]
    public async Task KeysComeFromTheEnvironmentAndSigtermLetsARequestInFlightFinish()
    {
        using var serve = new Serve(new Dictionary<string, string> { ["W2S_API_KEY"] = "alpha, beta" });
        using var http = new HttpClient { BaseAddress = serve.BaseAddress };
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.GetAsync("v1/models")).StatusCode);
        http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", "beta");
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("v1/models")).StatusCode);

        // A request whose body is half sent is in flight when SIGTERM arrives.
        var body = new GatedContent("""{"model":"tiny","prompt":"Hello","max_tokens":5,"seed":1}""");
        var inFlight = http.PostAsync("v1/completions", body);
        await body.FirstHalfSent;
        using var probe = new HttpClient { BaseAddress = serve.BaseAddress };
        var clock = Stopwatch.StartNew();
        while (MetricsText.Value(await probe.GetStringAsync("metrics"), "w2s_requests_in_flight") < 2)
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), "the gated request never arrived");
        Assert.Equal(0, Kill(serve.Id, Sigterm));
        while ((await probe.GetAsync("health")).StatusCode != HttpStatusCode.ServiceUnavailable)
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), "SIGTERM did not start the drain");

        body.Release();
        using var answer = await inFlight;
        string text = await answer.Content.ReadAsStringAsync();
        Assert.True(answer.StatusCode == HttpStatusCode.OK, text);
        using (var json = JsonDocument.Parse(text))
            Assert.Equal(5, json.RootElement.GetProperty("usage").GetProperty("completion_tokens").GetInt32());
        var (code, stderr) = await serve.ExitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(0, code);
        Assert.DoesNotContain("warning", stderr); // loopback, and keyed
    }
}

/// <summary>The deployment flags of <c>w2s serve</c> refuse bad values as one-line usage errors (exit code 2).</summary>
[Trait("Category", "Integration")]
public sealed class ServeDeploymentOptionsTests
{
    [Theory]
    [InlineData("--api-key ,", "--api-key: no key given")]
    [InlineData("--large-timeout 0", "--large-timeout must be between 0.01 and 86400 seconds")]
    [InlineData("--large-retries -1", "--large-retries must be between 0 and 100")]
    [InlineData("--request-timeout 0", "--request-timeout must be between 0.01 and 86400 seconds")]
    [InlineData("--shutdown-timeout -1", "--shutdown-timeout must be between 0 and 86400 seconds")]
    public void BadValuesAreUsageErrors(string options, string message)
    {
        string tiny = TestPaths.Fixture("gpt2-tiny");
        var r = CliRunner.Run(["serve", "--large", tiny, "--tuned", tiny, "--untuned", tiny, .. options.Split(' ')]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains(message, r.Stderr);
        Assert.Single(r.Stderr.Trim().Split('\n'));
    }
}
