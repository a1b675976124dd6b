"""Text normalisation and stemming: the one home shared by the keyword index and the answerer.

- `normalise_text`: what counts as "the same text" for article identity.
- `normalise_quotes` / `strip_control`: clean text for verbatim checks and user input.
- `stem` / `stem_words`: English Snowball (PyStemmer), the one stemmer of newsqa.
- Two stop lists on purpose: `KEYWORD_STOPWORDS` is bm25s's English list, the BM25
  vocabulary the dev-set rankings were measured with; `ANSWER_STOPWORDS` is broader (speech
  verbs, time words) because the answerer compares content words, not ranks documents.
"""

from __future__ import annotations

import functools
import re
import unicodedata

_SPACE = re.compile(r"\s+")
_KEYWORD_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "‘": "'",
                         "’": "'", "‚": "'", "`": "'", "´": "'"})


def wordset(text: str) -> frozenset[str]:
    """The white-space separated words of `text` as a set (for word lists)."""
    return frozenset(text.split())


#: Numbers written as words (lower case), for answers to "how many" and number features.
NUMBER_WORDS = wordset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty "
    "ninety hundred hundreds thousand thousands million millions billion billions trillion "
    "dozen dozens half")


ANSWER_STOPWORDS = wordset("""
a about above after again against all also am an and any are aren as at be because been before
being below between both but by can could did didn do does doesn doing don down during each few
for from further had has have having he her here hers herself him himself his how i if in into is
isn it its itself just let me more most my myself no nor not now of off on once only or other our
ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what
when where which while who whom whose why will with would you your yours yourself yourselves
s t ll ve re d m say said says tell told according recently new week year much many
""")


def normalise_text(text: str) -> str:
    """NFC and collapsed white space: what counts as 'the same text' for identity."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip()


def normalise_quotes(text: str) -> str:
    """Typographic quotes to straight ones and white space collapsed, for verbatim checks."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text).translate(_QUOTES)).strip()


def strip_control(text: str) -> str:
    """Remove control characters and unpaired surrogates (keeping tabs and newlines as spaces)."""
    out = []
    for ch in text:
        if ch in "\t\n\r":
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs") and ch not in "\u200d":
            continue
        else:
            out.append(ch)
    return "".join(out)


@functools.lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    import Stemmer  # PyStemmer: C extension, imported on first use

    return Stemmer.Stemmer("english")


def stem_words(lowered: list[str]) -> list[str]:
    """Snowball stems of already lower-cased words, in one call (fast for many words)."""
    return _stemmer().stemWords(lowered)


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """English Snowball stem of one word, lower-cased and cut at its apostrophe."""
    return _stemmer().stemWord(word.lower().replace("’", "'").split("'")[0])


#: The keyword index's stop words: bm25s's English list (the 33 words it ships), copied so the
#: BM25 vocabulary is ours and stays what the dev-set rankings were measured with.
KEYWORD_STOPWORDS = wordset("""
a an and are as at be but by for if in into is it no not of on or such that the their then
there these they this to was will with
""")


def keyword_words(text: str) -> list[str]:
    """Lower-cased word tokens of two or more characters, stop words removed (unstemmed)."""
    return [w for w in _KEYWORD_TOKEN.findall(text.lower()) if w not in KEYWORD_STOPWORDS]
