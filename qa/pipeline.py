"""One way through a question, for `ask` and `stream` alike, with or without an LLM.

question (+ chat history) -> standalone question (the rewriter) -> its kind (`route`) and
time words ("this week" on the question's date, narrowing the date filters) -> query
embedding -> passages (the retriever) -> the gate (a question the passages do not cover
is refused here: no answerer, no chat model runs) -> the answer (the answerer for the kind;
`stream` yields its text pieces first) -> the Answer, stamped with the asked and the
standalone question, the days searched, the index generation, the chat model and the time of
each step.

Whether an LLM takes part is decided once, in `assemble`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Protocol

from index.dates import DateRange, parse_day, relative_range
from index.errors import DateError
from qa.errors import QAError
from qa.extractive import ExtractiveAnswerer
from qa.gate import Gate, Verdict
from qa.llm import LLMAnswerer, LLMRewriter
from qa.question import FollowupRule, QuestionInfo, QuestionKind, clean_question, route
from qa.quote_answer import QuoteAnswerer
from qa.quotes import QuoteIndex
from qa.reading import ReaderGate, ReadingAnswerer, SpanReader
from qa.records import Answer, Answerer, Passage, lines_then
from qa.retriever import Filters, Retriever
from qa.support import SupportChecker

MAX_K = 50


class Rewriter(Protocol):
    """Makes a follow-up question stand alone, given the chat history."""

    def rewrite(self, question: str, history: Sequence[Any]) -> str: ...


class QueryEmbedder(Protocol):
    def embed_query(self, text: str) -> Any: ...


def question_day(value: str | date | None) -> date:
    """The day a question is asked on: `value` (YYYY-MM-DD or a date), today when None."""
    if isinstance(value, datetime):
        return value.date()
    if value is None or value == "":
        return date.today()
    try:
        return date.fromisoformat(parse_day(value, "question_date"))
    except DateError as exc:
        raise QAError(str(exc)) from exc


def dated_filters(filters: Filters, found: DateRange | None) -> Filters:
    """`filters` narrowed to the days of the question's time words (the narrower bound of
    each end wins); QAError when the two leave no day to search."""
    if found is None:
        return filters
    since = max(filters.since, found.since) if filters.since else found.since
    until = min(filters.until, found.until) if filters.until else found.until
    if since > until:
        bounds = " and ".join(f"{name} {value}" for name, value in
                              (("since", filters.since), ("until", filters.until)) if value)
        raise QAError(f'"{found.phrase}" in the question means {found.since} to {found.until}, '
                      f"which the date filter ({bounds}) leaves out: change the filter or the "
                      "question")
    return replace(filters, since=since, until=until)


@dataclass(frozen=True)
class Request:
    """A validated question with its history, passage count, filters and the day it is asked
    on (`question_date`: time words such as "this week" count from it, unless `time_words`
    is False)."""

    question: str
    history: tuple[Any, ...] = ()
    k: int | None = None
    filters: Filters = field(default_factory=Filters)
    question_date: date = field(default_factory=date.today)
    time_words: bool = True

    @classmethod
    def make(cls, question: Any, *, history: Sequence[Any] | None = None,
             k: int | None = None, sources: str | Sequence[str] | None = None,
             since: str | date | None = None, until: str | date | None = None,
             article_ids: str | Sequence[str] | None = None,
             question_date: str | date | None = None, time_words: bool = True) -> Request:
        """A Request from loose arguments; InvalidQuestionError / QAError when unusable."""
        text = clean_question(question)
        if k is not None and not 1 <= int(k) <= MAX_K:
            raise QAError(f"k must be between 1 and {MAX_K}, got {k}")
        filters = Filters.make(sources=sources, since=since, until=until, article_ids=article_ids)
        return cls(question=text, history=tuple(history or ()), k=k, filters=filters,
                   question_date=question_day(question_date), time_words=bool(time_words))

    def filters_for(self, standalone: str) -> tuple[Filters, DateRange | None]:
        """The filters to search with for the standalone question, narrowed by its time words,
        and the time words' range (None without any, or with time_words off)."""
        found = relative_range(standalone, self.question_date) if self.time_words else None
        return dated_filters(self.filters, found), found


