"""Byte-level BPE (GPT-2 style): training on word counts, encoding, and Hugging Face tokenizer.json output.

The pre-tokenizer is GPT-2's regex (ByteLevel with use_regex=true), written with Python's `re`: \\p{L} as
[^\\W\\d_] and \\p{N} as \\d, which agree on the ASCII-normalised corpus. The runtime uses its own implementation of
the same split; the C# tests compare its ids with the ids this file produced for the held-out text.
"""
import collections
import heapq
import json
import re

PATTERN = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?[^\W\d_]+| ?\d+| ?(?:[^\s\w]|_)+|\s+(?!\S)|\s+""")
EOS = "<|endoftext|>"


def bytes_to_unicode():
    """GPT-2's reversible byte → printable character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("\u00a1"), ord("\u00ac") + 1)) + \
        list(range(ord("\u00ae"), ord("\u00ff") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}


def pieces(text):
    for m in PATTERN.finditer(text):
        yield "".join(BYTE_TO_CHAR[b] for b in m.group(0).encode("utf-8"))


def train(texts, vocab_size):
    """Merges learnt greedily (most frequent pair; ties broken by the smaller pair) until vocab_size tokens,
    counting the 256 bytes and the one special token."""
    counts = collections.Counter()
    for t in texts:
        counts.update(pieces(t))
    words = [list(w) for w in counts]
    freq = [counts[w] for w in counts]
    pair_count = collections.Counter()
    where = collections.defaultdict(set)
    for i, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pair_count[(a, b)] += freq[i]
            where[(a, b)].add(i)
    heap = [(-c, p) for p, c in pair_count.items()]
    heapq.heapify(heap)
    merges = []
    target = vocab_size - 256 - 1
    while len(merges) < target and heap:
        c, p = heapq.heappop(heap)
        if pair_count.get(p, 0) != -c or c == 0:
            continue
        merges.append(p)
        a, b = p
        merged = a + b
        for i in list(where[p]):
            w = words[i]
            if len(w) < 2:
                continue
            f = freq[i]
            for x, y in zip(w, w[1:]):
                pair_count[(x, y)] -= f
            new = []
            j = 0
            while j < len(w):
                if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
                    new.append(merged)
                    j += 2
                else:
                    new.append(w[j])
                    j += 1
            words[i] = new
            touched = set()
            for x, y in zip(new, new[1:]):
                pair_count[(x, y)] += f
                where[(x, y)].add(i)
                touched.add((x, y))
            for x, y in zip(w, w[1:]):
                touched.add((x, y))
            for q in touched:
                if q != p and pair_count[q] > 0:
                    heapq.heappush(heap, (-pair_count[q], q))
        del pair_count[p]
        where.pop(p, None)
    return merges


class Tokenizer:
    def __init__(self, merges):
        self.merges = [tuple(m) for m in merges]
        self.ranks = {m: i for i, m in enumerate(self.merges)}
        alphabet = [BYTE_TO_CHAR[b] for b in range(256)]
        self.vocab = {c: i for i, c in enumerate(alphabet)}
        for a, b in self.merges:
            self.vocab.setdefault(a + b, len(self.vocab))
        self.eos_id = len(self.vocab)
        self.vocab_size = self.eos_id + 1
        self.inverse = {i: t for t, i in self.vocab.items()}
        self.cache = {}

    def _bpe(self, piece):
        ids = self.cache.get(piece)
        if ids is not None:
            return ids
        w = list(piece)
        while len(w) > 1:
            best = min(((self.ranks.get((x, y), 1 << 30), k) for k, (x, y) in enumerate(zip(w, w[1:]))))
            if best[0] == 1 << 30:
                break
            k = best[1]
            w[k:k + 2] = [w[k] + w[k + 1]]
        ids = [self.vocab[t] for t in w]
        self.cache[piece] = ids
        return ids

    def encode(self, text):
        out = []
        for p in pieces(text):
            out.extend(self._bpe(p))
        return out

    def decode(self, ids):
        data = bytearray()
        for i in ids:
            if i == self.eos_id:
                continue
            data.extend(CHAR_TO_BYTE[c] for c in self.inverse[i])
        return data.decode("utf-8", errors="replace")

    def save(self, folder, max_length):
        """tokenizer.json (Hugging Face layout, byte-level BPE), tokenizer_config.json."""
        vocab = dict(self.vocab)
        spec = {
            "version": "1.0", "truncation": None, "padding": None,
            "added_tokens": [{"id": self.eos_id, "content": EOS, "single_word": False, "lstrip": False,
                              "rstrip": False, "normalized": False, "special": True}],
            "normalizer": None,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
            "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
            "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
            "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                      "vocab": vocab, "merges": [[a, b] for a, b in self.merges]},
        }
        with open(f"{folder}/tokenizer.json", "w", encoding="utf-8") as f:
            json.dump(spec, f, ensure_ascii=False)
        config = {"tokenizer_class": "GPT2Tokenizer", "bos_token": EOS, "eos_token": EOS, "unk_token": EOS,
                  "add_bos_token": True, "add_prefix_space": False, "model_max_length": max_length,
                  "clean_up_tokenization_spaces": False}
        with open(f"{folder}/tokenizer_config.json", "w", encoding="utf-8") as f:
            json.dump(config, f, indent=2)
