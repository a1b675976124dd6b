"""Answers from the quote index: "what did X say (about Y)" and "who said ...".

SAID: X's stored quotes (qa.quotes, every merged form of the name), ranked by the topic Y,
each content span cited [n] to its exact offsets in the article. WHO_SAID: quote contents are
searched for the question's words (embedding plus keywords) and their speakers named, cited
the same way. When the index holds nothing for the question (no quote of X, none on Y, no
close enough quote), the fallback answerer (extractive or LLM) answers, so nothing gets worse
than before. The gate still decides first (qa.pipeline): this answerer runs only on questions
the retrieved passages cover.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from index.records import ArticleMeta, Chunk, Quote, Span
from qa.citations import article_heading, check_answer
from qa.markers import format_marker
from qa.question import QuestionInfo, QuestionKind, route
from qa.quotes import QuoteIndex, RankedQuote
from qa.records import Answer, Answerer, Citation, Passage, lines_then
from qa.retriever import Filters

#: Quotes quoted in one answer.
MAX_QUOTES = 5
#: A topic quote is kept when it shares a topic keyword or is at least this similar to it ...
TOPIC_SIMILARITY = 0.35
#: ... and scores within this margin of the best quote.
TOPIC_MARGIN = 0.25
#: "Who said ...": a quote names its speaker only when this similar to the question's words,
#: or when it holds at least WHO_KEYWORDS of them.
WHO_SIMILARITY = 0.5
WHO_KEYWORDS = 0.6
#: ... and scores within this margin of the best quote.
WHO_MARGIN = 0.3
#: "Who said" and its speech verb, left out of the words searched for.
_WHO_PREFIX = re.compile(r"^\s*who\s+(?:has\s+|have\s+|had\s+)?(?:(?:said|says|say|told|tells)"
                         r"\b\s*)?", re.IGNORECASE)
#: Cues not worth showing beside a quote ("dismissed", "told X" are shown).
_PLAIN_CUES = frozenset({"said", "says", "say", ""})
#: Quotation marks and the punctuation they close on, trimmed from a quote as shown.
_QUOTE_EDGES = " \t\n\"“”‘’«»„,"


@dataclass(frozen=True)
class _Cited:
    """A quote chosen for the answer, with its speaker as the index lists it, and the spans
    cited (the quote's own, or joined with an adjacent quote of the same speaker)."""

    quote: Quote
    speaker: str
    spans: tuple[Span, ...] = ()

    @property
    def cited_spans(self) -> tuple[Span, ...]:
        return self.spans or self.quote.content_spans


class QuoteAnswerer:
    """Answers SAID and WHO_SAID questions from the quote index, else asks `fallback`."""

    name = "quotes"

    def __init__(self, index: QuoteIndex, fallback: Answerer, *,
                 filters: Filters | None = None, max_quotes: int = MAX_QUOTES) -> None:
        self.index = index
        self.fallback = fallback
        self.filters = filters or Filters()
        self.max_quotes = max_quotes

    def within(self, filters: Filters) -> QuoteAnswerer:
        """This answerer searching the quotes of the articles `filters` keep (the dates and
        sources of the question being answered)."""
        return QuoteAnswerer(self.index, self.fallback, filters=filters,
                             max_quotes=self.max_quotes)

    def answer(self, question: str, passages: Sequence[Passage], *,
               query_embedding: Any = None, analysis: Any = None) -> Answer:
        """The quotes that answer `question`, cited; the fallback's answer when none do."""
        started = time.perf_counter()
        chosen = self.choose(question)
        if not chosen:
            return self.fallback.answer(question, passages, query_embedding=query_embedding,
                                        analysis=analysis)
        text, citations, cited = self._compose(question, chosen)
        if not citations:  # their articles were removed since the quotes were read
            return self.fallback.answer(question, passages, query_embedding=query_embedding,
                                        analysis=analysis)
        timings = {"quotes": time.perf_counter() - started}
        return check_answer(question, text, _with(cited, passages), citations=citations,
                            answerer=self.name, timings=timings)

    def stream(self, question: str, passages: Sequence[Passage], *,
               query_embedding: Any = None, analysis: Any = None) -> Iterator[str | Answer]:
        """The answer's lines, then the Answer (the fallback's stream when it answers)."""
        if not self.choose(question):
            yield from self.fallback.stream(question, passages, query_embedding=query_embedding,
                                            analysis=analysis)
            return
        yield from lines_then(self.answer(question, passages, query_embedding=query_embedding,
                                          analysis=analysis))

    # --- choosing quotes ------------------------------------------------------------------

    def choose(self, question: str) -> list[_Cited]:
        """The quotes that answer `question` (empty: the index has nothing for it)."""
        info = QuestionInfo.parse(question)
        kind = route(info)
        if kind is QuestionKind.SAID and info.speaker:
            return self._said(info)
        if kind is QuestionKind.WHO_SAID:
            return self._who_said(info)
        return []

    def _said(self, info: QuestionInfo) -> list[_Cited]:
        """X's quotes, the closest to the topic first (newest first without a topic)."""
        topic = _without(info.topic, info.time_phrase)
        ranked = self.index.ranked(speaker=info.speaker, topic=topic or None,
                                   filters=self.filters)
        if topic:
            ranked = _on_topic(ranked)
        return [_Cited(r.quote, self.index.speaker_of(r.quote))
                for r in ranked[:self.max_quotes]]

    def _who_said(self, info: QuestionInfo) -> list[_Cited]:
        """Quotes close to the question's words whose speaker is known, best first."""
        words = _without(_WHO_PREFIX.sub("", info.text), info.time_phrase).rstrip(" ?.!")
        if not words:
            return []
        chosen: list[_Cited] = []
        best = None
        for ranked in self.index.ranked(topic=words, filters=self.filters):
            speaker = self.index.speaker_of(ranked.quote)
            if not speaker or (ranked.semantic < WHO_SIMILARITY
                               and ranked.keyword < WHO_KEYWORDS):
                continue
            best = ranked.score if best is None else best
            if ranked.score >= best - WHO_MARGIN:
                chosen.append(_Cited(ranked.quote, speaker))
        return chosen[:self.max_quotes]

    # --- the answer -----------------------------------------------------------------------

    def _joined(self, items: list[_Cited], chunks: Sequence[Chunk]) -> list[_Cited]:
        """The items of one article, each joined with the quotes of the same speaker that
        follow or precede it with only white space between ("dismissed the notion of X",
        then "If anyone ... X said"), each quote cited once."""
        used: set[str] = set()
        out = []
        for item in items:
            if item.quote.id in used:
                continue
            neighbours = [q for q in self.index.catalog().of_article(item.quote.article_id)
                          if item.speaker and self.index.speaker_of(q) == item.speaker]
            spans, joined = _grown(item.quote, neighbours, chunks)
            used |= joined
            out.append(replace(item, spans=spans))
        return out

    def _compose(self, question: str, chosen: list[_Cited]
                 ) -> tuple[str, list[Citation], list[Passage]]:
        """The answer text (quotes grouped by article), its citations and the cited chunks."""
        groups: OrderedDict[str, list[_Cited]] = OrderedDict()
        for item in chosen:
            groups.setdefault(item.quote.article_id, []).append(item)
        said = route(QuestionInfo.parse(question)) is QuestionKind.SAID
        names = list(dict.fromkeys(item.speaker for item in chosen if item.speaker))
        opening = (f"{names[0]} said (verbatim quotes, most relevant first):"
                   if said and len(names) == 1 else
                   "Quoted in the indexed articles (verbatim, most relevant first):")
        lines, citations, cited = [opening], [], []
        for article_id, items in groups.items():
            meta = self.index.article(article_id) or ArticleMeta(id=article_id)
            chunks = self.index.chunks_of(article_id)
            lines += ["", article_heading(meta)]
            for item in self._joined(items, chunks):
                pieces = _pieces(item.cited_spans, chunks)
                if not pieces:
                    continue  # its article was removed since the quotes were read
                numbers = list(range(len(citations) + 1, len(citations) + len(pieces) + 1))
                citations += [Citation(number=n, article=meta, quote=text, start=a,
                                       end=a + len(text), chunk_id=chunk.id)
                              for n, (chunk, a, text) in zip(numbers, pieces, strict=True)]
                cited += [Passage(chunk=chunk, article=meta, score=1.0)
                          for chunk, _, _ in pieces]
                lines.append(_quote_line(item, pieces, numbers, said and len(names) == 1))
        return "\n".join(lines), citations, cited


def _without(text: str, phrase: str) -> str:
    """`text` without the time phrase ("intervention last week" -> "intervention")."""
    if phrase and phrase in text:
        text = text.replace(phrase, " ")
    return " ".join(text.split())


def _on_topic(ranked: list[RankedQuote]) -> list[RankedQuote]:
    """The ranked quotes that speak about the topic, within a margin of the best one."""
    relevant = [r for r in ranked if r.keyword > 0 or r.semantic >= TOPIC_SIMILARITY]
    if not relevant:
        return []
    best = relevant[0].score
    return [r for r in relevant if r.score >= best - TOPIC_MARGIN]


def _grown(quote: Quote, neighbours: Sequence[Quote],
           chunks: Sequence[Chunk]) -> tuple[tuple[Span, ...], set[str]]:
    """The quote's spans joined with every adjacent neighbour, and the ids joined."""
    spans, joined = quote.content_spans, {quote.id}
    grown = True
    while grown:
        grown = False
        for other in neighbours:
            merged = None if other.id in joined else _adjacent(spans, other.content_spans,
                                                                 chunks)
            if merged is not None:
                spans, grown = merged, True
                joined.add(other.id)
    return spans, joined


def _adjacent(one: tuple[Span, ...], other: tuple[Span, ...],
              chunks: Sequence[Chunk]) -> tuple[Span, ...] | None:
    """The spans of two quotes joined, when only white space lies between them; else None."""
    first, second = sorted((one, other), key=lambda spans: spans[0][0])
    gap_start, gap_end = first[-1][1], second[0][0]
    if gap_end < gap_start:
        return None
    home = next((c for c in chunks if c.start <= gap_start and gap_end <= c.end), None)
    if home is None or home.text[gap_start - home.start:gap_end - home.start].strip():
        return None
    return (*first[:-1], (first[-1][0], second[0][1]), *second[1:])


def _pieces(spans: Sequence[Span], chunks: Sequence[Chunk]) -> list[tuple[Chunk, int, str]]:
    """Each span as (chunk, start, verbatim text), a span that crosses a chunk boundary cut
    at it so that every piece lies inside one stored chunk."""
    out = []
    for start, end in spans:
        position = start
        while position < end:
            home = _chunk_at(chunks, position, end)
            if home is None:
                break
            stop = min(end, home.end)
            out.append((home, position, home.text[position - home.start:stop - home.start]))
            position = stop
    return out


def _chunk_at(chunks: Sequence[Chunk], position: int, end: int) -> Chunk | None:
    """The chunk holding `position` that reaches furthest towards `end`."""
    holding = [c for c in chunks if c.start <= position < c.end]
    return max(holding, key=lambda c: min(c.end, end), default=None)


def _quote_line(item: _Cited, pieces: list[tuple[Chunk, int, str]], numbers: list[int],
                one_speaker: bool) -> str:
    """"- Speaker (told Venue): “part” … “part” [1, 2]"."""
    quoted = " … ".join(f"“{text.strip(_QUOTE_EDGES)}”" for _, _, text in pieces)
    marker = " ".join(format_marker(n) for n in numbers)
    who = "" if one_speaker else item.speaker or item.quote.speaker
    quote = item.quote
    how = (f"{quote.cue} {quote.venue}".strip() if quote.venue
           else quote.cue if quote.cue.lower() not in _PLAIN_CUES else "")
    label = " ".join(x for x in (who, f"({how})" if how else "") if x)
    return f"- {label + ': ' if label else ''}{quoted} {marker}"


def _with(cited: Sequence[Passage], passages: Sequence[Passage]) -> list[Passage]:
    """The cited chunks (each once), then the retrieved passages not among them."""
    out: dict[str, Passage] = {}
    for passage in [*cited, *passages]:
        out.setdefault(passage.id, passage)
    return list(out.values())
