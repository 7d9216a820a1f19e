using System.Text.RegularExpressions;

namespace WeakToStrong.Tokenization;

/// <summary>
/// Cuts normalised text into the words that BPE merges never cross, as Hugging Face's pre-tokenizers do before the
/// byte-level mapping. Each step maps every current piece to one or more pieces, in order.
/// </summary>
internal sealed class PreTokenizer
{
    /// <summary>GPT-2's word pattern (also what Hugging Face's ByteLevel pre-tokenizer uses when use_regex is on).</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private readonly IReadOnlyList<Step> _steps;

    private PreTokenizer(IReadOnlyList<Step> steps)
    {
        _steps = steps;
        Description = string.Join("\n", steps.Select(step => step.Description));
    }

    /// <summary>A canonical text form of the steps, so that equivalent configurations fingerprint alike.</summary>
    public string Description { get; }

    /// <summary>GPT-2's pre-tokenizer: an optional leading space, then <see cref="Gpt2Pattern"/>.</summary>
    public static PreTokenizer Gpt2(bool addPrefixSpace) => new Builder().AddByteLevel(addPrefixSpace, useRegex: true).Build();

    public List<string> Split(string text)
    {
        var pieces = new List<string> { text };
        foreach (var step in _steps)
        {
            var next = new List<string>(pieces.Count * 4);
            foreach (var piece in pieces)
            {
                step.Apply(piece, next);
            }

            pieces = next;
        }

        return pieces;
    }

    /// <summary>Collects steps in the order a tokenizer file lists them.</summary>
    public sealed class Builder
    {
        private readonly List<Step> _steps = [];

        /// <summary>
        /// A regex split that keeps both the matches and the text between them as pieces (Hugging Face's "Isolated"
        /// behaviour). Throws <see cref="NotSupportedException"/> for patterns .NET's regex engine cannot compile.
        /// </summary>
        public Builder AddSplit(string pattern)
        {
            _steps.Add(new RegexSplit(pattern));
            return this;
        }

        /// <summary>Hugging Face's ByteLevel pre-tokenizer; the byte mapping itself happens later, per word.</summary>
        public Builder AddByteLevel(bool addPrefixSpace, bool useRegex)
        {
            if (addPrefixSpace)
            {
                _steps.Add(new PrefixSpace());
            }

            return useRegex ? AddSplit(Gpt2Pattern) : this;
        }

        public PreTokenizer Build() => new(_steps.ToArray());
    }

    private abstract class Step
    {
        public abstract string Description { get; }

        public abstract void Apply(string piece, List<string> output);
    }

    private sealed class PrefixSpace : Step
    {
        public override string Description => "prefix-space";

        public override void Apply(string piece, List<string> output) =>
            output.Add(piece.StartsWith(' ') ? piece : " " + piece);
    }

    private sealed class RegexSplit : Step
    {
        private readonly Regex _regex;

        public RegexSplit(string pattern)
        {
            try
            {
                _regex = new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);
            }
            catch (ArgumentException ex)
            {
                throw new NotSupportedException($"pre-tokenizer pattern {pattern} does not compile in .NET: {ex.Message}", ex);
            }

            Description = "split-isolated " + pattern;
        }

        public override string Description { get; }

        public override void Apply(string piece, List<string> output)
        {
            var end = 0;
            foreach (var match in _regex.EnumerateMatches(piece))
            {
                if (match.Index > end)
                {
                    output.Add(piece[end..match.Index]);
                }

                if (match.Length > 0)
                {
                    output.Add(piece.Substring(match.Index, match.Length));
                }

                end = match.Index + match.Length;
            }

            if (end < piece.Length)
            {
                output.Add(piece[end..]);
            }
        }
    }
}
