using WeakToStrong.Engine.Scheduling;
using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;
using WeakToStrong.Server.Protocol;

namespace WeakToStrong.Server.Admission;

/// <summary>What a request needs before it runs: prompt sizes, context checks, and KV blocks per local model.</summary>
/// <param name="PromptTokens">The prompt in the large model's tokens (the tuned model's when the large model is remote).</param>
/// <param name="Blocks">KV blocks per local model (<see cref="WeakToStrongSearch.LocalModels"/> order) the request could hold at most.</param>
internal sealed record RequestPlan(int PromptTokens, IReadOnlyList<long> Blocks);

/// <summary>
/// Checks a request against the models' contexts (400 <c>context_length_exceeded</c>, as OpenAI names it: the
/// library would cut the response to the context instead) and takes the KV it can hold from the library's
/// <see cref="SearchCapacity.Plan"/> (the peak of the forked search tree, times the searches the request runs),
/// so that admission control can reserve it up front.
/// </summary>
internal static class RequestPlanner
{
    public static RequestPlan Plan(WeakToStrongSearch search, ParsedRequest request)
    {
        var s = request.Search;
        var kv = SearchCapacity.Plan(search, s, request.Searches);
        var large = search.Context.Large;
        var locals = search.LocalModels;
        bool localLarge = large is LocalLargeModel;
        for (int m = 0; m < locals.Count; m++)
        {
            var model = locals[m];
            bool isLarge = localLarge && m == 0;
            int p = kv.PromptTokens[m];
            int context = model.Spec.MaxPositions;
            bool sameVocabulary = !isLarge && large.Tokenizer is { } t && t.HasSameVocabulary(model.Tokenizer);
            // A small model with the large model's tokens scores the response and its own end token.
            int completion = isLarge ? s.MaxNewTokens : sameVocabulary ? s.MaxNewTokens + 1 : 1;
            if (p + completion > context)
                throw ContextExceeded(context, p, completion, isLarge ? "" : $" of the small {(m == locals.Count - 2 ? "tuned" : "untuned")} model");
        }
        // The first local model is the large one, or the tuned one when the large model is remote.
        return new RequestPlan(kv.PromptTokens[0], kv.Blocks);
    }

    private static ApiException ContextExceeded(int context, int prompt, int completion, string which) => ApiException.BadRequest(
        $"This model's maximum context length{which} is {context} tokens. However, you requested {prompt + completion} tokens ({prompt} in the messages/prompt, {completion} for the completion). Please reduce the length of the prompt or the completion.",
        "max_tokens", "context_length_exceeded");
}