@dataclass(frozen=True)
class Prepared:
    """A question ready to be answered: what was asked, what was searched (`filters`: the
    request's, narrowed by the question's time words), what was found."""

    request: Request
    standalone: str
    kind: QuestionKind
    embedding: Any
    passages: list[Passage]
    timings: dict[str, float]
    filters: Filters = field(default_factory=Filters)

    @property
    def searched(self) -> tuple[str, str] | None:
        """(since, until) of the days searched ("" for an open end), None when unbounded."""
        return (self.filters.since, self.filters.until) if (
            self.filters.since or self.filters.until) else None


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
                 routes: Mapping[QuestionKind, Answerer] | None = None,
                 generation: Callable[[], str] | None = None) -> None:
        self.retriever = retriever
        self.embedder = embedder
        self.gate = gate
        self.answerer = answerer
        self.rewriter = rewriter
        self.routes = dict(routes or {})
        self.generation = generation or _no_generation

    # --- the steps ---------------------------------------------------------------------

    def standalone(self, question: str, history: Sequence[Any]) -> str:
        """The question rewritten to stand alone (unchanged without a history)."""
        return self.rewriter.rewrite(question, history) if history else question

    def answerer_for(self, kind: QuestionKind, filters: Filters | None = None) -> Answerer:
        """The answerer that handles questions of `kind` (`routes`, else today's answerer);
        the quote answerer searches the quotes within the `filters` being searched."""
        answerer = self.routes.get(kind, self.answerer)
        if isinstance(answerer, QuoteAnswerer) and filters is not None:
            return answerer.within(filters)
        return answerer

    def retrieve(self, request: Request, standalone: str,
                 filters: Filters | None = None) -> tuple[Any, list[Passage]]:
        """The standalone question's embedding and the passages found with it (within
        `filters`, by default the request's)."""
        embedding = self.embedder.embed_query(standalone)
        passages = self.retriever.retrieve(standalone, k=request.k,
                                           filters=request.filters if filters is None else filters,
                                           query_embedding=embedding)
        return embedding, passages

    def prepare(self, request: Request) -> Prepared:
        """Rewrite, route, date (time words), embed and retrieve."""
        started = time.perf_counter()
        standalone = self.standalone(request.question, request.history)
        timings = {"rewrite": time.perf_counter() - started}
        mark = time.perf_counter()
        kind = route(QuestionInfo.parse(standalone))
        filters, _ = request.filters_for(standalone)
        embedding, passages = self.retrieve(request, standalone, filters)
        timings["retrieve"] = time.perf_counter() - mark
        return Prepared(request, standalone, kind, embedding, passages, timings, filters)

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
        answerer = self.answerer_for(prepared.kind, prepared.filters)
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
                                              analysis=verdict.analysis,
                                              **_dated(admitted.answerer, prepared.request))
        return self._stamped(answer, admitted)

    def stream(self, request: Request) -> Iterator[str | Answer]:
        """Text pieces of the answer, then the same Answer as `ask` gives."""
        admitted = self.admit(request)
        prepared, verdict = admitted.prepared, admitted.verdict
        if verdict.refused is not None:
            pieces: Iterator[str | Answer] = lines_then(verdict.refused)
        else:
            pieces = admitted.answerer.stream(prepared.standalone, prepared.passages,
                                              query_embedding=prepared.embedding,
                                              analysis=verdict.analysis,
                                              **_dated(admitted.answerer, prepared.request))
        answer: Answer | None = None
        for item in pieces:
            if isinstance(item, Answer):
                answer = item
            else:
                yield item
        if answer is None:
            raise QAError(f"the {admitted.answerer.name} answerer streamed no final answer")
        yield self._stamped(answer, admitted)

    def _stamped(self, answer: Answer, admitted: Admitted) -> Answer:
        """The answer with the asked and the standalone question, the days searched, the
        index generation, the chat model consulted ("" when none was) and every step's time."""
        prepared = admitted.prepared
        consulted = admitted.verdict.refused is None and isinstance(admitted.answerer,
                                                                    LLMAnswerer)
        question, standalone = prepared.request.question, prepared.standalone
        now = time.perf_counter()
        timings = {**prepared.timings, **admitted.verdict.analysis.timings, **answer.timings,
                   "answer": now - admitted.answering_since, "total": now - admitted.started}
        return replace(answer, question=question,
                       standalone_question=standalone if standalone != question else "",
                       timings=timings, searched=prepared.searched,
                       generation=self.generation(),
                       model=admitted.answerer.model_name if consulted else "")


