"""The reader inside every offline answer: candidates -> reader -> short answer -> citations.

The extractive analysis proposes the candidate spans (sentences inside the retrieved chunks,
its most promising first); the learned reader (`qa.reader`) reads them with the question in
one encoder pass, re-ranks them and finds the short answer inside each. The answer quotes
the lead span (best by the standardised scores, LEAD_WEIGHTS), whose short answer it gives,
and those the ranking scores close to the best (at most MAX_CITATIONS, grouped by article);
a who / which / where / when / how-many question leads with its short answer and marker
("Corriere della Sera [1]"). Every answer carries the reader's calibrated confidence;
with `refuse` an answer below the reader's threshold is "not found", with the closest passages
(off by default: the quality floor, see REFUSE_BELOW_THRESHOLD).

Venue questions ("Which newspaper interviewed X?", "Who did X tell ...?", "Where did X say
...?", `qa.question.VenueQuestion`) are answered from the quote index when it has a quote of X
with a venue in a retrieved article ("told Corriere della Sera"): the venue is the short
answer, cited first to the span holding it; otherwise the reader answers as for any question.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Container, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

import numpy as np

from index.records import ArticleMeta, Chunk, Quote
from index.text import stem
from qa.citations import article_heading, check_answer, not_found
from qa.extractive import Analysis, ExtractiveAnswerer, ScoredSpan
from qa.gate import Gate, Verdict, refusal
from qa.markers import format_marker
from qa.question import OUTLET_NOUNS, QuestionInfo, QuestionKind, VenueQuestion, route
from qa.quote_answer import TOPIC_SIMILARITY
from qa.quotes import QuoteIndex
from qa.records import Answer, Citation, Passage, lines_then
from qa.text import name_matches, words

#: Citations quoted at most (issue 12).
MAX_CITATIONS = 4
#: Chosen on the quality floor (held-out training weeks, 30 questions + 30 unanswerable
#: variants; `python -m qa.eval.floor`), gate on, no confidence refusal: ranking by the reader's
#: logit alone with a 1-logit margin gave support 0.400; + 8 x the extractive span score with a
#: 3-logit margin 0.500 (4 x: 0.467, 16 x: 0.433; margin 2: 0.467; 16 candidates: 0.500).
#: A span is quoted beside the best one when its ranking score is within CLOSE_MARGIN of it.
CLOSE_MARGIN = 3.0
#: The extractive span score's weight beside the reader's logit in the ranking.
EXTRACTIVE_WEIGHT = 8.0
#: The weight of the short-answer head's best start + end logit in the span (a span the head
#: finds a clear answer in ranks higher). Chosen on held-out training weeks (docs/reader.md):
#: answer support 0 -> 0.5: 0.514 -> 0.556 on all 72 held-out questions, 0.500 -> 0.533 on the
#: quality floor's 30 (0.3: 0.528 / 0.500; 1.0: 0.542 / 0.433; 2.0: 0.472 on the 72).
ANSWER_WEIGHT = 0.5
#: The lead span (citation [1], which the short answer comes from) is the candidate best by
#: `lead_scores`: z(reader logit) + 3 z(extractive score) + 0.5 z(answer score), standardised
#: over the question's candidates; the other citations stay those within CLOSE_MARGIN of the
#: best ranking score. Chosen on the held-out training weeks (docs/reader.md, session 6): all 72
#: questions, first citation holds the answer 33.3 -> 40.3 %, short EM / F1 13.9 / 15.4 ->
#: 19.4 / 22.3 %, support 55.6 % unchanged; the floor's 30: support 53.3 % unchanged, short F1
#: 16.9 -> 19.0 %. (The same standardised sum as the ranking of every citation lost support:
#: 52.8-54.2 % on the 72, 46.7 % on the 30.)
LEAD_WEIGHTS = (3.0, 0.5)
#: Refusing below the reader's calibrated threshold, on the same floor with the gate: support
#: 0.500 -> 0.433, refusal 0.900 -> 0.933, false refusals 8 -> 13 of 30 (without the gate:
#: support 0.467, refusal 0.833). Below the floor's support, so off by default (`refuse=True`
#: turns it on; the confidence is set on every answer either way).
REFUSE_BELOW_THRESHOLD = False
EXCERPTS_HEADING = "The indexed articles say (verbatim excerpts, most relevant first):"


class SpanReader(Protocol):
    """What the answerer needs of `qa.reader.Reader` (the real reader in the product)."""

    max_candidates: int

    @property
    def threshold(self) -> float: ...

    @property
    def sha256(self) -> str: ...

    def read(self, question: str, spans: Sequence[str]) -> Sequence[Any]: ...

    def short_answer(self, question: str, span: str, reading: Any) -> Any: ...

    def confidence(self, question: str, spans: Sequence[str],
                   readings: Sequence[Any]) -> float: ...


@dataclass(frozen=True)
class ReadSpan:
    """A candidate span with the reader's view of it: its score and short answer (body
    offsets, both None when the reader found none in it)."""

    span: ScoredSpan
    score: float
    answer_start: int | None
    answer_end: int | None


@dataclass(frozen=True)
class Reading:
    """The reader's verdict on a question: the lead span (the one the answer's short answer
    and first citation come from), then the others best first; the calibrated confidence that
    the best one answers, and the time the reading took."""

    spans: tuple[ReadSpan, ...]
    confidence: float
    seconds: float


def read_spans(reader: SpanReader, question: str, candidates: Sequence[ScoredSpan], *,
               extractive_weight: float = 0.0, answer_weight: float = 0.0,
               lead_weights: tuple[float, float] | None = None, answerer: bool = True
               ) -> Reading:
    """One reader pass over the candidates: re-ranked by the reader's score (plus
    `extractive_weight` x the extractive span score and `answer_weight` x the short-answer
    head's best score in the span), short answers in body offsets. With `lead_weights`
    (extractive, answer), the span best by `lead_scores` leads, the rest follow best first.
    With `answerer`, the lead span's short answer is then the reader's `short_answer` (its
    answerer), whose margin over "no answer" enters the confidence."""
    started = time.perf_counter()
    if not candidates:
        return Reading((), 0.0, time.perf_counter() - started)
    texts = [c.text for c in candidates]
    readings = list(reader.read(question, texts))
    ranking = [float(r.score) + extractive_weight * c.score + answer_weight * float(r.answer_score)
               for c, r in zip(candidates, readings, strict=True)]
    order = sorted(range(len(candidates)), key=lambda i: -ranking[i])
    if lead_weights is not None:
        first = int(np.argmax(lead_scores(readings, candidates, *lead_weights)))
        order = [first, *(i for i in order if i != first)]
    if answerer:
        readings[order[0]] = reader.short_answer(question, texts[order[0]], readings[order[0]])
    confidence = float(reader.confidence(question, texts, readings))
    spans = [ReadSpan(candidates[i], ranking[i], *_body_offsets(
        candidates[i], readings[i].answer_start, readings[i].answer_end)) for i in order]
    return Reading(tuple(spans), confidence, time.perf_counter() - started)


def _standardised(values: Sequence[float]) -> np.ndarray:
    """`values` minus their mean, over their standard deviation (all 0 when they are equal)."""
    array = np.asarray(values, dtype=float)
    spread = float(array.std())
    return (array - array.mean()) / spread if spread > 1e-9 else np.zeros_like(array)


def lead_scores(readings: Sequence[Any], candidates: Sequence[ScoredSpan],
                extractive_weight: float, answer_weight: float) -> np.ndarray:
    """Each candidate's lead score: the reader's logit, the extractive span score and the
    answer head's best score, each standardised over the question's candidates, summed with
    weights 1, `extractive_weight` and `answer_weight` (so the weights do not depend on each
    score's scale, which varies by question)."""
    return (_standardised([float(r.score) for r in readings])
            + extractive_weight * _standardised([c.score for c in candidates])
            + answer_weight * _standardised([float(r.answer_score) for r in readings]))


def _body_offsets(span: ScoredSpan, start: int | None,
                  end: int | None) -> tuple[int | None, int | None]:
    """Span-text offsets of a short answer as article-body offsets (None, None when empty)."""
    if start is None or end is None or not 0 <= start < end <= len(span.text):
        return None, None
    return span.start + start, span.start + end


def close_spans(reading: Reading, *, limit: int = MAX_CITATIONS,
                margin: float = CLOSE_MARGIN) -> list[ReadSpan]:
    """The spans to quote: the lead span, and those the ranking scores within `margin` of the
    best score."""
    if not reading.spans:
        return []
    best = max(s.score for s in reading.spans)
    lead, *rest = reading.spans
    return [lead, *(s for s in rest if s.score >= best - margin)][:limit]


def quote_read_spans(chosen: Sequence[ReadSpan], *, lead: bool) -> tuple[str, list[Citation]]:
    """The answer text quoting `chosen` grouped by article (the best span is [1]) and its
    citations; the first citation carries the best span's short answer, and with `lead` the
    text opens with that short answer and its marker."""
    groups: OrderedDict[str, list[ReadSpan]] = OrderedDict()
    for read in chosen:
        groups.setdefault(read.span.article.id, []).append(read)
    citations: list[Citation] = []
    lines = [EXCERPTS_HEADING]
    for reads in groups.values():
        lines += ["", article_heading(reads[0].span.article)]
        for read in reads:
            citations.append(_citation(len(citations) + 1, read, short_answer=not citations))
            lines.append(f"- “{read.span.text}” {format_marker(citations[-1].number)}")
    short = citations[0].answer if citations else ""
    if lead and short:
        lines = [f"{short} {format_marker(1)}", "", *lines]
    return "\n".join(lines), citations


def _citation(number: int, read: ReadSpan, *, short_answer: bool) -> Citation:
    """Citation `number` of a read span, with the span's short answer when `short_answer`."""
    span = read.span
    answer = (read.answer_start, read.answer_end) if short_answer else (None, None)
    return Citation(number=number, article=span.article, quote=span.text, start=span.start,
                    end=span.end, chunk_id=span.chunk.id, answer_start=answer[0],
                    answer_end=answer[1])


# --- venue questions ------------------------------------------------------------------------

def venue_fits(venue: str, *, outlet: bool) -> bool:
    """Whether a quote's venue can answer: any addressee does when `outlet` is False, else it
    must look like an outlet, a name or an outlet noun ("Corriere della Sera", "state
    television"; not "reporters")."""
    if not outlet:
        return bool(venue.strip())
    return any(w.text[:1].isupper() or stem(w.lower) in OUTLET_NOUNS for w in words(venue))


def _venue_key(venue: str) -> tuple[str, ...]:
    """A venue's words, lower-cased, without a leading article ("The Daily Planet")."""
    key = [w.lower for w in words(venue)]
    while key and key[0] in ("the", "a", "an"):
        key.pop(0)
    return tuple(key)


def most_named(quotes: Sequence[Quote]) -> Quote | None:
    """The first of `quotes` naming the venue they name most often, a shorter form counted
    for the one fuller venue it begins ("Corriere" for "Corriere della Sera"); None if empty."""
    keys = [_venue_key(q.venue) for q in quotes]

    def fuller(key: tuple[str, ...]) -> tuple[str, ...]:
        longer = {k for k in keys if len(k) > len(key) and k[:len(key)] == key}
        return longer.pop() if len(longer) == 1 else key

    counts = Counter(fuller(key) for key in keys)
    if not counts:
        return None
    best = max(counts, key=lambda key: counts[key])
    return next(q for q, key in zip(quotes, keys, strict=True) if key == best)


def venue_quote(quotes: QuoteIndex, venue: VenueQuestion,
                article_ids: Container[str]) -> Quote | None:
    """The quote of the question's speaker, in one of `article_ids`, whose venue answers it:
    the closest to the question's topic when it has one (sharing a key word or at least
    TOPIC_SIMILARITY), else the one naming the most frequent venue (`most_named`)."""
    ranked = [r for r in quotes.ranked(speaker=venue.speaker, topic=venue.topic or None)
              if r.quote.article_id in article_ids and r.quote.venue_span is not None
              and venue_fits(r.quote.venue, outlet=venue.outlet)]
    if venue.topic:
        on_topic = [r.quote for r in ranked if r.keyword > 0 or r.semantic >= TOPIC_SIMILARITY]
        return on_topic[0] if on_topic else None
    return most_named([r.quote for r in ranked])


def venue_span(quote: Quote, candidates: Sequence[ScoredSpan], article: ArticleMeta,
               chunks: Callable[[], Sequence[Chunk]]) -> ScoredSpan | None:
    """The span to cite for a quote's venue: the candidate span holding the venue phrase,
    else the quote's own words (speaker, cue, venue, content) within the stored chunk that
    holds the venue (`chunks` reads the article's chunks); None when no chunk holds it."""
    if quote.venue_span is None:
        return None
    start, end = quote.venue_span
    held = next((c for c in candidates if c.article.id == quote.article_id
                 and c.start <= start and end <= c.end), None)
    if held is not None:
        return held
    home = next((c for c in chunks() if c.start <= start and end <= c.end), None)
    if home is None:
        return None
    parts = [s for s in (quote.speaker_span, quote.cue_span, *quote.content_spans, (start, end))
             if s is not None]
    low = max(home.start, min(a for a, _ in parts))
    high = min(home.end, max(b for _, b in parts))
    return ScoredSpan(article, home, low, high, home.text[low - home.start:high - home.start],
                      0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


def names_present(info: QuestionInfo, passages: Sequence[Passage]) -> bool:
    """Whether every name of the question occurs in the passages or their titles (the
    coverage gate's name rule, `qa.gate`)."""
    pool = [w.lower for p in passages for text in (p.chunk.text, p.article.title)
            for w in words(text)]
    return all(name_matches(name, pool) for name in info.names)


def _overlaps(one: ScoredSpan, other: ScoredSpan) -> bool:
    return one.article.id == other.article.id and one.start < other.end and other.start < one.end


def _with_chunk(passages: Sequence[Passage], span: ScoredSpan) -> list[Passage]:
    """The passages, with the span's chunk added when none of them is it (so that its
    citation checks out against a passage)."""
    if any(p.chunk.id == span.chunk.id for p in passages):
        return list(passages)
    return [*passages, Passage(chunk=span.chunk, article=span.article, score=0.0)]


class ReadingAnswerer:
    """The offline answerer with the learned reader: verbatim spans the reader chose, the
    short answer first, refusal by calibrated confidence.

    `use_gate`: also refuse when the extractive coverage gate does (names missing, key words
    absent); `short_answers`: short questions (who / which / where / when / how many) lead
    with the short answer (the first citation carries it for any question either way);
    `refuse`: refuse below the reader's threshold; `answerer`: the lead span's short answer
    from the reader's answerer (else the ranker's own). Each can be switched off (the
    ablation).
    With `quotes`, venue questions the quote index answers lead with the venue (module doc).
    """

    name = "reader"

    def __init__(self, extractive: ExtractiveAnswerer, reader: SpanReader, *,
                 use_gate: bool = True, short_answers: bool = True,
                 refuse: bool = REFUSE_BELOW_THRESHOLD,
                 max_citations: int = MAX_CITATIONS, margin: float = CLOSE_MARGIN,
                 extractive_weight: float = EXTRACTIVE_WEIGHT,
                 answer_weight: float = ANSWER_WEIGHT,
                 lead_weights: tuple[float, float] | None = LEAD_WEIGHTS,
                 quotes: QuoteIndex | None = None, answerer: bool = True) -> None:
        if not 1 <= max_citations <= MAX_CITATIONS:
            raise ValueError(f"max_citations must be between 1 and {MAX_CITATIONS}")
        self.extractive = extractive
        self.reader = reader
        self.use_gate = use_gate
        self.short_answers = short_answers
        self.refuse = refuse
        self.max_citations = max_citations
        self.margin = margin
        self.extractive_weight = extractive_weight
        self.answer_weight = answer_weight
        self.lead_weights = lead_weights
        self.quotes = quotes
        self.answerer = answerer

    def analyse(self, question: str, passages: Sequence[Passage], *,
                query_embedding: Any = None) -> Analysis:
        """The extractive analysis the candidates come from (and the gate reads)."""
        return self.extractive.analyse(question, passages, query_embedding=query_embedding)

    def read(self, question: str, analysis: Analysis) -> Reading:
        """The reader's pass over the analysis' most promising spans."""
        return read_spans(self.reader, question, analysis.spans[:self.reader.max_candidates],
                          extractive_weight=self.extractive_weight,
                          answer_weight=self.answer_weight, lead_weights=self.lead_weights,
                          answerer=self.answerer)

    def answer(self, question: str, passages: Sequence[Passage], *,
               query_embedding: Any = None, analysis: Analysis | None = None) -> Answer:
        """The reader's answer, or the not-found answer; confidence and reader sha always set."""
        analysis = analysis or self.analyse(question, passages, query_embedding=query_embedding)
        reading = self.read(question, analysis)
        timings = {**analysis.timings, "read": reading.seconds}
        venue = self._venue(analysis, passages)
        answer = (None if venue is not None
                  else self._refusal(question, passages, analysis, reading, timings))
        if answer is None:
            answer = self._quoted(question, passages, analysis, reading, venue, timings)
        return replace(answer, confidence=reading.confidence, reader=self.reader.sha256)

    def _quoted(self, question: str, passages: Sequence[Passage], analysis: Analysis,
                reading: Reading, venue: ReadSpan | None, timings: dict[str, float]) -> Answer:
        """The answer quoting the reader's close spans, the venue's span first when there is
        one."""
        chosen = close_spans(reading, limit=self.max_citations, margin=self.margin)
        if venue is not None:
            chosen = [venue, *(s for s in chosen if not _overlaps(s.span, venue.span))]
            chosen, passages = chosen[:self.max_citations], _with_chunk(passages, venue.span)
        lead = self.short_answers and (venue is not None
                                       or route(analysis.question) is QuestionKind.SHORT)
        text, citations = quote_read_spans(chosen, lead=lead)
        return check_answer(question, text, passages, citations=citations, answerer=self.name,
                            timings=timings)

    def _venue(self, analysis: Analysis, passages: Sequence[Passage]) -> ReadSpan | None:
        """The venue's span, its short answer the venue phrase (None: no venue question, no
        quote index, a name of the question missing from the passages, or no quote of the
        speaker with a fitting venue in their articles). A venue answer is not gated by the
        key-word bars: the question's frame words ("radio station", "speak to") need not
        occur in the articles, its names must."""
        venue, quotes = analysis.question.venue, self.quotes
        if venue is None or quotes is None or not names_present(analysis.question, passages):
            return None
        articles = {p.article.id: p.article for p in passages}
        quote = venue_quote(quotes, venue, articles)
        if quote is None or quote.venue_span is None:
            return None
        span = venue_span(quote, analysis.spans, articles[quote.article_id],
                          lambda: quotes.chunks_of(quote.article_id))
        if span is None:
            return None
        return ReadSpan(span, 0.0, *quote.venue_span)

    def _refusal(self, question: str, passages: Sequence[Passage], analysis: Analysis,
                 reading: Reading, timings: dict[str, float]) -> Answer | None:
        """The not-found answer when the gate (if used) or the calibrated confidence refuses."""
        if self.use_gate:
            gated = refusal(question, passages, replace(analysis, timings=timings),
                            answerer=self.name)
            if gated is not None:
                return gated
        if not reading.spans:
            return not_found(question, passages, "no passage holds a candidate answer",
                             answerer=self.name, timings=timings)
        threshold = self.reader.threshold
        if self.refuse and reading.confidence < threshold:
            reason = (f"no passage answers it with enough confidence: "
                      f"{reading.confidence:.0%} < {threshold:.0%}")
            return not_found(question, passages, reason, answerer=self.name, timings=timings)
        return None

    def stream(self, question: str, passages: Sequence[Passage], *,
               query_embedding: Any = None,
               analysis: Analysis | None = None) -> Iterator[str | Answer]:
        """The answer's lines, then the Answer (composed in one go, as `answer` gives it)."""
        return lines_then(self.answer(question, passages, query_embedding=query_embedding,
                                      analysis=analysis))


class ReaderGate(Gate):
    """The pipeline's gate when the reader answers: a question for the reader passes on to
    it (the reader refuses itself, with a confidence, and applies the coverage verdict when
    `use_gate`); a question for another answerer is gated as before."""

    def __init__(self, analyser: ExtractiveAnswerer, reader_name: str) -> None:
        super().__init__(analyser)
        self.reader_name = reader_name

    def check(self, question: str, passages: Sequence[Passage], *, answerer: str,
              query_embedding: Any = None) -> Verdict:
        if answerer != self.reader_name:
            return super().check(question, passages, answerer=answerer,
                                 query_embedding=query_embedding)
        analysis = self.analyser.analyse(question, passages, query_embedding=query_embedding)
        return Verdict(analysis)
