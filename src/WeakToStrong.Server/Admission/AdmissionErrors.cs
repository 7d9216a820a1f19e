using System.Globalization;
using WeakToStrong.Engine.Scheduling;
using WeakToStrong.Server.Protocol;

namespace WeakToStrong.Server.Admission;

/// <summary>
/// The library's admission refusals as OpenAI errors: a request that could never fit is a 400
/// <c>kv_budget_exceeded</c> naming what to lower in API terms; a full queue is a 429 <c>queue_full</c> with Retry-After.
/// </summary>
internal static class AdmissionErrors
{
    public static ApiException ToApiException(KvAdmissionException refusal) => refusal switch
    {
        KvNeverFitsException n => ApiException.BadRequest(string.Create(CultureInfo.InvariantCulture,
            $"This request could need {n.BlocksNeeded} KV blocks of {n.BlockSize} tokens on {n.Model}, more than its whole pool of {n.PoolBlocks}; ") +
            "lower max_tokens, n, best_of or the search's candidates (beam_width × successors, n), or start the server with more --kv-memory.",
            "max_tokens", "kv_budget_exceeded"),
        KvQueueFullException q => new ApiException(429, string.Create(CultureInfo.InvariantCulture,
            $"The server is busy: {q.Running} requests are running and {q.Queued} are waiting for KV memory (queue limit {q.MaxQueue}). Retry after {Seconds(q.RetryAfter)} s."),
            null, "queue_full", "rate_limit_error") { RetryAfterSeconds = Seconds(q.RetryAfter) },
        // The base's constructor is private protected: the library defines every kind.
        _ => throw new System.Diagnostics.UnreachableException($"unknown admission refusal {refusal.GetType().Name}"),
    };

    /// <summary>Retry-After is whole seconds: round up, so a client never comes back too early.</summary>
    private static int Seconds(TimeSpan wait) => (int)Math.Ceiling(wait.TotalSeconds);
}
