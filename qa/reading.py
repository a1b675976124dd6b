"""The reader inside every offline answer: candidates -> reader -> short answer -> citations.

The extractive analysis proposes the candidate spans (sentences inside the retrieved chunks,
its most promising first); the learned reader (`qa.reader`) reads them with the question in
one encoder pass, re-ranks them and finds the short answer inside the best one. The answer
quotes the best span and those the reader scores close to it (at most MAX_CITATIONS, grouped
by article); a who / which / where / when / how-many question leads with its short answer and
marker ("Corriere della Sera [1]"). Every answer carries the reader's calibrated confidence;
with `refuse` an answer below the reader's threshold is "not found", with the closest passages
(off by default: the quality floor, see REFUSE_BELOW_THRESHOLD).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from qa.citations import article_heading, check_answer, not_found
from qa.extractive import Analysis, ExtractiveAnswerer, ScoredSpan
from qa.gate import Gate, Verdict, refusal
from qa.markers import format_marker
from qa.question import QuestionKind, route
from qa.records import Answer, Citation, Passage, lines_then

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
    """The reader's verdict on a question: spans best first, the calibrated confidence that
    the best one answers, and the time the reading took."""

    spans: tuple[ReadSpan, ...]
    confidence: float
    seconds: float


def read_spans(reader: SpanReader, question: str, candidates: Sequence[ScoredSpan], *,
               extractive_weight: float = 0.0, answer_weight: float = 0.0) -> Reading:
    """One reader pass over the candidates: re-ranked by the reader's score (plus
    `extractive_weight` x the extractive span score and `answer_weight` x the short-answer
    head's best score in the span), short answers in body offsets."""
    started = time.perf_counter()
    if not candidates:
        return Reading((), 0.0, time.perf_counter() - started)
    texts = [c.text for c in candidates]
    readings = reader.read(question, texts)
    confidence = float(reader.confidence(question, texts, readings))
    spans = [ReadSpan(c, float(r.score) + extractive_weight * c.score
                      + answer_weight * float(r.answer_score),
                      *_body_offsets(c, r.answer_start, r.answer_end))
             for c, r in zip(candidates, readings, strict=True)]
    spans.sort(key=lambda s: -s.score)
    return Reading(tuple(spans), confidence, time.perf_counter() - started)


def _body_offsets(span: ScoredSpan, start: int | None,
                  end: int | None) -> tuple[int | None, int | None]:
    """Span-text offsets of a short answer as article-body offsets (None, None when empty)."""
    if start is None or end is None or not 0 <= start < end <= len(span.text):
        return None, None
    return span.start + start, span.start + end


def close_spans(reading: Reading, *, limit: int = MAX_CITATIONS,
                margin: float = CLOSE_MARGIN) -> list[ReadSpan]:
    """The spans to quote: the best one, and those the reader scores within `margin` of it."""
    if not reading.spans:
        return []
    best = reading.spans[0].score
    return [s for s in reading.spans if s.score >= best - margin][:limit]


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


class ReadingAnswerer:
    """The offline answerer with the learned reader: verbatim spans the reader chose, the
    short answer first, refusal by calibrated confidence.

    `use_gate`: also refuse when the extractive coverage gate does (names missing, key words
    absent); `short_answers`: short questions (who / which / where / when / how many) lead
    with the short answer (the first citation carries it for any question either way);
    `refuse`: refuse below the reader's threshold. Each can be switched off (the ablation).
    """

    name = "reader"

    def __init__(self, extractive: ExtractiveAnswerer, reader: SpanReader, *,
                 use_gate: bool = True, short_answers: bool = True,
                 refuse: bool = REFUSE_BELOW_THRESHOLD,
                 max_citations: int = MAX_CITATIONS, margin: float = CLOSE_MARGIN,
                 extractive_weight: float = EXTRACTIVE_WEIGHT,
                 answer_weight: float = ANSWER_WEIGHT) -> None:
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

    def analyse(self, question: str, passages: Sequence[Passage], *,
                query_embedding: Any = None) -> Analysis:
        """The extractive analysis the candidates come from (and the gate reads)."""
        return self.extractive.analyse(question, passages, query_embedding=query_embedding)

    def read(self, question: str, analysis: Analysis) -> Reading:
        """The reader's pass over the analysis' most promising spans."""
        return read_spans(self.reader, question, analysis.spans[:self.reader.max_candidates],
                          extractive_weight=self.extractive_weight,
                          answer_weight=self.answer_weight)

    def answer(self, question: str, passages: Sequence[Passage], *,
               query_embedding: Any = None, analysis: Analysis | None = None) -> Answer:
        """The reader's answer, or the not-found answer; confidence and reader sha always set."""
        analysis = analysis or self.analyse(question, passages, query_embedding=query_embedding)
        reading = self.read(question, analysis)
        timings = {**analysis.timings, "read": reading.seconds}
        answer = self._refusal(question, passages, analysis, reading, timings)
        if answer is None:
            lead = self.short_answers and route(analysis.question) is QuestionKind.SHORT
            text, citations = quote_read_spans(
                close_spans(reading, limit=self.max_citations, margin=self.margin), lead=lead)
            answer = check_answer(question, text, passages, citations=citations,
                                  answerer=self.name, timings=timings)
        return replace(answer, confidence=reading.confidence, reader=self.reader.sha256)

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
