"""VADER's compound score, as the npm package vader-sentiment 1.1.3 computes it, for labelling DPO preferences.

The product's gold reward (`w2s eval --reward vader`, src/WeakToStrong.Cli/Rewards/VaderSentiment.cs) implements the
same rules in C#; both read the same lexicon file and both are checked against the package's own scores:

  python3 tools/train-sentiment/vader.py --check tests/WeakToStrong.Tests/TestData/vader/vader-sentiment-1.1.3.jsonl

Also here: the repetition measure of the labels (rep-3, the share of a text's word 3-grams that repeat an earlier
one), on the words `w2s eval` uses for its fluency measures.
"""
import json
import math
import os
import sys

LEXICON_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "WeakToStrong.Cli",
                            "Rewards", "vader-lexicon.tsv")

B_INCR = 0.293
C_INCR = 0.733
N_SCALAR = -0.74

NEGATE = {
    "aint", "arent", "cannot", "cant", "couldnt", "darent", "didnt", "doesnt", "ain't", "aren't", "can't", "couldn't",
    "daren't", "didn't", "doesn't", "dont", "hadnt", "hasnt", "havent", "isnt", "mightnt", "mustnt", "neither",
    "don't", "hadn't", "hasn't", "haven't", "isn't", "mightn't", "mustn't", "neednt", "needn't", "never", "none",
    "nope", "nor", "not", "nothing", "nowhere", "oughtnt", "shant", "shouldnt", "uhuh", "wasnt", "werent", "oughtn't",
    "shan't", "shouldn't", "uh-uh", "wasn't", "weren't", "without", "wont", "wouldnt", "won't", "wouldn't", "rarely",
    "seldom", "despite"}

BOOSTERS = dict.fromkeys(
    "absolutely amazingly awfully completely considerably decidedly deeply effing enormously entirely especially "
    "exceptionally extremely fabulously flipping flippin fricking frickin frigging friggin fully fucking greatly hella "
    "highly hugely incredibly intensely majorly more most particularly purely quite really remarkably so substantially "
    "thoroughly totally tremendously uber unbelievably unusually utterly very".split(), B_INCR)
BOOSTERS.update(dict.fromkeys(
    ["almost", "barely", "hardly", "just enough", "kind of", "kinda", "kindof", "kind-of", "less", "little",
     "marginally", "occasionally", "partly", "scarcely", "slightly", "somewhat", "sort of", "sorta", "sortof",
     "sort-of"], -B_INCR))

IDIOMS = {"the shit": 3, "the bomb": 3, "bad ass": 1.5, "yeah right": -2, "cut the mustard": 2, "kiss of death": -1.5,
          "hand to mouth": -2}

EDGE_PUNCTUATION = [".", "!", "?", ",", ";", ":", "-", "'", '"', "!!", "!!!", "??", "???", "?!?", "!?!", "?!?!",
                    "!?!?"]
ASCII_PUNCTUATION = set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~')
# JavaScript's \s (the package splits text with it).
JS_SPACE = set("\t\n\v\f\r \u00a0\u1680\u2028\u2029\u202f\u205f\u3000\ufeff") | {chr(c) for c in range(0x2000, 0x200b)}


def load_lexicon(path=LEXICON_PATH):
    lexicon = {}
    with open(path, encoding="utf-8", newline="\n") as f:
        for line in f.read().split("\n"):
            if line:
                token, valence = line.split("\t")
                lexicon[token] = float(valence)
    return lexicon


_LEXICON = None


def lexicon():
    global _LEXICON
    if _LEXICON is None:
        _LEXICON = load_lexicon()
    return _LEXICON


def _js_lower(s):
    # The package lower-cases with JavaScript's toLowerCase; for the ASCII text the models write, str.lower agrees.
    return s.lower()


def _bare(w):
    return len(w) > 1 and not any(c in ASCII_PUNCTUATION for c in w)


def words_and_emoticons(text):
    tokens, start = [], 0
    for i in range(len(text) + 1):
        if i < len(text) and text[i] not in JS_SPACE:
            continue
        piece = text[start:i]
        start = i + 1
        if _utf16_len(piece) > 1:
            tokens.append(_strip(piece))
    return tokens


def _utf16_len(s):
    return sum(2 if ord(c) > 0xFFFF else 1 for c in s)


def _strip(token):
    for mark in EDGE_PUNCTUATION:
        if token.startswith(mark) and _bare(token[len(mark):]):
            return token[len(mark):]
        if token.endswith(mark) and _bare(token[:-len(mark)]):
            return token[:-len(mark)]
    return token


def _all_caps(word):
    return any("A" <= c <= "Z" for c in word) and not any("a" <= c <= "z" for c in word)


def _negated(word):
    return word in NEGATE or "n't" in word


