using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace WeakToStrong.Tests.Server;

/// <summary>What the fake upstream does with one call.</summary>
public enum Fault
{
    /// <summary>A valid completions reply.</summary>
    None,

    /// <summary>Reads the request and never answers.</summary>
    Hang,

    /// <summary>Sends the headers, then the body a byte every 100 ms.</summary>
    SlowDrip,

    /// <summary>429 Too Many Requests.</summary>
    TooManyRequests,

    /// <summary>500 with OpenAI's error JSON.</summary>
    ServerError,

    /// <summary>200 whose body is cut-off JSON.</summary>
    MalformedJson,

    /// <summary>Sends the headers and part of the body, then resets the connection (RST).</summary>
    ResetMidBody,
}

/// <summary>
/// An OpenAI-compatible <c>/v1/completions</c> endpoint on a raw loopback socket, so that faults happen on the
/// wire as they do in production (a hung peer, a dripping body, a reset), not inside an HttpMessageHandler.
/// <paramref name="plan"/> picks the fault of each call by its 1-based number.
/// </summary>
internal sealed class FaultyUpstream : IAsyncDisposable
{
    private static readonly string[] Words = [" good", " bad", " long", " dull", " bright", " odd", " calm", " loud"];
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Func<int, Fault> _plan;
    private readonly Task _accepting;
    private readonly List<Task> _connections = [];
    private int _calls;

    public FaultyUpstream(Func<int, Fault> plan)
    {
        _plan = plan;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    /// <summary>The OpenAI base URL (…/v1).</summary>
    public Uri Endpoint => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/v1");

    /// <summary>Calls received so far (each attempt of a retried call counts).</summary>
    public int Calls => Volatile.Read(ref _calls);

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            lock (_connections) _connections.Add(ServeAsync(socket));
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        using var _ = socket;
        using var stream = new NetworkStream(socket, ownsSocket: false);
        try
        {
            while (await ReadRequestAsync(stream) is { } body)
            {
                int call = Interlocked.Increment(ref _calls);
                if (!await AnswerAsync(socket, stream, _plan(call), body)) return;
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client gave up on the connection (its timeout), or the test is over.
        }
    }

    /// <summary>Answers one call; false when the connection must not be used again.</summary>
    private async Task<bool> AnswerAsync(Socket socket, NetworkStream stream, Fault fault, JsonNode body)
    {
        var token = _stop.Token;
        switch (fault)
        {
            case Fault.Hang:
                // Wait for the client to give up: a read of this connection returns 0 when it closes it.
                await stream.ReadAtLeastAsync(new byte[1], 1, throwOnEndOfStream: false, token);
                return false;
            case Fault.SlowDrip:
            {
                byte[] reply = Encoding.UTF8.GetBytes(Reply(body));
                await WriteAsync(stream, $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {reply.Length}\r\n\r\n");
                foreach (byte b in reply)
                {
                    await Task.Delay(100, token);
                    await stream.WriteAsync(new[] { b }, token);
                }
                return true;
            }
            case Fault.TooManyRequests:
                await WriteAsync(stream, Response(429, "Too Many Requests", """{"error":{"message":"slow down","type":"rate_limit_error"}}"""));
                return true;
            case Fault.ServerError:
                await WriteAsync(stream, Response(500, "Internal Server Error", """{"error":{"message":"upstream exploded","type":"server_error"}}"""));
                return true;
            case Fault.MalformedJson:
                await WriteAsync(stream, Response(200, "OK", """{"choices":[{"index":0,"text":" go"""));
                return true;
            case Fault.ResetMidBody:
            {
                string reply = Reply(body);
                await WriteAsync(stream, $"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(reply)}\r\n\r\n{reply[..(reply.Length / 2)]}");
                await stream.FlushAsync(token);
                socket.LingerState = new LingerOption(true, 0); // close with RST, not FIN
                socket.Close();
                return false;
            }
            default:
                await WriteAsync(stream, Response(200, "OK", Reply(body)));
                return true;
        }
    }

    private Task WriteAsync(NetworkStream stream, string text) => stream.WriteAsync(Encoding.UTF8.GetBytes(text), _stop.Token).AsTask();

    private static string Response(int status, string reason, string json) =>
        $"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {Encoding.UTF8.GetByteCount(json)}\r\n\r\n{json}";

    /// <summary>n continuations of max_tokens words each, cut by length.</summary>
    private static string Reply(JsonNode body)
    {
        int n = (int)body["n"]!, max = (int)body["max_tokens"]!;
        int seed = (int)((long)body["seed"]! % 1000);
        var choices = new JsonArray();
        for (int i = 0; i < n; i++)
            choices.Add(new JsonObject
            {
                ["index"] = i,
                ["text"] = string.Concat(Enumerable.Range(0, max).Select(k => Words[(seed + 3 * i + k) % Words.Length])),
                ["finish_reason"] = "length",
            });
        return new JsonObject { ["choices"] = choices, ["usage"] = new JsonObject { ["completion_tokens"] = n * max } }.ToJsonString();
    }

    /// <summary>The JSON body of the next request on the connection, or null when the client closed it.</summary>
    private async Task<JsonNode?> ReadRequestAsync(NetworkStream stream)
    {
        var head = new List<byte>();
        var one = new byte[1];
        while (!EndsWithBlankLine(head))
        {
            if (await stream.ReadAsync(one, _stop.Token) == 0) return null;
            head.Add(one[0]);
        }
        string headers = Encoding.ASCII.GetString(head.ToArray());
        int length = headers.Split("\r\n")
            .Where(h => h.StartsWith("Content-Length:", StringComparison.OrdinalIgnoreCase))
            .Select(h => int.Parse(h["Content-Length:".Length..].Trim()))
            .Single();
        var body = new byte[length];
        await stream.ReadExactlyAsync(body, _stop.Token);
        return JsonNode.Parse(body);

        static bool EndsWithBlankLine(List<byte> b) =>
            b.Count >= 4 && b[^4] == '\r' && b[^3] == '\n' && b[^2] == '\r' && b[^1] == '\n';
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        Task[] open;
        lock (_connections) open = [.. _connections];
        await Task.WhenAll(open);
        _stop.Dispose();
    }
}
