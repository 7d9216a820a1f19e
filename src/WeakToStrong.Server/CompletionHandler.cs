using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using WeakToStrong.Engine.Scheduling;
using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;
using WeakToStrong.Server.Admission;
using WeakToStrong.Server.Deployment;
using WeakToStrong.Server.Protocol;

namespace WeakToStrong.Server;

/// <summary>
/// POST /v1/completions and /v1/chat/completions: parse and check the body, plan and reserve KV, run the
/// searches (n choices at once; they batch with every other request on the engine loop), and answer as JSON or
/// as server-sent events.
/// </summary>
internal sealed class CompletionHandler(WeakToStrongSearch search, KvAdmission admission, ServerMetrics metrics, ServerOptions options)
{
    private static readonly byte[] DataPrefix = "data: "u8.ToArray();
    private static readonly byte[] EventEnd = "\n\n"u8.ToArray();

    public async Task HandleAsync(HttpContext http, bool chat)
    {
        string endpoint = chat ? "chat_completions" : "completions";
        var clock = Stopwatch.StartNew();
        using var scope = new RequestScope(http, options.RequestTimeout);
        var aborted = scope.Token;
        int status = 200;
        try
        {
            var body = await ReadBodyAsync(http.Request, options.MaxBodyBytes, aborted).ConfigureAwait(false);
            var request = RequestParser.Parse(body, chat, options.Limits);
            var plan = RequestPlanner.Plan(search, request);
            using var lease = await admission.AcquireAsync(plan.Blocks, options.MaxQueue, aborted).ConfigureAwait(false);
            if (request.Stream) await StreamAsync(http, request, plan, clock, aborted).ConfigureAwait(false);
            else await RespondAsync(http, request, plan, aborted).ConfigureAwait(false);
        }
        catch (Exception) when (scope.Stopped is { } stopped)
        {
            status = stopped.Status; // the deadline passed or the shutdown drain ran out: say so
            await WriteErrorAsync(http, stopped).ConfigureAwait(false);
        }
        catch (Exception e) when (aborted.IsCancellationRequested || e is ClientGoneException)
        {
            status = 499; // the client went away: its searches stopped at their next step and nobody reads an answer
        }
        catch (Exception e)
        {
            var error = e as ApiException ?? Translate(e, chat);
            status = error.Status;
            await WriteErrorAsync(http, error).ConfigureAwait(false);
        }
        finally
        {
            metrics.Request(endpoint, status);
            metrics.Latency(endpoint, clock.Elapsed);
        }
    }

    /// <summary>
    /// Library failures that are the request's fault (a search that cannot run, a field the library refuses) become
    /// 400s, a remote large model's failure 502/504; anything else is a 500 that names itself.
    /// </summary>
    internal static ApiException Translate(Exception e, bool chat = false) => e switch
    {
        LargeModelUnavailableException u => UpstreamErrors.ToApi(u),
        BadHttpRequestException { StatusCode: 413 } => new ApiException(413, $"The request body is larger than this server's limit: {e.Message}", null, "request_too_large"),
        BadHttpRequestException b => new ApiException(b.StatusCode, e.Message, null, "bad_request"),
        KvAdmissionException k => AdmissionErrors.ToApiException(k),
        SearchException => ApiException.BadRequest(e.Message, null, "search_error"),
        RequestValidationException v => ApiException.BadRequest(v.Reason, RequestParser.ApiField(v.Field, chat), "invalid_value"),
        _ => new ApiException(500, $"internal error: {e.GetType().Name}: {e.Message}", null, "server_error", "server_error"),
    };

