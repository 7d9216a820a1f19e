using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Http.Resilience;
using Polly;
using Polly.CircuitBreaker;
using Polly.Timeout;
using WeakToStrong.Chat;
using WeakToStrong.Tokenization;

namespace WeakToStrong.Search.LargeModels;

/// <summary>Where and how to reach an OpenAI-compatible <c>/v1/completions</c> endpoint.</summary>
public sealed record OpenAiCompletionsOptions
{
    /// <summary>Base URL including the version, e.g. <c>http://gpu-node:8000/v1</c> (vLLM, TGI) or <c>https://api.openai.com/v1</c>.</summary>
    public required Uri Endpoint { get; init; }

    /// <summary>The <c>model</c> field of each request.</summary>
    public required string Model { get; init; }

    /// <summary>Sent as a bearer token when set.</summary>
    public string? ApiKey { get; init; }

    /// <summary>Prompt format applied on this side (a completions endpoint takes raw text); BOS is left to the server.</summary>
    public ChatTemplate Template { get; init; } = ChatTemplate.None;

    /// <summary>How the template's EOS segment is written in text (zephyr's turns end with it).</summary>
    public string EosText { get; init; } = "</s>";

    /// <summary>Send <c>top_k</c> (vLLM and TGI accept it; OpenAI's API does not).</summary>
    public bool SendTopK { get; init; } = true;

    /// <summary>Time allowed for one HTTP attempt, reading the whole reply included (10 ms to a day).</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>Attempts after the first on a transient failure (timeout, connection error, 408, 429, 5xx).</summary>
    public int MaxRetries { get; init; } = 5;

    /// <summary>
    /// How long the circuit breaker fails calls at once, without calling, after it opens: when at least half of
    /// the attempts of the last 30 s failed, and there were at least <see cref="CircuitMinimumThroughput"/> of
    /// them. <see cref="TimeSpan.Zero"/> turns the breaker off; otherwise at least 0.5 s.
    /// </summary>
    public TimeSpan CircuitBreakDuration { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Attempts within the breaker's 30 s window before it may open (at least 2).</summary>
    public int CircuitMinimumThroughput { get; init; } = 10;

    /// <summary>
    /// Median first backoff; exponential per retry with Polly's decorrelated jitter, capped at <see cref="MaxBackoff"/>;
    /// Retry-After wins when given.
    /// </summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Longest wait between attempts, a Retry-After included.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Requests in flight at once.</summary>
    public int MaxConcurrency { get; init; } = 8;
}

/// <summary>
/// A black-box large model behind an OpenAI-compatible completions endpoint (a vLLM/TGI cluster,
/// gpt-3.5-turbo-instruct). Candidates are texts; each chunk asks, per group of candidates with the same text
/// (the K successors of one survivor), for <c>n</c> continuations of at most L tokens. Stop strings are applied on
/// this side so that the text keeps them, as with a local model. Token ids are not visible, so the small models
/// always re-tokenize the text.
/// </summary>
public sealed class OpenAiCompletionsModel : ILargeModel
{
    private readonly OpenAiCompletionsOptions _options;
    private readonly HttpClient _http;
    private readonly bool _ownsHttp;
    private readonly SemaphoreSlim _slots;
    private readonly ResiliencePipeline<HttpResponseMessage> _pipeline;
    private readonly ResiliencePipeline<HttpResponseMessage> _attempt;

    /// <param name="options">Endpoint, model, retries and limits.</param>
    /// <param name="httpClient">A client to send with (its own timeout is not used; <see cref="OpenAiCompletionsOptions.Timeout"/> is).</param>
    public OpenAiCompletionsModel(OpenAiCompletionsOptions options, HttpClient? httpClient = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(options.Endpoint);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Model);
        ArgumentOutOfRangeException.ThrowIfNegative(options.MaxRetries);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(options.MaxConcurrency);
        if (options.Timeout < TimeSpan.FromMilliseconds(10) || options.Timeout > TimeSpan.FromDays(1))
            throw new ArgumentOutOfRangeException(nameof(options), options.Timeout, "the timeout must be between 10 ms and a day");
        if (options.CircuitBreakDuration != TimeSpan.Zero && options.CircuitBreakDuration < TimeSpan.FromSeconds(0.5))
            throw new ArgumentOutOfRangeException(nameof(options), options.CircuitBreakDuration, "the circuit break must be zero (no breaker) or at least 0.5 s");
        ArgumentOutOfRangeException.ThrowIfLessThan(options.CircuitMinimumThroughput, 2, nameof(options));
        if (options.InitialBackoff < TimeSpan.Zero || options.MaxBackoff < options.InitialBackoff)
            throw new ArgumentOutOfRangeException(nameof(options), "the backoffs must satisfy 0 ≤ InitialBackoff ≤ MaxBackoff");
        _options = options;
        _http = httpClient ?? new HttpClient();
        _ownsHttp = httpClient is null;
        _http.Timeout = System.Threading.Timeout.InfiniteTimeSpan;
        _slots = new SemaphoreSlim(options.MaxConcurrency, options.MaxConcurrency);
        _pipeline = BuildPipeline();
        _attempt = new ResiliencePipelineBuilder<HttpResponseMessage>().AddTimeout(new HttpTimeoutStrategyOptions { Timeout = options.Timeout }).Build();
    }

