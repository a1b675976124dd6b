"""One way through a question, for `ask` and `stream` alike, with or without an LLM.

question (+ chat history) -> standalone question (the rewriter) -> its kind (`route`) ->
query embedding -> passages (the retriever) -> the gate (a question the passages do not cover
is refused here: no answerer, no chat model runs) -> the answer (the answerer for the kind;
`stream` yields its text pieces first) -> the Answer, stamped with the asked and the
standalone question and the time of each step.

Whether an LLM takes part is decided once, in `assemble`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Protocol

from qa.errors import QAError
from qa.extractive import ExtractiveAnswerer
from qa.gate import Gate, Verdict
from qa.llm import LLMAnswerer, LLMRewriter
from qa.question import FollowupRule, QuestionInfo, QuestionKind, clean_question, route
from qa.records import Answer, Passage
from qa.retriever import Filters, Retriever
from qa.support import SupportChecker

MAX_K = 50


class Answerer(Protocol):
    """Writes the answer from passages the gate admitted (extractive or LLM)."""

    name: str

    def answer(self, question: str, passages: Sequence[Passage], *,
               query_embedding: Any = None, analysis: Any = None) -> Answer: ...

    def stream(self, question: str, passages: Sequence[Passage], *,
               query_embedding: Any = None, analysis: Any = None
               ) -> Iterator[str | Answer]: ...


class Rewriter(Protocol):
    """Makes a follow-up question stand alone, given the chat history."""

    def rewrite(self, question: str, history: Sequence[Any]) -> str: ...


class QueryEmbedder(Protocol):
    def embed_query(self, text: str) -> Any: ...


@dataclass(frozen=True)
class Request:
    """A validated question with its history, passage count and filters."""

    question: str
    history: tuple[Any, ...] = ()
    k: int | None = None
    filters: Filters = field(default_factory=Filters)

    @classmethod
    def make(cls, question: Any, *, history: Sequence[Any] | None = None,
             k: int | None = None, sources: str | Sequence[str] | None = None,
             since: str | date | None = None, until: str | date | None = None,
             article_ids: str | Sequence[str] | None = None) -> Request:
        """A Request from loose arguments; InvalidQuestionError / QAError when unusable."""
        text = clean_question(question)
        if k is not None and not 1 <= int(k) <= MAX_K:
            raise QAError(f"k must be between 1 and {MAX_K}, got {k}")
        filters = Filters.make(sources=sources, since=since, until=until, article_ids=article_ids)
        return cls(question=text, history=tuple(history or ()), k=k, filters=filters)


@dataclass(frozen=True)
class Prepared:
    """A question ready to be answered: what was asked, what was searched, what was found."""

    request: Request
    standalone: str
    kind: QuestionKind
    embedding: Any
    passages: list[Passage]
    timings: dict[str, float]


@dataclass(frozen=True)
class Admitted:
    """A prepared question, the answerer chosen for its kind, the gate's verdict, and when the
    whole and the answering began (for the timings)."""

    prepared: Prepared
    answerer: Answerer
    verdict: Verdict
    started: float
    answering_since: float


class Pipeline:
    """The steps from a Request to an Answer; cheap to build from its parts."""

    def __init__(self, *, retriever: Retriever, embedder: QueryEmbedder, gate: Gate,
                 answerer: Answerer, rewriter: Rewriter,
                 routes: Mapping[QuestionKind, Answerer] | None = None) -> None:
        self.retriever = retriever
        self.embedder = embedder
        self.gate = gate
        self.answerer = answerer
        self.rewriter = rewriter
        self.routes = dict(routes or {})

    # --- the steps ---------------------------------------------------------------------

    def standalone(self, question: str, history: Sequence[Any]) -> str:
        """The question rewritten to stand alone (unchanged without a history)."""
        return self.rewriter.rewrite(question, history) if history else question

    def answerer_for(self, kind: QuestionKind) -> Answerer:
        """The answerer that handles questions of `kind` (today's answerer for all kinds)."""
        return self.routes.get(kind, self.answerer)

    def retrieve(self, request: Request, standalone: str) -> tuple[Any, list[Passage]]:
        """The standalone question's embedding and the passages found with it."""
        embedding = self.embedder.embed_query(standalone)
        passages = self.retriever.retrieve(standalone, k=request.k, filters=request.filters,
                                           query_embedding=embedding)
        return embedding, passages

    def prepare(self, request: Request) -> Prepared:
        """Rewrite, route, embed and retrieve."""
        started = time.perf_counter()
        standalone = self.standalone(request.question, request.history)
        timings = {"rewrite": time.perf_counter() - started}
        mark = time.perf_counter()
        kind = route(QuestionInfo.parse(standalone))
        embedding, passages = self.retrieve(request, standalone)
        timings["retrieve"] = time.perf_counter() - mark
        return Prepared(request, standalone, kind, embedding, passages, timings)

    def check(self, prepared: Prepared, answerer: Answerer) -> Verdict:
        """The gate's verdict on the passages found (a refusal names `answerer`)."""
        return self.gate.check(prepared.standalone, prepared.passages, answerer=answerer.name,
                               query_embedding=prepared.embedding)

    # --- ask and stream ----------------------------------------------------------------

    def admit(self, request: Request) -> Admitted:
        """Prepare `request`, choose its answerer and hear the gate: what ask and stream share."""
        started = time.perf_counter()
        prepared = self.prepare(request)
        answering_since = time.perf_counter()
        answerer = self.answerer_for(prepared.kind)
        verdict = self.check(prepared, answerer)
        return Admitted(prepared, answerer, verdict, started, answering_since)

    def ask(self, request: Request) -> Answer:
        """The checked Answer to `request`."""
        admitted = self.admit(request)
        prepared, verdict = admitted.prepared, admitted.verdict
        if verdict.refused is not None:
            answer = verdict.refused
        else:
            answer = admitted.answerer.answer(prepared.standalone, prepared.passages,
                                              query_embedding=prepared.embedding,
                                              analysis=verdict.analysis)
        return self._stamped(answer, admitted)

    def stream(self, request: Request) -> Iterator[str | Answer]:
        """Text pieces of the answer, then the same Answer as `ask` gives."""
        admitted = self.admit(request)
        prepared, verdict = admitted.prepared, admitted.verdict
        if verdict.refused is not None:
            pieces: Iterator[str | Answer] = _lines_then(verdict.refused)
        else:
            pieces = admitted.answerer.stream(prepared.standalone, prepared.passages,
                                              query_embedding=prepared.embedding,
                                              analysis=verdict.analysis)
        answer: Answer | None = None
        for item in pieces:
            if isinstance(item, Answer):
                answer = item
            else:
                yield item
        if answer is None:
            raise QAError(f"the {admitted.answerer.name} answerer streamed no final answer")
        yield self._stamped(answer, admitted)

    @staticmethod
    def _stamped(answer: Answer, admitted: Admitted) -> Answer:
        """The answer with the asked and the standalone question and every step's time."""
        prepared = admitted.prepared
        question, standalone = prepared.request.question, prepared.standalone
        now = time.perf_counter()
        timings = {**prepared.timings, **admitted.verdict.analysis.timings, **answer.timings,
                   "answer": now - admitted.answering_since, "total": now - admitted.started}
        return replace(answer, question=question,
                       standalone_question=standalone if standalone != question else "",
                       timings=timings)


def _lines_then(answer: Answer) -> Iterator[str | Answer]:
    """An answer composed in one go, streamed as its lines, then the answer itself."""
    yield from answer.text.splitlines(keepends=True)
    yield answer


def assemble(*, retriever: Retriever, embedder: QueryEmbedder, extractive: ExtractiveAnswerer,
             chat_model: Any = None) -> Pipeline:
    """The pipeline with or without a chat model: the one place that choice is made.

    Offline, the extractive answerer answers and a rule rewrites follow-ups; with a chat
    model, the model does both, each sentence checked against its passages with the
    extractive answerer's embedder, and the extractive answer is the fallback when none
    survives. The gate is the extractive analysis either way.
    """
    gate = Gate(extractive)
    if chat_model is None:
        return Pipeline(retriever=retriever, embedder=embedder, gate=gate, answerer=extractive,
                        rewriter=FollowupRule())
    answerer = LLMAnswerer(chat_model, gate, checker=SupportChecker(extractive.embedder),
                           fallback=extractive)
    return Pipeline(retriever=retriever, embedder=embedder, gate=gate, answerer=answerer,
                    rewriter=LLMRewriter(chat_model))