    /// <summary>
    /// Reads the body, refusing it past <paramref name="limit"/> bytes of content. For a chunked body Kestrel's own
    /// limit is lifted: it counts the chunk framing too (a 1-byte chunk is 6 bytes on the wire), so it refused
    /// chunked bodies well under ours. A Content-Length body keeps it (there it counts content only).
    /// </summary>
    private static async Task<ReadOnlyMemory<byte>> ReadBodyAsync(HttpRequest request, long limit, CancellationToken cancellationToken)
    {
        if (request.ContentLength > limit) throw TooLarge(request.ContentLength.Value, limit);
        if (request.ContentLength is null && request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
            size.MaxRequestBodySize = null;
        using var buffer = new MemoryStream();
        var chunk = new byte[16384];
        int read;
        try
        {
            while ((read = await request.Body.ReadAsync(chunk, cancellationToken).ConfigureAwait(false)) > 0)
            {
                buffer.Write(chunk, 0, read);
                if (buffer.Length > limit) throw TooLarge(buffer.Length, limit);
            }
        }
        catch (Exception e) when (e is IOException and not BadHttpRequestException or ConnectionAbortedException
                                  || e is OperationCanceledException { InnerException: ConnectionAbortedException })
        {
            // The connection broke (a reset, or Kestrel aborting it). Kestrel cancels RequestAborted later, on the
            // thread pool, so under load the token can still read false here: without this the broken read was
            // answered, and counted, as a 500.
            throw new ClientGoneException(e);
        }
        return buffer.GetBuffer().AsMemory(0, (int)buffer.Length);

        static ApiException TooLarge(long size, long limit) =>
            new(413, $"The request body is larger than this server's limit of {limit} bytes (got at least {size}).", null, "request_too_large");
    }

    /// <summary>The connection broke while the body was read: nobody is there to answer.</summary>
    private sealed class ClientGoneException(Exception inner) : Exception("the client's connection broke while its request body was read", inner);

    /// <summary>Runs the request's searches together: n choices, or one Best-of-best_of whose n best are returned.</summary>
    private async Task<List<Choice>> RunAsync(ParsedRequest request, CancellationToken cancellationToken)
    {
        if (request.BestOf is not null)
        {
            var result = await search.RunAsync(request.Search with { Trace = true }, cancellationToken).ConfigureAwait(false);
            metrics.Tokens(result.Stats);
            var ranked = result.Trace![^1].Candidates.OrderByDescending(c => double.IsNaN(c.Score) ? double.NegativeInfinity : c.Score).ThenBy(c => c.Index).Take(request.N);
            return ranked.Select((c, i) => new Choice(i, c.Text, c.Finish, c.Tokens.Count > 0 ? c.Tokens.Count : c.NewTokens, c.Score, i == 0 ? result.Stats : null)).ToList();
        }
        var runs = Enumerable.Range(0, request.N).Select(i => search.RunAsync(request.ForChoice(i), cancellationToken)).ToArray();
        try
        {
            await Task.WhenAll(runs).ConfigureAwait(false);
        }
        catch when (runs.Any(r => r.IsCompletedSuccessfully))
        {
            foreach (var r in runs.Where(r => r.IsCompletedSuccessfully)) metrics.Tokens(r.Result.Stats);
            throw;
        }
        return runs.Select((r, i) =>
        {
            metrics.Tokens(r.Result.Stats);
            return Choice.From(i, r.Result);
        }).ToList();
    }

    private async Task RespondAsync(HttpContext http, ParsedRequest request, RequestPlan plan, CancellationToken cancellationToken)
    {
        var choices = await RunAsync(request, cancellationToken).ConfigureAwait(false);
        var stops = request.Search.StopStrings;
        var usage = Usage(plan, choices);
        var info = Info(request, choices);
        string id = NewId(request.Chat);
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        http.Response.ContentType = "application/json";
        if (request.Chat)
        {
            var response = new ChatResponse(id, "chat.completion", created, options.Limits.ModelName,
                choices.Select(c => new ChatChoice(c.Index, new ChatMessage("assistant", StopText.Strip(c.Text, stops)), null, FinishReason(c.Finish))).ToList(), usage, info);
            await JsonSerializer.SerializeAsync(http.Response.Body, response, ServerJsonContext.Output.ChatResponse, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            var response = new CompletionResponse(id, "text_completion", created, options.Limits.ModelName,
                choices.Select(c => new CompletionChoice(StopText.Strip(c.Text, stops), c.Index, null, FinishReason(c.Finish))).ToList(), usage, info);
            await JsonSerializer.SerializeAsync(http.Response.Body, response, ServerJsonContext.Output.CompletionResponse, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Server-sent events in OpenAI's chunk format: each choice's text as it becomes final (never split inside a
    /// character, stop strings held back until they are ruled out), its finish reason, the usage chunk when asked
    /// for, then <c>data: [DONE]</c>.
    /// </summary>
    private async Task StreamAsync(HttpContext http, ParsedRequest request, RequestPlan plan, Stopwatch clock, CancellationToken cancellationToken)
    {
        var response = http.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers["X-Accel-Buffering"] = "no";
        string id = NewId(request.Chat);
        long created = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        string model = options.Limits.ModelName;
        var writeLock = new SemaphoreSlim(1, 1);
        bool first = true;

        async Task Send(int index, string? text, string? finish, bool role)
        {
            await writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                if (first && !string.IsNullOrEmpty(text))
                {
                    metrics.FirstToken(clock.Elapsed);
                    first = false;
                }
                await WriteEventAsync(response, request.Chat
                    ? Chat(new ChatChunk(id, "chat.completion.chunk", created, model, [new ChatChunkChoice(index, new ChatDelta(role ? "assistant" : null, text), null, finish)], null, null))
                    : Completion(new CompletionChunk(id, "text_completion", created, model, [new CompletionChoice(text ?? "", index, null, finish)], null, null)),
                    cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                writeLock.Release();
            }
        }

        await response.StartAsync(cancellationToken).ConfigureAwait(false);
        if (request.Chat)
            for (int i = 0; i < request.N; i++) await Send(i, "", null, role: true).ConfigureAwait(false);

        async Task<Choice> RunChoice(int index)
        {
            var stop = new StopText(request.Search.StopStrings);
            SearchResult? result = null;
            await foreach (var (delta, final) in ChoiceStream(request.ForChoice(index), cancellationToken).ConfigureAwait(false))
            {
                string ready = stop.Push(delta);
                if (ready.Length > 0) await Send(index, ready, null, role: false).ConfigureAwait(false);
                result = final ?? result;
            }
            string rest = stop.Finish();
            if (rest.Length > 0) await Send(index, rest, null, role: false).ConfigureAwait(false);
            metrics.Tokens(result!.Stats);
            await Send(index, null, FinishReason(result.Finish), role: false).ConfigureAwait(false);
            return Choice.From(index, result);
        }

        var choices = await Task.WhenAll(Enumerable.Range(0, request.N).Select(RunChoice)).ConfigureAwait(false);
        if (request.IncludeUsage)
        {
            var usage = Usage(plan, choices);
            var info = Info(request, choices);
            await WriteEventAsync(response, request.Chat
                ? Chat(new ChatChunk(id, "chat.completion.chunk", created, model, [], usage, info))
                : Completion(new CompletionChunk(id, "text_completion", created, model, [], usage, info)), cancellationToken).ConfigureAwait(false);
        }
        await response.Body.WriteAsync("data: [DONE]\n\n"u8.ToArray(), cancellationToken).ConfigureAwait(false);
        await response.Body.FlushAsync(cancellationToken).ConfigureAwait(false);

        static byte[] Chat(ChatChunk c) => JsonSerializer.SerializeToUtf8Bytes(c, ServerJsonContext.Output.ChatChunk);
        static byte[] Completion(CompletionChunk c) => JsonSerializer.SerializeToUtf8Bytes(c, ServerJsonContext.Output.CompletionChunk);
    }

    /// <summary>The text of one search as it becomes final (<see cref="WeakToStrongSearch.StreamAsync"/>), and the result at the end.</summary>
    private async IAsyncEnumerable<(string Delta, SearchResult? Result)> ChoiceStream(SearchRequest request, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await foreach (var update in search.StreamAsync(request, cancellationToken).ConfigureAwait(false))
            yield return (update.TextDelta, update.Result);
    }

    private static async Task WriteEventAsync(HttpResponse response, byte[] json, CancellationToken cancellationToken)
    {
        await response.Body.WriteAsync(DataPrefix, cancellationToken).ConfigureAwait(false);
        await response.Body.WriteAsync(json, cancellationToken).ConfigureAwait(false);
        await response.Body.WriteAsync(EventEnd, cancellationToken).ConfigureAwait(false);
        await response.Body.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The error JSON, or, once a stream has started, an SSE error event that ends it.</summary>
    internal static async Task WriteErrorAsync(HttpContext http, ApiException error)
    {
        var json = JsonSerializer.SerializeToUtf8Bytes(error.ToBody(), ServerJsonContext.Output.ErrorBody);
        try
        {
            if (http.Response.HasStarted)
            {
                await WriteEventAsync(http.Response, json, CancellationToken.None).ConfigureAwait(false);
                await http.Response.Body.WriteAsync("data: [DONE]\n\n"u8.ToArray()).ConfigureAwait(false);
                return;
            }
            http.Response.StatusCode = error.Status;
            http.Response.ContentType = "application/json";
            if (error.RetryAfterSeconds is { } seconds) http.Response.Headers.RetryAfter = seconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            // The rest of an oversized body is not read: the connection cannot be reused.
            if (error.Status == 413) http.Response.Headers.Connection = "close";
            await http.Response.Body.WriteAsync(json).ConfigureAwait(false);
        }
        catch (Exception) when (http.RequestAborted.IsCancellationRequested)
        {
            // The client is gone; nobody reads the error.
        }
    }

    private static Usage Usage(RequestPlan plan, IReadOnlyList<Choice> choices)
    {
        int completion = choices.Sum(c => c.Tokens);
        var stats = choices.Where(c => c.Stats is not null).Select(c => c.Stats!).ToList();
        return new Usage(plan.PromptTokens, completion, plan.PromptTokens + completion,
            stats.Sum(s => s.SmallTokensScored), stats.Sum(s => s.LargeTokensSampled), stats.Sum(s => s.LargeTokensFed));
    }

    private static SearchInfo Info(ParsedRequest request, IReadOnlyList<Choice> choices)
    {
        var s = request.Search;
        var stats = choices.Where(c => c.Stats is not null).Select(c => c.Stats!).ToList();
        var (w, k, l, n, beta) = s.Method switch
        {
            SearchMethodKind.ChunkBeamSearch => (s.BeamWidth, s.Successors, s.ChunkLength, (int?)null, (float?)null),
            SearchMethodKind.BestOfN => (null, null, null, s.N, null),
            SearchMethodKind.EmulatedFineTuning => (null, null, null, null, s.Beta),
            _ => ((int?)null, (int?)null, (int?)null, (int?)null, (float?)null),
        };
        return new SearchInfo(SearchMethodNames.Name(s.Method), w, k, l, n, beta, choices[0].Score, choices.Select(c => c.Score).ToList(),
            stats.Sum(x => (long)x.Chunks), stats.Sum(x => x.CandidatesEvaluated));
    }

    private static string FinishReason(FinishReason finish) => finish == Search.FinishReason.Length ? "length" : "stop";

    private static string NewId(bool chat) => (chat ? "chatcmpl-" : "cmpl-") + Guid.NewGuid().ToString("N");

    /// <summary>One returned choice; <see cref="Stats"/> is the search's work, on one choice per search.</summary>
    private sealed record Choice(int Index, string Text, FinishReason Finish, int Tokens, double Score, SearchStats? Stats)
    {
        public static Choice From(int index, SearchResult r) =>
            new(index, r.Text, r.Finish, r.Tokens.Count > 0 ? r.Tokens.Count : (int)r.Stats.LargeTokensSampled, r.Score, r.Stats);
    }
}

/// <summary>
/// OpenAI leaves a stop sequence out of the returned text; the library keeps it (as the reference does). While
/// streaming, text that could still turn out to be the start of a stop sequence is held back.
/// </summary>
internal sealed class StopText(IReadOnlyList<string> stops)
{
    private readonly StringBuilder _text = new();
    private readonly int _holdBack = stops.Count == 0 ? 0 : stops.Max(s => s.Length);
    private int _sent;

    /// <summary>The text before the first stop sequence.</summary>
    public static string Strip(string text, IReadOnlyList<string> stops)
    {
        int cut = text.Length;
        foreach (var s in stops)
        {
            int at = text.IndexOf(s, StringComparison.Ordinal);
            if (at >= 0) cut = Math.Min(cut, at);
        }
        return text[..cut];
    }

    /// <summary>Adds final text; returns what can be sent now.</summary>
    public string Push(string delta)
    {
        _text.Append(delta);
        string all = _text.ToString();
        string clean = Strip(all, stops);
        int ready = clean.Length < all.Length ? clean.Length : Math.Max(_sent, all.Length - _holdBack);
        if (ready > _sent && char.IsHighSurrogate(all[ready - 1])) ready--;
        return Take(all, Math.Max(ready, _sent));
    }

    /// <summary>The rest, once the search has ended.</summary>
    public string Finish() => Take(_text.ToString(), Strip(_text.ToString(), stops).Length);

    private string Take(string all, int end)
    {
        end = Math.Min(end, Strip(all, stops).Length);
        if (end <= _sent) return "";
        string part = all[_sent..end];
        _sent = end;
        return part;
    }
}
