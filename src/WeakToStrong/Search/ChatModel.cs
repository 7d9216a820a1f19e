using WeakToStrong.Backends;
using WeakToStrong.Chat;
using WeakToStrong.Checkpoints;
using WeakToStrong.Engine;
using WeakToStrong.Tokenization;

namespace WeakToStrong.Search;

/// <summary>
/// A local engine model with its tokenizer and its prompt format: what the search needs to turn a raw prompt and a
/// response text into this model's token ids.
/// </summary>
public sealed class ChatModel : IDisposable
{
    private readonly IDisposable? _owned;

    /// <summary>Wraps a model held elsewhere (e.g. one built in memory for a benchmark).</summary>
    /// <param name="transformer">The model.</param>
    /// <param name="tokenizer">Its tokenizer.</param>
    /// <param name="template">Its chat template (used when a request asks for chat formatting).</param>
    /// <param name="name">Names the model in traces and errors.</param>
    /// <param name="owned">Disposed with this wrapper.</param>
    public ChatModel(Transformer transformer, TextTokenizer tokenizer, ChatTemplate template, string name, IDisposable? owned = null)
    {
        ArgumentNullException.ThrowIfNull(transformer);
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentNullException.ThrowIfNull(template);
        ArgumentNullException.ThrowIfNull(name);
        Transformer = transformer;
        Tokenizer = tokenizer;
        Template = template;
        Name = name;
        _owned = owned;
        var eos = new List<int>(transformer.Spec.EosTokenIds);
        if (tokenizer.EosTokenId is { } tokenizerEos && !eos.Contains(tokenizerEos)) eos.Add(tokenizerEos);
        EosTokenIds = eos;
    }

    /// <summary>Wraps a loaded model with its folder's tokenizer and the given template.</summary>
    public ChatModel(LanguageModel model, ChatTemplate template)
        : this(model.Transformer, model.Tokenizer, template, model.Directory)
    {
        Model = model;
    }

