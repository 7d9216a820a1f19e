using WeakToStrong.Engine;
using WeakToStrong.Engine.KvCache;
using WeakToStrong.Tokenization;

namespace WeakToStrong.Search.LargeModels;

/// <summary>
/// A large model run by this engine. Every step of a chunk is one ragged forward over all unfinished candidates;
/// candidates are KV-cache sequences, so forking a survivor copies its block table, not its KV. Forks that have not
/// drawn yet (a survivor's K children at the start of a chunk) would feed the same token at the same place: they
/// share one row, each drawing with its own key, and then share its KV.
/// </summary>
public sealed class LocalLargeModel : ILargeModel
{
    private readonly bool _ownsModel;

    public LocalLargeModel(ChatModel model, bool ownsModel = false)
    {
        ArgumentNullException.ThrowIfNull(model);
        Model = model;
        _ownsModel = ownsModel;
    }

    public ChatModel Model { get; }

    public string Name => Model.Name;

    public TextTokenizer? Tokenizer => Model.Tokenizer;

    /// <summary>True: every step of a chunk is one forward anyway.</summary>
    public bool SingleStepsAreCheap => true;

    public async Task<LargeCandidate> StartAsync(string prompt, GenerationSettings settings, SearchCounters counters, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(counters);
        cancellationToken.ThrowIfCancellationRequested();
        var tokens = Model.EncodePrompt(prompt, settings.Chat, settings.SystemPrompt, settings.History).Tokens;
        int context = Model.Spec.MaxPositions;
        if (tokens.Count >= context)
            throw new RequestValidationException(SearchField.Prompt, $"{Name}: the prompt is {tokens.Count} tokens and leaves no room in the model's context of {context}");
        var stops = new StopChecker(Model.Tokenizer, settings.EosTokenIds ?? Model.StopTokenIds(settings.Chat), settings.StopStrings,
            Math.Min(settings.MaxNewTokens, context - tokens.Count));
        var sequence = Model.Transformer.CreateSequence(tokens, key: 0);
        try
        {
            // All but the last prompt token are fed once for every candidate; each candidate feeds the last one
            // with its first draw, which is then the same call as plain generation's first step.
            if (tokens.Count > 1)
            {
                await Model.Transformer.ForwardAsync([new ForwardRequest(sequence, tokens.Count - 1)], cancellationToken).ConfigureAwait(false);
                counters.LargeForwardCalls++;
                counters.LargeTokensFed += tokens.Count - 1;
            }
            var shared = new PromptState(stops, settings.Sampling, tokens.Count);
            return new Candidate(shared, sequence, []);
        }
        catch
        {
            sequence.Dispose();
            throw;
        }
    }

    public async Task ExtendAsync(IReadOnlyList<LargeCandidate> candidates, int maxTokens, SearchCounters counters, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        ArgumentNullException.ThrowIfNull(counters);
        ArgumentOutOfRangeException.ThrowIfNegative(maxTokens);
        var open = new List<Candidate>(candidates.Count);
        foreach (var c in candidates)
        {
            if (c is not Candidate local || local.Sequence.Cache != Model.Transformer.Cache)
                throw new ArgumentException("a candidate belongs to another large model", nameof(candidates));
            if (!local.IsFinished) open.Add(local);
        }
        for (int step = 0; step < maxTokens && open.Count > 0; step++)
        {
            var twins = Twins(open);
            var requests = new ForwardRequest[twins.Count];
            for (int g = 0; g < twins.Count; g++)
            {
                var group = twins[g];
                requests[g] = new ForwardRequest(group[0].Sequence, Sampling: group[0].Shared.Sampling,
                    SampleKeys: group.Count > 1 ? group.ConvertAll(c => c.Sequence.Key) : null);
            }
            var results = await Model.Transformer.ForwardAsync(requests, cancellationToken).ConfigureAwait(false);
            counters.LargeForwardCalls++;
            counters.LargeTokensSampled += open.Count;
            counters.LargeTokensFed += twins.Count;
            for (int g = 0; g < twins.Count; g++)
            {
                var group = twins[g];
                for (int m = 1; m < group.Count; m++) group[m].Sequence.ShareCacheOf(group[0].Sequence);
                for (int m = 0; m < group.Count; m++) group[m].Add(results[g].SampledTokens[m]);
            }
            open.RemoveAll(c => c.IsFinished);
        }
    }

    /// <summary>
    /// The candidates grouped by what their next row would compute: candidates with one token to feed and the same
    /// state (<see cref="SameStateComparer"/>: forks that have not fed since forking, with the same pending token); in
    /// order of first appearance, each group led by its first member.
    /// </summary>
    private static List<List<Candidate>> Twins(List<Candidate> open)
    {
        var groups = new List<List<Candidate>>(open.Count);
        var byState = new Dictionary<Sequence, List<Candidate>>(SameStateComparer.Instance);
        foreach (var c in open)
        {
            var s = c.Sequence;
            if (s.CachedLength != s.Length - 1)
            {
                groups.Add([c]);
                continue;
            }
            if (byState.TryGetValue(s, out var group))
            {
                group.Add(c);
            }
            else
            {
                group = [c];
                byState.Add(s, group);
                groups.Add(group);
            }
        }
        return groups;
    }

    public void Dispose()
    {
        if (_ownsModel) Model.Dispose();
    }

    /// <summary>What every candidate of one search shares.</summary>
    private sealed record PromptState(StopChecker Stops, SamplingSettings Sampling, int PromptLength);

    private sealed class Candidate : LargeCandidate
    {
        private readonly List<int> _response;
        private string? _text;
        private int _textLength = -1;

        public Candidate(PromptState shared, Sequence sequence, List<int> response) : base(sequence.Key)
        {
            Shared = shared;
            Sequence = sequence;
            _response = response;
            Finish = shared.Stops.Check(_response);
        }

        public PromptState Shared { get; }

        /// <summary>Prompt + response; every token but the last is in the KV cache.</summary>
        public Sequence Sequence { get; }

        public override IReadOnlyList<int>? Tokens => _response;

        public override int TokenCount => _response.Count;

        public override string Text
        {
            get
            {
                if (_textLength != _response.Count)
                {
                    _text = Shared.Stops.Text(_response, Finish);
                    _textLength = _response.Count;
                }
                return _text!;
            }
        }

        public override bool TextMatchesTokens => Finish != FinishReason.StopString || Text == Shared.Stops.Text(_response, FinishReason.None);

        public void Add(int token)
        {
            Sequence.Append(token);
            _response.Add(token);
            _textLength = -1;
            Finish = Shared.Stops.Check(_response);
        }

        public override LargeCandidate Fork(ulong key)
        {
            return new Candidate(Shared, Sequence.Fork(key), [.. _response]);
        }

        public override void Dispose() => Sequence.Dispose();
    }
}
