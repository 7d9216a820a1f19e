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
/// bounds the KV it can hold, so that admission control can reserve it up front.
/// </summary>
/// <remarks>
/// The bound, per model with blocks of B tokens, prompt P and response R in that model's tokens, for a search
/// keeping C candidates: the prompt's blocks once (forks share them), and per candidate every block from the one
/// holding the last prompt token to the end of its response (a write into a shared, partly filled block copies
/// it). The large model samples at most R = max_tokens; a small model with the large model's vocabulary scores
/// R = max_tokens + 1 (EOS); one that re-tokenises text may hold up to its whole context privately (re-tokenising
/// can change tokens back into the prompt), which is the only bound that holds for any text.
/// </remarks>
internal static class RequestPlanner
{
    public static RequestPlan Plan(WeakToStrongSearch search, ParsedRequest request)
    {
        var s = request.Search;
        int candidates = request.CandidatesPerSearch * request.Searches;
        var large = search.Context.Large;
        var locals = search.LocalModels;
        var blocks = new long[locals.Count];
        int promptTokens = -1;
        for (int m = 0; m < locals.Count; m++)
        {
            var model = locals[m];
            bool isLarge = large is LocalLargeModel l && ReferenceEquals(l.Model, model);
            int p = model.EncodePrompt(s.Prompt, s.Chat, s.SystemPrompt).Tokens.Count;
            int context = model.Spec.MaxPositions;
            int b = model.Transformer.Cache.BlockSize;
            if (isLarge || (promptTokens < 0 && m == locals.Count - 2)) promptTokens = p;
            if (isLarge)
            {
                if (p + s.MaxNewTokens > context) throw ContextExceeded(context, p, s.MaxNewTokens, "");
                blocks[m] = Ceil(p, b) + (long)candidates * (Ceil(p + s.MaxNewTokens, b) - (p - 1) / b);
                continue;
            }
            bool sameVocabulary = large.Tokenizer is { } t && t.HasSameVocabulary(model.Tokenizer);
            if (sameVocabulary)
            {
                if (p + s.MaxNewTokens + 1 > context) throw ContextExceeded(context, p, s.MaxNewTokens + 1, $" of the small model {model.Name}");
                blocks[m] = Ceil(p, b) + (long)candidates * (Ceil(p + s.MaxNewTokens + 1, b) - p / b);
            }
            else
            {
                if (p >= context) throw ContextExceeded(context, p, 1, $" of the small model {model.Name}");
                blocks[m] = Ceil(p, b) + (long)candidates * Ceil(context, b);
            }
        }
        return new RequestPlan(promptTokens, blocks);
    }

    private static long Ceil(int tokens, int blockSize) => (tokens + blockSize - 1) / blockSize;

    private static ApiException ContextExceeded(int context, int prompt, int completion, string which) => ApiException.BadRequest(
        $"This model's maximum context length{which} is {context} tokens. However, you requested {prompt + completion} tokens ({prompt} in the messages/prompt, {completion} for the completion). Please reduce the length of the prompt or the completion.",
        "max_tokens", "context_length_exceeded");
}
