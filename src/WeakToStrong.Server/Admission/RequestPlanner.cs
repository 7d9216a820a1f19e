using WeakToStrong.Search;
using WeakToStrong.Search.LargeModels;
using WeakToStrong.Server.Protocol;

namespace WeakToStrong.Server.Admission;

/// <summary>What a request needs before it runs: prompt sizes, context checks, and KV blocks per local model.</summary>
/// <param name="PromptTokens">The prompt in the large model's tokens (the tuned model's when the large model is remote).</param>
/// <param name="Blocks">KV blocks per local model (<see cref="WeakToStrongSearch.LocalModels"/> order) the request could hold at most.</param>
internal sealed record RequestPlan(int PromptTokens, long[] Blocks);

/// <summary>
/// Checks a request against the models' contexts (400 <c>context_length_exceeded</c>, as OpenAI names it) and
/// bounds the KV it can hold with the library's <see cref="SearchCapacity.BlocksNeeded"/> (the peak of the forked
/// search tree), times the searches the request runs, so that admission control can reserve it up front.
/// </summary>
internal static class RequestPlanner
{
    public static RequestPlan Plan(WeakToStrongSearch search, ParsedRequest request)
    {
        var s = request.Search;
        var large = search.Context.Large;
        var locals = search.LocalModels;
        var blocks = new long[locals.Count];
        int promptTokens = -1;
        for (int m = 0; m < locals.Count; m++)
        {
            var model = locals[m];
            bool isLarge = large is LocalLargeModel l && ReferenceEquals(l.Model, model);
            int p = model.EncodePrompt(s.Prompt, s.Chat, s.SystemPrompt, s.History).Tokens.Count;
            int context = model.Spec.MaxPositions;
            if (isLarge || (promptTokens < 0 && m == locals.Count - 2)) promptTokens = p;
            bool sameVocabulary = !isLarge && large.Tokenizer is { } t && t.HasSameVocabulary(model.Tokenizer);
            // A small model with the large model's tokens scores the response and its own end token.
            int completion = isLarge ? s.MaxNewTokens : sameVocabulary ? s.MaxNewTokens + 1 : 1;
            if (p + completion > context)
                throw ContextExceeded(context, p, completion, isLarge ? "" : $" of the small {(m == locals.Count - 2 ? "tuned" : "untuned")} model");
            long one = SearchCapacity.BlocksNeeded(s, p, context, model.Transformer.Cache.BlockSize, scorer: !isLarge);
            blocks[m] = one > long.MaxValue / request.Searches ? long.MaxValue : one * request.Searches;
        }
        return new RequestPlan(promptTokens, blocks);
    }

    private static ApiException ContextExceeded(int context, int prompt, int completion, string which) => ApiException.BadRequest(
        $"This model's maximum context length{which} is {context} tokens. However, you requested {prompt + completion} tokens ({prompt} in the messages/prompt, {completion} for the completion). Please reduce the length of the prompt or the completion.",
        "max_tokens", "context_length_exceeded");
}