    /// <summary>
    /// Loads a Hugging Face model folder with its tokenizer; the chat template is <paramref name="template"/>, or
    /// the one tokenizer_config.json names when recognised, or none.
    /// </summary>
    /// <param name="directory">The model folder.</param>
    /// <param name="options">Device and KV pool settings.</param>
    /// <param name="template">The chat template; null picks it from the folder.</param>
    /// <param name="backend">A backend to share with other models (one device context and stream); null makes one
    /// that the model owns.</param>
    public static ChatModel Load(string directory, ModelOptions? options = null, ChatTemplate? template = null, IBackend? backend = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(directory);
        template ??= ChatTemplate.FromModelDirectory(directory);
        var model = LanguageModel.Load(directory, options, backend);
        try
        {
            return new ChatModel(model.Transformer, model.Tokenizer, template, model.Directory, model) { Model = model };
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>The loaded model, when this wraps one (null for a bare transformer).</summary>
    public LanguageModel? Model { get; private init; }

    public Transformer Transformer { get; }

    public ModelSpec Spec => Transformer.Spec;

    public TextTokenizer Tokenizer { get; }

    public ChatTemplate Template { get; }

    /// <summary>The model folder, or another name (names the model in traces and errors).</summary>
    public string Name { get; }

    /// <summary>Tokens that end a response: the checkpoint's EOS ids and the tokenizer's EOS.</summary>
    public IReadOnlyList<int> EosTokenIds { get; }

    /// <summary>The stop tokens of a response in the given format: EOS, plus the template's end-of-turn token.</summary>
    public IReadOnlyList<int> StopTokenIds(bool chat)
    {
        if (!chat || Template.EndOfTurnToken is not { } endOfTurn || Tokenizer.TokenToId(endOfTurn) is not { } id || EosTokenIds.Contains(id))
            return EosTokenIds;
        return [.. EosTokenIds, id];
    }

    /// <summary>
    /// The token appended to a finished response before it is scored: the template's end-of-turn token in chat
    /// format, else the tokenizer's EOS, else the checkpoint's first EOS id; null when the model has none.
    /// </summary>
    public int? EndOfResponseToken(bool chat)
    {
        if (chat && Template.EndOfTurnToken is { } endOfTurn && Tokenizer.TokenToId(endOfTurn) is { } id) return id;
        if (Tokenizer.EosTokenId is { } eos) return eos;
        return Spec.EosTokenIds.Count > 0 ? Spec.EosTokenIds[0] : null;
    }

    /// <summary>
    /// This model's view of a raw prompt: its template (when <paramref name="chat"/>) around the system message, the
    /// earlier turns and the prompt, rendered and split for tokenizing.
    /// </summary>
    /// <exception cref="RequestValidationException">The template refuses the conversation
    /// (<see cref="SearchField.History"/>), or the prompt encodes to no token (<see cref="SearchField.Prompt"/>).</exception>
    public PromptEncoding EncodePrompt(string prompt, bool chat, string? system = null, IReadOnlyList<ChatTurn>? history = null)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        IReadOnlyList<PromptSegment> segments;
        try
        {
            segments = (chat ? Template : ChatTemplate.None).Render(prompt, system, history);
        }
        catch (InvalidSettingException e) when (e.ParamName == nameof(history))
        {
            // A conversation this model's template refuses: blame the request's history.
            throw new RequestValidationException(SearchField.History, $"{Name}: {e.Reason}", e);
        }
        var prefix = new List<int>();
        if (Tokenizer.AddBosToken && !segments.Any(s => s.Kind == PromptSegmentKind.Bos) && Tokenizer.BosTokenId is { } bos)
            prefix.Add(bos);
        // The trailing text is kept apart so that a response is tokenized together with it, as Hugging Face
        // tokenizes prompt + response in one call: merges across the boundary come out the same way.
        string tail = "";
        int count = segments.Count;
        if (count > 0 && segments[^1].Kind == PromptSegmentKind.Text)
        {
            tail = segments[^1].Value;
            count--;
        }
        for (int i = 0; i < count; i++) AppendSegment(prefix, segments[i]);
        var tokens = new List<int>(prefix);
        tokens.AddRange(Tokenizer.Encode(tail));
        if (tokens.Count == 0)
            throw new RequestValidationException(SearchField.Prompt, $"{Name}: the prompt encodes to no token and the tokenizer adds no BOS; a prompt needs at least one token");
        return new PromptEncoding(this, prefix, tail, tokens);
    }

    private void AppendSegment(List<int> tokens, PromptSegment segment)
    {
        switch (segment.Kind)
        {
            case PromptSegmentKind.Text:
                tokens.AddRange(Tokenizer.Encode(segment.Value));
                break;
            case PromptSegmentKind.Bos:
                tokens.Add(Tokenizer.BosTokenId ?? throw new InvalidOperationException($"{Name}: the {Template} template needs a BOS token and the tokenizer has none"));
                break;
            case PromptSegmentKind.Eos:
                tokens.Add(Tokenizer.EosTokenId ?? throw new InvalidOperationException($"{Name}: the {Template} template needs an EOS token and the tokenizer has none"));
                break;
            case PromptSegmentKind.Special:
                tokens.Add(Tokenizer.TokenToId(segment.Value) ?? throw new InvalidOperationException($"{Name}: the {Template} template needs the token {segment.Value}, which the tokenizer lacks; pick another template"));
                break;
        }
    }

    public void Dispose() => _owned?.Dispose();
}

/// <summary>A prompt in one model's tokens, and how a response text joins it.</summary>
public sealed class PromptEncoding
{
    private readonly List<int> _prefix;

    internal PromptEncoding(ChatModel model, List<int> prefix, string tail, List<int> tokens)
    {
        Model = model;
        _prefix = prefix;
        Tail = tail;
        Tokens = tokens;
    }

    public ChatModel Model { get; }

    /// <summary>The prompt's tokens.</summary>
    public IReadOnlyList<int> Tokens { get; }

    /// <summary>The prompt's trailing text, tokenized together with a response.</summary>
    public string Tail { get; }

    /// <summary>
    /// Prompt and response in this model's tokens, tokenized as the reference does: the prompt's trailing text and
    /// the response in one call; the response part starts after the longest common prefix with the prompt's tokens.
    /// </summary>
    public (List<int> Tokens, int ResponseStart) WithResponse(string response)
    {
        ArgumentNullException.ThrowIfNull(response);
        var tokens = new List<int>(_prefix.Count + response.Length / 3 + 8);
        tokens.AddRange(_prefix);
        tokens.AddRange(Model.Tokenizer.Encode(Tail + response));
        return (tokens, CommonPrefixLength(Tokens, tokens));
    }

    /// <summary>Prompt tokens followed by response tokens already in this model's vocabulary.</summary>
    public List<int> WithResponseTokens(IReadOnlyList<int> response)
    {
        var tokens = new List<int>(Tokens.Count + response.Count + 1);
        tokens.AddRange(Tokens);
        tokens.AddRange(response);
        return tokens;
    }

    internal static int CommonPrefixLength(IReadOnlyList<int> a, IReadOnlyList<int> b)
    {
        int n = Math.Min(a.Count, b.Count), i = 0;
        while (i < n && a[i] == b[i]) i++;
        return i;
    }
}