    public string Name => $"{_options.Model} at {_options.Endpoint}";

    public TextTokenizer? Tokenizer => null;

    /// <summary>HTTP attempts made so far, retries included.</summary>
    public long Attempts => Interlocked.Read(ref _attempts);

    private long _attempts;

    /// <summary>Attempts that were retries of a failed one.</summary>
    public long Retries => Interlocked.Read(ref _retries);

    private long _retries;

    public Task<LargeCandidate> StartAsync(string prompt, GenerationSettings settings, SearchCounters counters, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(settings);
        string text = settings.Chat ? Render(_options.Template.Render(prompt, settings.SystemPrompt, settings.History)) : prompt;
        var shared = new RemotePrompt(text, settings);
        return Task.FromResult<LargeCandidate>(new Candidate(shared, 0, "", 0, settings.MaxNewTokens == 0 ? FinishReason.Length : FinishReason.None));
    }

    private string Render(IReadOnlyList<PromptSegment> segments)
    {
        var text = new StringBuilder();
        foreach (var s in segments)
            text.Append(s.Kind switch
            {
                PromptSegmentKind.Bos => "",
                PromptSegmentKind.Eos => _options.EosText,
                _ => s.Value,
            });
        return text.ToString();
    }

    public async Task ExtendAsync(IReadOnlyList<LargeCandidate> candidates, int maxTokens, SearchCounters counters, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        ArgumentNullException.ThrowIfNull(counters);
        ArgumentOutOfRangeException.ThrowIfNegative(maxTokens);
        var open = new List<Candidate>();
        foreach (var c in candidates)
        {
            if (c is not Candidate remote) throw new ArgumentException("a candidate belongs to another large model", nameof(candidates));
            if (!remote.IsFinished) open.Add(remote);
        }
        if (open.Count == 0 || maxTokens == 0) return;
        // Candidates with the same text (a survivor's successors) share one request for n continuations.
        var groups = open.GroupBy(c => (c.Shared, c.Text, c.TokenCount)).Select(g => g.ToList()).ToList();
        var replies = await Task.WhenAll(groups.Select(g => CompleteAsync(g, maxTokens, cancellationToken))).ConfigureAwait(false);
        counters.LargeForwardCalls += groups.Count;
        for (int i = 0; i < groups.Count; i++)
        {
            var choices = replies[i];
            for (int j = 0; j < groups[i].Count; j++)
            {
                var (text, reason, tokens) = choices[j];
                groups[i][j].Add(text, reason, tokens);
                counters.LargeTokensSampled += tokens;
            }
        }
    }

