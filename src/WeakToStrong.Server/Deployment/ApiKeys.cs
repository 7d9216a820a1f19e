using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using WeakToStrong.Server.Protocol;

namespace WeakToStrong.Server.Deployment;

/// <summary>
/// Bearer-key authentication as OpenAI's API does it: every <c>/v1/*</c> route (and <c>/metrics</c> when
/// <see cref="ServerOptions.MetricsNeedKey"/>) needs <c>Authorization: Bearer KEY</c> with one of the configured
/// keys; anything else is a 401 with OpenAI's error JSON (<c>invalid_request_error</c>, code <c>invalid_api_key</c>).
/// <c>/health</c> stays open for load balancers.
/// </summary>
public sealed class ApiKeys
{
    private const string Scheme = "Bearer ";

    // SHA-256 of each key: the comparison runs over equal-length digests, so its time tells nothing about a key's
    // length or how much of a guess was right.
    private readonly byte[][] _digests;

    /// <param name="keys">The accepted keys; none may be empty.</param>
    public ApiKeys(IReadOnlyList<string> keys)
    {
        ArgumentNullException.ThrowIfNull(keys);
        if (keys.Any(string.IsNullOrWhiteSpace)) throw new ArgumentException("an API key must not be empty", nameof(keys));
        _digests = keys.Select(k => SHA256.HashData(Encoding.UTF8.GetBytes(k))).ToArray();
    }

    /// <summary>Whether the <c>Authorization</c> header carries one of the keys. Every key is compared, so the time taken does not say which one matched.</summary>
    public bool Accepts(string? authorization)
    {
        if (authorization is null || !authorization.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase)) return false;
        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(authorization.AsSpan(Scheme.Length).Trim().ToString()));
        bool match = false;
        foreach (var digest in _digests) match |= CryptographicOperations.FixedTimeEquals(digest, presented);
        return match;
    }

    /// <summary>The keys of <c>--api-key</c> or <c>W2S_API_KEY</c>: comma-separated, blanks around each dropped.</summary>
    public static IReadOnlyList<string> Parse(string? list) =>
        list is null ? [] : list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);

    /// <summary>
    /// Whether <paramref name="host"/> (a <see cref="ServerOptions.Host"/>) can be reached from other machines:
    /// anything but <c>localhost</c> and loopback addresses (<c>*</c>, 0.0.0.0 and [::] are every interface).
    /// </summary>
    public static bool IsReachableFromOutside(string host)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) return false;
        string bare = host.StartsWith('[') && host.EndsWith(']') ? host[1..^1] : host;
        return !(IPAddress.TryParse(bare, out var ip) && IPAddress.IsLoopback(ip));
    }

    /// <summary>Answers 401 to requests for protected paths without a valid key; counts them in <paramref name="metrics"/>.</summary>
    internal static void Use(WebApplication app, ServerOptions options, ServerMetrics metrics)
    {
        if (options.ApiKeys.Count == 0) return;
        var keys = new ApiKeys(options.ApiKeys);
        app.Use(next => http =>
        {
            var path = http.Request.Path;
            bool guarded = path.StartsWithSegments("/v1") || (options.MetricsNeedKey && path.StartsWithSegments("/metrics"));
            if (!guarded) return next(http);
            string? authorization = http.Request.Headers.Authorization;
            if (keys.Accepts(authorization)) return next(http);
            metrics.Request(ServerMetrics.Endpoint(path), 401);
            http.Response.Headers.WWWAuthenticate = "Bearer";
            return CompletionHandler.WriteErrorAsync(http, new ApiException(401, authorization is null
                ? "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
                : "Incorrect API key provided.", null, "invalid_api_key"));
        });
    }
}