def scores(text):
    """(compound, pos, neu, neg), unrounded."""
    lex = lexicon()
    words = words_and_emoticons(text)
    caps = sum(1 for w in words if _all_caps(w))
    cap_diff = 0 < caps < len(words)
    sentiments = []
    for i, item in enumerate(words):
        lower = _js_lower(item)
        if (lower == "kind" and i < len(words) - 1 and _js_lower(words[i + 1]) == "of") or lower in BOOSTERS:
            sentiments.append(0.0)
            continue
        sentiments.append(_valence(lex, words, i, cap_diff))
    but = words.index("but") if "but" in words else words.index("BUT") if "BUT" in words else -1
    if but >= 0:
        sentiments = [s * 0.5 if i < but else s * 1.5 if i > but else s for i, s in enumerate(sentiments)]
    if not sentiments:
        return 0.0, 0.0, 0.0, 0.0
    total = 0.0
    for s in sentiments:
        total += s
    emphasis = min(text.count("!"), 4) * 0.292
    q = text.count("?")
    if q > 1:
        emphasis += q * 0.18 if q <= 3 else 0.96
    if total > 0:
        total += emphasis
    elif total < 0:
        total -= emphasis
    compound = max(-1.0, min(1.0, total / math.sqrt(total * total + 15)))
    pos = neg = 0.0
    neu = 0
    for s in sentiments:
        if s > 0:
            pos += s + 1
        elif s < 0:
            neg += s - 1
        else:
            neu += 1
    if pos > abs(neg):
        pos += emphasis
    elif pos < abs(neg):
        neg -= emphasis
    whole = pos + abs(neg) + neu
    return compound, abs(pos / whole), abs(neu / whole), abs(neg / whole)


def compound(text):
    return scores(text)[0]


def _valence(lex, words, i, cap_diff):
    item = words[i]
    valence = lex.get(_js_lower(item))
    if valence is None:
        return 0.0
    if _all_caps(item) and cap_diff:
        valence += C_INCR if valence > 0 else -C_INCR
    for back in range(3):
        if i <= back or _js_lower(words[i - back - 1]) in lex:
            continue
        s = _booster(words[i - back - 1], valence, cap_diff)
        if back == 1:
            s *= 0.95
        elif back == 2:
            s *= 0.9
        valence += s
        valence = _never(valence, words, back, i)
        if back == 2:
            valence = _idioms(valence, words, i)
    if i > 0 and _js_lower(words[i - 1]) == "least" and "least" not in lex:
        if i == 1 or _js_lower(words[i - 2]) not in ("at", "very"):
            valence *= N_SCALAR
    return valence


def _booster(word, valence, cap_diff):
    scalar = BOOSTERS.get(_js_lower(word), 0.0)
    if scalar == 0.0:
        return 0.0
    if valence < 0:
        scalar = -scalar
    if cap_diff and _all_caps(word):
        scalar += C_INCR if valence > 0 else -C_INCR
    return scalar


def _never(valence, words, back, i):
    if back == 0:
        return valence * N_SCALAR if _negated(words[i - 1]) else valence
    if back == 1:
        if words[i - 2] == "never" and words[i - 1] in ("so", "this"):
            return valence * 1.5
        return valence * N_SCALAR if _negated(words[i - 2]) else valence
    if (words[i - 3] == "never" and words[i - 2] in ("so", "this")) or words[i - 1] in ("so", "this"):
        return valence * 1.25
    return valence * N_SCALAR if _negated(words[i - 3]) else valence


def _idioms(valence, words, i):
    one_zero = f"{words[i - 1]} {words[i]}"
    two_one_zero = f"{words[i - 2]} {words[i - 1]} {words[i]}"
    two_one = f"{words[i - 2]} {words[i - 1]}"
    three_two_one = f"{words[i - 3]} {words[i - 2]} {words[i - 1]}"
    three_two = f"{words[i - 3]} {words[i - 2]}"
    for seq in (one_zero, two_one_zero, two_one, three_two_one, three_two):
        if seq in IDIOMS:
            valence = IDIOMS[seq]
            break
    if len(words) - 1 > i and f"{words[i]} {words[i + 1]}" in IDIOMS:
        valence = IDIOMS[f"{words[i]} {words[i + 1]}"]
    if len(words) - 1 > i + 1 and f"{words[i]} {words[i + 1]} {words[i + 2]}" in IDIOMS:
        valence = IDIOMS[f"{words[i]} {words[i + 1]} {words[i + 2]}"]
    if three_two in BOOSTERS or two_one in BOOSTERS:
        valence -= B_INCR
    return valence


def words(text):
    """The words of the fluency measures (as `w2s eval`): whitespace pieces, non-alphanumeric ends stripped, lower-cased."""
    for w in text.split():
        start, end = 0, len(w)
        while start < end and not w[start].isalnum():
            start += 1
        while end > start and not w[end - 1].isalnum():
            end -= 1
        if start < end:
            yield w[start:end].lower()


def repeated_trigram_share(text):
    """rep-3 (Welleck et al. 2020): 1 - distinct word 3-grams / word 3-grams; 0 when there is no 3-gram."""
    w = list(words(text))
    grams = [tuple(w[k:k + 3]) for k in range(len(w) - 2)]
    return 1 - len(set(grams)) / len(grams) if grams else 0.0


def check(path):
    """Our scores against the package's (rounded to 4 and 3 decimals); returns the number of sentences that differ."""
    bad, n = 0, 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            e = json.loads(line)
            c, p, u, g = scores(e["text"])
            n += 1
            if (abs(c - e["compound"]) > 0.5e-4 + 1e-12 or abs(p - e["pos"]) > 0.5e-3 + 1e-12
                    or abs(u - e["neu"]) > 0.5e-3 + 1e-12 or abs(g - e["neg"]) > 0.5e-3 + 1e-12):
                bad += 1
                print(f"differs: {json.dumps(e['text'])}: package {e['compound']}, ours {c}")
    print(f"{n - bad}/{n} sentences agree with the package")
    return bad


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "--check":
        sys.exit(__doc__)
    sys.exit(1 if check(sys.argv[2]) else 0)
