"""The gold reward: the sum of the AFINN-165 valences of a text's words. A word is a whitespace-separated piece with
the non-alphanumeric characters at either end stripped, lower-cased (the product's `w2s eval --reward afinn` uses the
same rule; the C# tests check it on hand-computed sentences)."""


def words(text):
    for w in text.split():
        start, end = 0, len(w)
        while start < end and not w[start].isalnum():
            start += 1
        while end > start and not w[end - 1].isalnum():
            end -= 1
        if start < end:
            yield w[start:end].lower()


def score(lexicon, text):
    return sum(lexicon.get(w, 0) for w in words(text))