    /// <summary>One request for a group; returns each choice's text, finish reason and (estimated) token count.</summary>
    private async Task<(string Text, string? Reason, int Tokens)[]> CompleteAsync(List<Candidate> group, int maxTokens, CancellationToken cancellationToken)
    {
        var first = group[0];
        var settings = first.Shared.Settings;
        int budget = Math.Min(maxTokens, settings.MaxNewTokens - first.TokenCount);
        var body = new JsonObject
        {
            ["model"] = _options.Model,
            ["prompt"] = first.Shared.Prompt + first.Text,
            ["max_tokens"] = budget,
            ["n"] = group.Count,
            ["temperature"] = settings.Sampling.Temperature,
            ["top_p"] = settings.Sampling.TopP,
            ["seed"] = (long)(settings.Sampling.Seed ^ first.Key ^ (ulong)first.TokenCount) & long.MaxValue,
        };
        if (_options.SendTopK && settings.Sampling.TopK > 0) body["top_k"] = settings.Sampling.TopK;
        var (reply, attempts) = await SendAsync(body.ToJsonString(), cancellationToken).ConfigureAwait(false);
        using var _ = reply;
        var root = reply.RootElement;
        // A reply of the wrong shape is the upstream's failure, like one that is not JSON.
        LargeModelUnavailableException Malformed(string what) => new(LargeModelFailure.Failed, Name, attempts, $"{Name}: {what}");
        // JSON may escape an unpaired surrogate ("\ud800"), which parses but is no text.
        string Text(JsonElement value)
        {
            try
            {
                return value.GetString()!;
            }
            catch (InvalidOperationException)
            {
                throw Malformed("a choice's text is not valid Unicode");
            }
        }
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("choices", out var choicesElement) || choicesElement.ValueKind != JsonValueKind.Array)
            throw Malformed("the reply has no \"choices\" array");
        var choices = new (string, string?, int)[group.Count];
        int filled = 0;
        foreach (var choice in choicesElement.EnumerateArray())
        {
            if (choice.ValueKind != JsonValueKind.Object) throw Malformed("a choice is not an object");
            int index = choice.TryGetProperty("index", out var i) && i.TryGetInt32(out int n) ? n : filled;
            if (index < 0 || index >= group.Count) throw Malformed($"a choice has index {index}, outside the {group.Count} asked for");
            string text = choice.TryGetProperty("text", out var t) && t.ValueKind == JsonValueKind.String ? Text(t) : "";
            string? reason = choice.TryGetProperty("finish_reason", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString() : null;
            choices[index] = (text, reason, 0);
            filled++;
        }
        if (filled != group.Count) throw Malformed($"asked for {group.Count} continuations, got {filled}");
        // Token counts per choice are not in the reply: a choice cut by length used the whole budget; the
        // usage total, less those, is shared among the others.
        int lengthChoices = choices.Count(c => c.Item2 == "length");
        int others = group.Count - lengthChoices;
        int usage = root.TryGetProperty("usage", out var u) && u.ValueKind == JsonValueKind.Object && u.TryGetProperty("completion_tokens", out var ct) && ct.TryGetInt32(out int total) ? total : -1;
        int share = others == 0 ? 0 : usage >= 0 ? Math.Max(1, (usage - lengthChoices * budget) / others) : budget;
        for (int j = 0; j < choices.Length; j++) choices[j].Item3 = choices[j].Item2 == "length" ? budget : Math.Min(budget, share);
        return choices;
    }

    /// <summary>
    /// POSTs to /completions through the resilience pipeline (<see cref="BuildPipeline"/>); a failure for good is a
    /// <see cref="LargeModelUnavailableException"/> naming the upstream.
    /// </summary>
    private async Task<(JsonDocument Reply, int Attempts)> SendAsync(string body, CancellationToken cancellationToken)
    {
        var uri = new Uri(_options.Endpoint.ToString().TrimEnd('/') + "/completions");
        int attempts = 0;
        HttpResponseMessage response;
        try
        {
            response = await _pipeline.ExecuteAsync(async token =>
            {
                // The slot is held for the attempt only, not for the backoff after it.
                await _slots.WaitAsync(token).ConfigureAwait(false);
                try
                {
                    Interlocked.Increment(ref attempts);
                    Interlocked.Increment(ref _attempts);
                    return await _attempt.ExecuteAsync(t => SendOnceAsync(uri, body, t), token).ConfigureAwait(false);
                }
                finally
                {
                    _slots.Release();
                }
            }, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutRejectedException e)
        {
            throw Unavailable(LargeModelFailure.Timeout, attempts, $"no reply within {_options.Timeout.TotalSeconds:0.###} s", e);
        }
        catch (BrokenCircuitException e)
        {
            throw new LargeModelUnavailableException(LargeModelFailure.CircuitOpen, Name, attempts,
                $"{Name}: not called: so many recent calls failed that the circuit breaker refuses calls for {_options.CircuitBreakDuration.TotalSeconds:0.#} s", e);
        }
        catch (Exception e) when (e is HttpRequestException or IOException)
        {
            throw Unavailable(LargeModelFailure.Failed, attempts, e.Message, e);
        }
        using (response)
        {
            string text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode) throw Unavailable(LargeModelFailure.Failed, attempts, $"HTTP {(int)response.StatusCode} {ErrorMessage(text)}");
            try
            {
                return (JsonDocument.Parse(text), attempts);
            }
            catch (JsonException e)
            {
                throw new LargeModelUnavailableException(LargeModelFailure.Failed, Name, attempts, $"{Name}: the reply is not JSON ({e.Message})", e);
            }
        }
    }

