"""Frozen records of answers: Passage (a retrieved chunk), Citation, Answer; Speaker; and
the Answerer protocol that writes an Answer."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from index.records import ArticleMeta, Chunk


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its article and the scores that ranked it (None = not scored)."""

    chunk: Chunk
    article: ArticleMeta
    score: float
    dense_score: float | None = None
    keyword_score: float | None = None

    @property
    def id(self) -> str:
        return self.chunk.id

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "chunk": self.chunk.to_dict(), "article": self.article.to_dict(),
                "score": self.score, "dense_score": self.dense_score,
                "keyword_score": self.keyword_score}


@dataclass(frozen=True)
class Citation:
    """[number] in an answer: a verbatim quote of `article`, body[start:end] == quote.

    `answer_start`/`answer_end` (offsets into the same body, inside [start, end]) mark the
    short answer within the quote ("Corriere della Sera"); both None when there is none.
    """

    number: int
    article: ArticleMeta
    quote: str
    start: int
    end: int
    chunk_id: str = ""
    answer_start: int | None = None
    answer_end: int | None = None

    def __post_init__(self) -> None:
        if self.number < 1:
            raise ValueError("Citation.number starts at 1")
        if self.end - self.start != len(self.quote) or self.start < 0:
            raise ValueError("Citation offsets do not match the quote")
        if (self.answer_start is None) != (self.answer_end is None):
            raise ValueError("Citation.answer_start and answer_end go together")
        if self.answer_start is not None and self.answer_end is not None and not (
                self.start <= self.answer_start < self.answer_end <= self.end):
            raise ValueError("Citation's short answer must lie inside its quote")

    @property
    def answer(self) -> str:
        """The short answer's text (a substring of the quote), "" when there is none."""
        if self.answer_start is None or self.answer_end is None:
            return ""
        return self.quote[self.answer_start - self.start:self.answer_end - self.start]

    def to_dict(self) -> dict[str, Any]:
        return {"number": self.number, "article_id": self.article.id,
                "title": self.article.title, "source": self.article.source,
                "published": self.article.published, "url": self.article.url,
                "author": self.article.author, "path": self.article.path,
                "quote": self.quote, "start": self.start, "end": self.end,
                "chunk_id": self.chunk_id, "answer": self.answer,
                "answer_start": self.answer_start, "answer_end": self.answer_end}


@dataclass(frozen=True)
class Answer:
    """An answer: text with [n] markers, the citations they resolve to, the passages read.

    `found` is False when the indexed articles do not answer the question; `passages` then
    holds the closest passages ("see also"). `warnings` reports what citation checking removed
    or flagged. For an audit: `searched` is the (since, until) days the articles were searched
    in ("" for an open end; None when no date bound applied), `generation` the index
    generation the answer was made from, `model` the chat model's name ("" offline),
    `confidence` the calibrated probability that the best span answers the question (None
    when no reader scored it) and `reader` the sha256 of the reader weights that did.
    """

    question: str
    text: str
    found: bool
    citations: tuple[Citation, ...] = ()
    passages: tuple[Passage, ...] = ()
    warnings: tuple[str, ...] = ()
    standalone_question: str = ""
    answerer: str = "extractive"
    timings: dict[str, float] = field(default_factory=dict, compare=False)
    searched: tuple[str, str] | None = None
    generation: str = ""
    model: str = ""
    confidence: float | None = None
    reader: str = ""

    @property
    def short_answer(self) -> str:
        """The short answer the reply leads with (the first citation's), "" when none."""
        return next((c.answer for c in self.citations if c.answer), "")

    def to_dict(self) -> dict[str, Any]:
        return {"question": self.question, "text": self.text, "found": self.found,
                "citations": [c.to_dict() for c in self.citations],
                "passages": [p.to_dict() for p in self.passages],
                "warnings": list(self.warnings),
                "standalone_question": self.standalone_question or self.question,
                "answerer": self.answerer, "timings": dict(self.timings),
                "searched": list(self.searched) if self.searched else None,
                "generation": self.generation, "model": self.model,
                "short_answer": self.short_answer, "confidence": self.confidence,
                "reader": self.reader}


@dataclass(frozen=True)
class Speaker:
    """A person or outlet quoted in the articles, merged across mentions and articles.

    `name` is the fullest form found; `aliases` the other forms merged into it; `first` and
    `last` the earliest and latest publication dates (ISO, "" when undated) of its quotes.
    """

    name: str
    aliases: tuple[str, ...] = ()
    quote_count: int = 0
    article_count: int = 0
    first: str = ""
    last: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "aliases": list(self.aliases),
                "quote_count": self.quote_count, "article_count": self.article_count,
                "first": self.first, "last": self.last}


def lines_then(answer: Answer) -> Iterator[str | Answer]:
    """An answer composed in one go, streamed as its lines, then the answer itself (what
    every answerer that does not generate token by token streams)."""
    yield from answer.text.splitlines(keepends=True)
    yield answer


class Answerer(Protocol):
    """Writes the answer from passages the gate admitted (extractive, LLM or quotes); the
    pipeline routes to it, and the quote answerer falls back to one."""

    name: str

    def answer(self, question: str, passages: Sequence[Passage], *,
               query_embedding: Any = None, analysis: Any = None) -> Answer: ...

    def stream(self, question: str, passages: Sequence[Passage], *,
               query_embedding: Any = None, analysis: Any = None
               ) -> Iterator[str | Answer]: ...