def _no_generation() -> str:
    """The generation of a pipeline told none ("")."""
    return ""


def _dated(answerer: Answerer, request: Request) -> dict[str, Any]:
    """The question's date for an answerer that reads it (the LLM prompt's "Today is")."""
    return {"today": request.question_date} if isinstance(answerer, LLMAnswerer) else {}


def assemble(*, retriever: Retriever, embedder: QueryEmbedder, extractive: ExtractiveAnswerer,
             chat_model: Any = None, generation: Callable[[], str] | None = None,
             quotes: QuoteIndex | None = None, cite_uncited: bool = False,
             reader: SpanReader | None = None) -> Pipeline:
    """The pipeline with or without a chat model: the one place that choice is made.

    Offline, the extractive answerer answers and a rule rewrites follow-ups; with a chat
    model, the model does both, each sentence checked against its passages with the
    extractive answerer's embedder, and the offline answer (the reader's, or the extractive
    one without a reader) is the fallback when none survives. The gate is the extractive
    analysis either way. `generation` reads the index generation that answers are stamped
    with. With `quotes`, the offline pipeline answers
    "what did X say" and "who said" questions from the quote index, the extractive answerer
    the fallback (with a chat model they still go to the model). `cite_uncited`: the support
    check may cite a sentence the model left uncited (Settings.llm_cite_uncited). With a
    `reader` (Settings.reader), the offline pipeline answers through the `ReadingAnswerer`
    (qa.reading), which refuses by itself; what did X say questions still go to the quotes,
    and the reader answers venue questions ("Which newspaper interviewed X?") from them.
    """
    gate = Gate(extractive)
    offline: Answerer = (extractive if reader is None
                         else ReadingAnswerer(extractive, reader, quotes=quotes))
    if chat_model is None and isinstance(offline, ReadingAnswerer):
        return Pipeline(retriever=retriever, embedder=embedder,
                        gate=ReaderGate(extractive, offline.name), answerer=offline,
                        rewriter=FollowupRule(), generation=generation,
                        routes=_quote_routes(quotes, extractive))
    if chat_model is None:
        return Pipeline(retriever=retriever, embedder=embedder, gate=gate, answerer=extractive,
                        rewriter=FollowupRule(), generation=generation,
                        routes=_quote_routes(quotes, extractive))
    answerer = LLMAnswerer(chat_model, gate, checker=SupportChecker(extractive.embedder),
                           fallback=offline, cite_uncited=cite_uncited)
    return Pipeline(retriever=retriever, embedder=embedder, gate=gate, answerer=answerer,
                    rewriter=LLMRewriter(chat_model), generation=generation)


def _quote_routes(quotes: QuoteIndex | None,
                  fallback: Answerer) -> dict[QuestionKind, Answerer]:
    """SAID and WHO_SAID questions to the quote answerer (none without a quote index)."""
    if quotes is None:
        return {}
    answerer = QuoteAnswerer(quotes, fallback)
    return {QuestionKind.SAID: answerer, QuestionKind.WHO_SAID: answerer}