    /// <summary>One attempt: the reply is read whole within the attempt's timeout, so a slow drip of bytes times out like a hang.</summary>
    private async ValueTask<HttpResponseMessage> SendOnceAsync(Uri uri, string body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, uri) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (_options.ApiKey is { } key) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        try
        {
            await response.Content.LoadIntoBufferAsync(cancellationToken).ConfigureAwait(false);
            return response;
        }
        catch
        {
            response.Dispose();
            throw;
        }
    }

    private LargeModelUnavailableException Unavailable(LargeModelFailure kind, int attempts, string failure, Exception? inner = null) =>
        new(kind, Name, attempts, attempts > 1 ? $"{Name}: gave up after {attempts} attempts; last: {failure}" : $"{Name}: {failure}", inner);

    /// <summary>
    /// Microsoft.Extensions.Http.Resilience's strategies, outermost first: retries on a transient failure (timeout,
    /// connection error, 408, 429, 5xx) with exponential backoff and jitter, Retry-After winning when given (both
    /// capped at <see cref="OpenAiCompletionsOptions.MaxBackoff"/>); then the circuit breaker, which counts every
    /// attempt. The per-attempt timeout is a pipeline of its own (<see cref="_attempt"/>) so that waiting for a
    /// concurrency slot does not count against it.
    /// </summary>
    private ResiliencePipeline<HttpResponseMessage> BuildPipeline()
    {
        static ValueTask<bool> Transient(Outcome<HttpResponseMessage> outcome) =>
            ValueTask.FromResult(HttpClientResiliencePredicates.IsTransient(outcome) || outcome.Exception is IOException);
        var builder = new ResiliencePipelineBuilder<HttpResponseMessage>();
        if (_options.MaxRetries > 0)
            builder.AddRetry(new HttpRetryStrategyOptions
            {
                MaxRetryAttempts = _options.MaxRetries,
                BackoffType = DelayBackoffType.Exponential,
                UseJitter = true,
                Delay = _options.InitialBackoff,
                MaxDelay = _options.MaxBackoff,
                ShouldHandle = args => Transient(args.Outcome),
                DelayGenerator = args => ValueTask.FromResult(RetryAfter(args.Outcome.Result)),
                OnRetry = _ =>
                {
                    Interlocked.Increment(ref _retries);
                    return ValueTask.CompletedTask;
                },
            });
        if (_options.CircuitBreakDuration > TimeSpan.Zero)
            builder.AddCircuitBreaker(new HttpCircuitBreakerStrategyOptions
            {
                FailureRatio = 0.5,
                MinimumThroughput = _options.CircuitMinimumThroughput,
                SamplingDuration = TimeSpan.FromSeconds(30),
                BreakDuration = _options.CircuitBreakDuration,
                ShouldHandle = args => Transient(args.Outcome),
            });
        return builder.Build();
    }

    /// <summary>The wait a 429/503 asks for in Retry-After (seconds or a date), capped; null lets the backoff decide.</summary>
    private TimeSpan? RetryAfter(HttpResponseMessage? response)
    {
        var header = response?.Headers.RetryAfter;
        var wait = header?.Delta ?? (header?.Date is { } date ? date - DateTimeOffset.UtcNow : null);
        if (wait is not { } w || w <= TimeSpan.Zero) return null;
        return w < _options.MaxBackoff ? w : _options.MaxBackoff;
    }

    /// <summary>OpenAI's error JSON ({"error": {"message": …}}) when present, else the body's start.</summary>
    private static string ErrorMessage(string body)
    {
        try
        {
            using var doc = JsonDocument.Parse(body);
            if (doc.RootElement.TryGetProperty("error", out var error))
                return error.ValueKind == JsonValueKind.Object && error.TryGetProperty("message", out var m) ? m.GetString() ?? "" : error.ToString();
        }
        catch (JsonException)
        {
        }
        return body.Length > 200 ? body[..200] + "…" : body;
    }

    public void Dispose()
    {
        if (_ownsHttp) _http.Dispose();
        _slots.Dispose();
    }

    private sealed record RemotePrompt(string Prompt, GenerationSettings Settings);

    private sealed class Candidate : LargeCandidate
    {
        private string _text;
        private int _tokens;

        public Candidate(RemotePrompt shared, ulong key, string text, int tokens, FinishReason finish) : base(key)
        {
            Shared = shared;
            _text = text;
            _tokens = tokens;
            Finish = finish;
        }

        public RemotePrompt Shared { get; }

        public override string Text => _text;

        public override IReadOnlyList<int>? Tokens => null;

        public override int TokenCount => _tokens;

        public override bool TextMatchesTokens => false;

        public void Add(string text, string? reason, int tokens)
        {
            _tokens += tokens;
            var stops = Shared.Settings.StopStrings;
            string joined = _text + text;
            string cut = stops.Count > 0 ? StopChecker.CutAfterStop(joined, stops) : joined;
            // The text before this chunk holds no stop string (it would have ended there), so any found is new.
            if (cut.Length < joined.Length || stops.Any(s => joined.Contains(s, StringComparison.Ordinal)))
            {
                _text = cut;
                Finish = FinishReason.StopString;
                return;
            }
            _text = joined;
            if (reason == "stop") Finish = FinishReason.Eos;
            else if (_tokens >= Shared.Settings.MaxNewTokens) Finish = FinishReason.Length;
        }

        public override LargeCandidate Fork(ulong key) => new Candidate(Shared, key, _text, _tokens, Finish);

        public override void Dispose()
        {
        }
    }
}
