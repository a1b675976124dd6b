"""Shared text helpers for answering: words with offsets, stems, names, quote normalisation."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from index.text import (
    ANSWER_STOPWORDS,
    normalise_quotes,
    stem,
    wordset,
)

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)


QUESTION_WORDS = wordset(
    "what who whom whose which when where why how did does do is are was were can could will "
    "would should has have had tell give list name describe explain")


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


def content_stems(text: str) -> list[str]:
    """Stems of the non-stopword words of `text`, in order (duplicates kept)."""
    return [stem(w.lower) for w in words(text) if w.lower not in ANSWER_STOPWORDS]


def comparable(text: str) -> str:
    """A loose form for 'does this quote appear there': quotes, case, punctuation, spaces."""
    return " ".join(w.lower for w in words(normalise_quotes(text).replace("'", "’")))


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
                   and not (first and lower in ANSWER_STOPWORDS) and lower not in {"i"})
        if is_name and lower in ANSWER_STOPWORDS and not run:
            is_name = False
        if word.text.isupper() and len(word.text) > 1:
            is_name = True
        elif is_name and not run and _sentence_initial(question, word) and (
                index + 1 >= len(tokens) or not tokens[index + 1].capitalised):
            is_name = False  # "Approximately how many..." / "Due to...": just a first word
        if is_name:
            run.append(word.text)
        else:
            if run:
                names.append(" ".join(run))
            run = []
    if run:
        names.append(" ".join(run))
    return names


def _sentence_initial(text: str, word: Word) -> bool:
    before = text[:word.start].rstrip(" \t\"“‘'(")
    return not before or before[-1] in ".?!:;\n"


#: Common abbreviations and what articles write instead.
ALIASES: dict[str, tuple[str, ...]] = {
    "us": ("u s", "usa", "united states", "america", "american", "americans"),
    "usa": ("u s", "us", "united states", "america"),
    "uk": ("u k", "britain", "british", "united kingdom"),
    "eu": ("e u", "european union", "europe", "european"),
    "un": ("u n", "united nations"),
    "nato": ("north atlantic",),
}


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
        if low in ANSWER_STOPWORDS:
            continue
        if low in pool or stem(low) in stems:
            continue
        if len(low) >= 6 and any(w.startswith(low[:5]) for w in pool):
            continue
        if any(all(w in pool for w in alias.split()) for alias in ALIASES.get(low, ())):
            continue
        return False
    return True


# --- segmentation into candidate answer spans ------------------------------------------------

_SENTENCE_END = re.compile(r"[.!?…]+[\"”’')\]]*(?=\s+[\"“‘'(\[]?[A-Z0-9À-Ý])"
                           r"|\n\s*\n|\n(?=\s*[A-Z\"“])")
#: Capitalised words that start a sentence in unpunctuated text (never inside a name).
SENTENCE_STARTERS = wordset("""
The A An It He She They We This That These Those There If And But Also Like With What As On In At
According Its His Her Their Our Some Many However When While After Before Since Although So Yet
For Meanwhile Last Earlier Later Now Then Still Even Both Each Such Under Over Despite Among
""")
#: Lower-case words after which a capitalised word continues a phrase instead of starting one.
_BINDERS = wordset("""
the a an of in on at to for by with from and or than as into onto over under about between
minister president chancellor general leader secretary spokesman spokeswoman premier prime
deputy envoy ambassador governor senator mayor chief head official commander judge king queen
prince pope his her their its our my your mr mrs ms dr al el della di de da von van le la
bin ibn that whether said told
""")
#: Words after a name that show it is the subject of a new clause ("Trenta also dismissed").
_VERBISH = wordset("""
also said says told tells added stressed has had have was is were are will would could can did
does may might must should shall then later again insisted noted warned confirmed dismissed
""")
_PREPOSITIONS = wordset("in at to from on into for with by")
_SPEECH_END = wordset("said says added stressed noted told")

MIN_SPAN_WORDS = 8
MAX_SPAN_WORDS = 45


def is_punctuated(text: str) -> bool:
    """Whether `text` has sentence punctuation (about one terminator per 60 words or more)."""
    count = len(words(text))
    if count < 20:
        return bool(re.search(r"[.!?]", text))
    return len(re.findall(r"[.!?](?=\s|$)", text)) * 60 >= count


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    begin = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((begin, match.end()))
        begin = match.end()
    spans.append((begin, len(text)))
    return spans


def _boundaries_unpunctuated(tokens: list[Word]) -> list[int]:
    """Word indices where a new pseudo-sentence starts in text without punctuation."""
    starts = [0]
    for i in range(1, len(tokens)):
        word, prev = tokens[i], tokens[i - 1]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if not word.capitalised or word.text == "I":
            if (prev.lower in _SPEECH_END and i >= 2 and tokens[i - 2].capitalised
                    and word.capitalised):
                starts.append(i)
            continue
        if word.text in SENTENCE_STARTERS:
            starts.append(i)
        elif (prev.lower in _SPEECH_END and i >= 2
              and (tokens[i - 2].capitalised or tokens[i - 2].lower in ("he", "she", "they"))):
            starts.append(i)  # "... Conte said Italy does ..." : the attribution closed a quote
        elif (nxt is not None and not nxt.capitalised
              and (nxt.lower in _VERBISH or (nxt.lower.endswith("ed") and len(nxt.lower) > 4))
              and ((not prev.capitalised and prev.lower not in _BINDERS)
                   or (i >= 2 and tokens[i - 2].lower in _PREPOSITIONS
                       and nxt.lower in _VERBISH))):
            starts.append(i)  # "... own interests Trenta also dismissed ..."
    return starts


def _merge_and_split(pieces: list[tuple[int, int]], tokens: list[Word]) -> list[tuple[int, int]]:
    """Word-index pieces merged when shorter than MIN and split when longer than MAX words."""
    merged: list[list[int]] = []
    for first, last in pieces:
        if merged and (merged[-1][1] - merged[-1][0] < MIN_SPAN_WORDS
                       or last - first < MIN_SPAN_WORDS // 2):
            merged[-1][1] = last
        else:
            merged.append([first, last])
    if len(merged) > 1 and merged[-1][1] - merged[-1][0] < MIN_SPAN_WORDS:
        tail = merged.pop()  # was merged[-2][1] = merged.pop()[1]: IndexError with two
        merged[max(-2, -len(merged))][1] = tail[1]  # pieces; same target otherwise
    out: list[tuple[int, int]] = []
    for first, last in merged:
        out.extend(_split_long(first, last, tokens))
    return out


_SOFT_BREAKS = wordset("and but while which that because although whereas so")


def _split_long(first: int, last: int, tokens: list[Word]) -> list[tuple[int, int]]:
    """Split [first, last) at the most natural break near its middle until <= MAX words."""
    if last - first <= MAX_SPAN_WORDS:
        return [(first, last)]
    middle = (first + last) / 2
    best, best_key = None, None
    for i in range(first + MIN_SPAN_WORDS, last - MIN_SPAN_WORDS + 1):
        word, prev = tokens[i], tokens[i - 1]
        if word.text == "I" and prev.text != "I":
            kind = 4
        elif (word.capitalised and len(word.text) > 1 and not prev.capitalised
              and prev.lower not in _BINDERS):
            kind = 3
        elif prev.lower in _SPEECH_END:
            kind = 2
        elif word.lower in _SOFT_BREAKS:
            kind = 1
        else:
            kind = 0
        key = (kind, -abs(i - middle))
        if best_key is None or key > best_key:
            best, best_key = i, key
    if best is None:
        best = int(middle)
    return _split_long(first, best, tokens) + _split_long(best, last, tokens)


def segment(text: str) -> list[tuple[int, int]]:
    """Candidate answer spans of `text` as (start, end) character offsets, in order.

    Sentences when the text is punctuated; otherwise pseudo-sentences cut at capitalised
    sentence starters and closed attributions, merged to >= 8 and split to <= 45 words.
    """
    tokens = words(text)
    if not tokens:
        return []
    if is_punctuated(text):
        pieces: list[tuple[int, int]] = []
        index = 0
        for begin, end in _sentence_spans(text):
            first = index
            while index < len(tokens) and tokens[index].start < end:
                index += 1
            if index > first and tokens[first].start >= begin:
                pieces.append((first, index))
    else:
        starts = _boundaries_unpunctuated(tokens)
        pieces = list(zip(starts, [*starts[1:], len(tokens)], strict=True))
    spans = []
    for first, last in _merge_and_split(pieces, tokens):
        start = tokens[first].start
        end = tokens[last - 1].end
        # keep closing punctuation and quote marks that belong to the span
        while end < len(text) and text[end] in ".!?…\"”’')]:;," and end - tokens[last - 1].end < 3:
            end += 1
        # keep an opening quote mark
        if start > 0 and text[start - 1] in "\"“‘'(":
            start -= 1
        spans.append((start, end))
    return spans
