"""Shared text helpers for answering: words with offsets, stems, names, quote normalisation."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
_SPACE = re.compile(r"\s+")
_QUOTES = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"', "‘": "'",
                         "’": "'", "‚": "'", "`": "'", "´": "'"})

STOPWORDS = frozenset("""
a about above after again against all also am an and any are aren as at be because been before
being below between both but by can could did didn do does doesn doing don down during each few
for from further had has have having he her here hers herself him himself his how i if in into is
isn it its itself just let me more most my myself no nor not now of off on once only or other our
ours ourselves out over own same she should so some such than that the their theirs them
themselves then there these they this those through to too under until up very was we were what
when where which while who whom whose why will with would you your yours yourself yourselves
s t ll ve re d m say said says tell told according recently new week year
""".split())

QUESTION_WORDS = frozenset(
    "what who whom whose which when where why how did does do is are was were can could will "
    "would should has have had tell give list name describe explain".split())


@dataclass(frozen=True)
class Word:
    """A word of a text with its character offsets."""

    text: str
    start: int
    end: int

    @property
    def lower(self) -> str:
        return self.text.lower()

    @property
    def capitalised(self) -> bool:
        return self.text[:1].isupper()


def words(text: str) -> list[Word]:
    """Every word of `text` with offsets (letters and digits, inner apostrophes kept)."""
    return [Word(m.group(), m.start(), m.end()) for m in _WORD.finditer(text)]


@functools.lru_cache(maxsize=1)
def _stemmer():  # type: ignore[no-untyped-def]
    import Stemmer

    return Stemmer.Stemmer("english")


@functools.lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """English Snowball stem of a lower-cased word (PyStemmer)."""
    return _stemmer().stemWord(word.lower().replace("’", "'").split("'")[0])


def content_stems(text: str) -> list[str]:
    """Stems of the non-stopword words of `text`, in order (duplicates kept)."""
    return [stem(w.lower) for w in words(text) if w.lower not in STOPWORDS]


def normalise_quotes(text: str) -> str:
    """Typographic quotes to straight ones and white space collapsed, for verbatim checks."""
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text).translate(_QUOTES)).strip()


def comparable(text: str) -> str:
    """A loose form for 'does this quote appear there': quotes, case, punctuation, spaces."""
    return " ".join(w.lower for w in words(normalise_quotes(text).replace("'", "’")))


def strip_control(text: str) -> str:
    """Remove control characters (keeping tabs and newlines as spaces)."""
    out = []
    for ch in text:
        if ch in "\t\n\r":
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf") and ch not in "\u200d":
            continue
        else:
            out.append(ch)
    return "".join(out)


def question_names(question: str) -> list[str]:
    """Proper names in a question: runs of capitalised words that are not question words.

    "What did Giuseppe Conte say about France?" -> ["Giuseppe Conte", "France"].
    """
    names: list[str] = []
    run: list[str] = []
    tokens = words(question)
    for index, word in enumerate(tokens):
        lower = word.lower
        first = index == 0
        is_name = (word.capitalised and not (first and lower in QUESTION_WORDS)
                   and not (first and lower in STOPWORDS) and lower not in {"i"})
        if is_name and lower in STOPWORDS and not run:
            is_name = False
        if word.text.isupper() and len(word.text) > 1:
            is_name = True
        if is_name:
            run.append(word.text)
        else:
            if run:
                names.append(" ".join(run))
            run = []
    if run:
        names.append(" ".join(run))
    return names


_QUOTED = re.compile(r"[\"“”«»]([^\"“”«»]{2,200})[\"“”«»]|(?<![\w])'([^']{2,200})'(?![\w])")


def quoted_terms(text: str) -> list[str]:
    """Phrases inside quotation marks (straight or typographic) in `text`."""
    return [m.group(1) or m.group(2) for m in _QUOTED.finditer(text)]


def name_matches(name: str, haystack_words: Iterable[str]) -> bool:
    """True when every word of `name` (or its stem/prefix) occurs in the lower-cased words."""
    pool = set(haystack_words)
    stems = {stem(w) for w in pool}
    for part in words(name):
        low = part.lower
        if low in STOPWORDS:
            continue
        if low in pool or stem(low) in stems:
            continue
        if len(low) >= 6 and any(w.startswith(low[:5]) for w in pool):
            continue
        return False
    return True
