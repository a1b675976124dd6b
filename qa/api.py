"""`NewsQA`: the one facade the CLI, the web app and scripts use.

A thin layer: questions go through `qa.pipeline` (assembled once, with or without a chat
model), indexing through `index` (update, rebuild, stats). Construction is cheap; the model,
the store and the keyword index open on first use or in `warm_up()`. Safe for concurrent
`ask()` calls from a web server: the model loads once and is shared, the store and keyword
index guard their own state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import index
from index.embedding import get_embedder
from index.records import Article, ArticleMeta, Quote
from index.settings import Settings
from index.store import Store
from qa.chain import QuestionChain
from qa.errors import QAError
from qa.extractive import ExtractiveAnswerer
from qa.llm import make_chat_model, validate_spec
from qa.pipeline import Pipeline, Request, assemble
from qa.question import clean_question
from qa.quotes import QuoteIndex
from qa.reader import Reader
from qa.records import Answer, Speaker
from qa.retriever import Filters, NewsQARetriever, RetrievalConfig, Retriever

PathLike = str | Path


class NewsQA:
    """Ask questions of the indexed articles; add, list and inspect articles."""

    def __init__(self, settings: Settings, *, embedder: Any = None, store: Store | None = None,
                 llm: Any = None, retrieval: RetrievalConfig | None = None) -> None:
        if not isinstance(settings, Settings):
            raise QAError(f"settings must be a Settings, got {type(settings).__name__}")
        self.settings = settings
        self.embedder = embedder if embedder is not None else get_embedder(
            settings.embedding_model, int8=settings.encoder_int8)
        self.store = store if store is not None else Store(
            settings, model_name=getattr(self.embedder, "signature", self.embedder.name))
        self.retriever_engine = Retriever(settings, embedder=self.embedder, store=self.store,
                                          config=retrieval)
        self.extractive = ExtractiveAnswerer(self.embedder, article_loader=self.store.get_article)
        self.quote_index = QuoteIndex(self.store, self.embedder)
        self.reader = Reader() if settings.reader else None  # loads in warm_up / first use
        self._llm = llm
        if isinstance(llm, str) or (llm is None and settings.llm):
            validate_spec(llm if isinstance(llm, str) else settings.llm)
        self._lock = threading.Lock()
        self._pipeline: Pipeline | None = None
        self._generation = index.generation(settings)  # read before the store first opens

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, llm: Any = None) -> NewsQA:
        """A NewsQA over `settings` (defaults when None; environment is read by callers)."""
        return cls(settings or Settings(), llm=llm)

    # --- lazy parts ----------------------------------------------------------------------

    def _chat_model(self) -> Any:
        """The configured chat model (llm= object or spec, else settings.llm), or None."""
        if self._llm is not None and not isinstance(self._llm, str):
            return self._llm
        spec = self._llm or self.settings.llm
        return make_chat_model(spec, self.settings) if spec else None

    @property
    def pipeline(self) -> Pipeline:
        """The question pipeline (qa.pipeline), with the chat model set up on first use."""
        if self._pipeline is None:
            with self._lock:
                if self._pipeline is None:
                    self._pipeline = assemble(retriever=self.retriever_engine,
                                              embedder=self.embedder,
                                              extractive=self.extractive,
                                              chat_model=self._chat_model(),
                                              generation=self.generation,
                                              quotes=self.quote_index,
                                              cite_uncited=self.settings.llm_cite_uncited,
                                              reader=self.reader)
        return self._pipeline

    def warm_up(self) -> None:
        """Load the model (and the reader's weights), open the store and the keyword index,
        set up the LLM if any."""
        self.embedder.warm_up()
        if self.reader is not None:
            self.reader.warm_up()
        self.retriever_engine.warm_up()
        _ = self.pipeline

    # --- asking --------------------------------------------------------------------------

    def generation(self) -> str:
        """The index generation questions are answered from ("" before the first build)."""
        return self._generation

    def refresh(self) -> bool:
        """Reopen the store and reload the keyword index when an indexer (possibly another
        process) published a new generation since we last looked; True when it did."""
        current = index.generation(self.settings)
        if current == self._generation:
            return False
        with self._lock:
            if current == self._generation:
                return False
            self.store.reopen()
            self.retriever_engine.refresh_keyword()
            self._generation = current
        return True

    def ask(self, question: str, *, history: Sequence[Any] | None = None, k: int | None = None,
            sources: str | Sequence[str] | None = None, since: str | date | None = None,
            until: str | date | None = None,
            article_ids: str | Sequence[str] | None = None,
            question_date: str | date | None = None, time_words: bool = True) -> Answer:
        """Answer a question from the indexed articles, with checked citations.

        Time words ("this week", "since Monday") narrow the dates searched, counted from
        `question_date` (default today); `time_words=False` reads them as plain words.
        """
        request = Request.make(question, history=history, k=k, sources=sources, since=since,
                               until=until, article_ids=article_ids,
                               question_date=question_date, time_words=time_words)
        self.refresh()
        return self.pipeline.ask(request)

    def stream(self, question: str, *, history: Sequence[Any] | None = None,
               k: int | None = None, sources: str | Sequence[str] | None = None,
               since: str | date | None = None, until: str | date | None = None,
               article_ids: str | Sequence[str] | None = None,
               question_date: str | date | None = None,
               time_words: bool = True) -> Iterator[str | Answer]:
        """Text pieces of the answer, then the final Answer (the same as ask() gives)."""
        request = Request.make(question, history=history, k=k, sources=sources, since=since,
                               until=until, article_ids=article_ids,
                               question_date=question_date, time_words=time_words)
        self.refresh()
        yield from self.pipeline.stream(request)

    def chain(self) -> QuestionChain:
        """This NewsQA's ask/stream as a LangChain Runnable, to compose in LCEL chains."""
        return QuestionChain(self.ask, self.stream)

    def standalone_question(self, question: str, history: Sequence[Any] | None) -> str:
        """The follow-up rewritten to stand alone (offline rule, or the LLM when set)."""
        return self.pipeline.standalone(clean_question(question), list(history or ()))

    def retriever(self, *, k: int | None = None, sources: str | Sequence[str] | None = None,
                  since: str | date | None = None, until: str | date | None = None,
                  article_ids: str | Sequence[str] | None = None) -> NewsQARetriever:
        """A LangChain BaseRetriever over the index with these filters."""
        filters = Filters.make(sources=sources, since=since, until=until, article_ids=article_ids)
        return self.retriever_engine.as_langchain(k=k, filters=filters)

    # --- who said what -------------------------------------------------------------------

    def quotes(self, speaker: str | None = None, topic: str | None = None,
               since: str | date | None = None, until: str | date | None = None,
               sources: str | Sequence[str] | None = None,
               limit: int | None = None) -> list[Quote]:
        """Stored quotes of `speaker` (any merged form of the name), ranked by `topic` when
        given, else newest first, within the dates and sources given (qa.quotes)."""
        self.refresh()
        return self.quote_index.quotes(speaker=speaker, topic=topic, since=since, until=until,
                                       sources=sources, limit=limit)

    def speakers(self, since: str | date | None = None, until: str | date | None = None,
                 sources: str | Sequence[str] | None = None) -> list[Speaker]:
        """The people and outlets quoted, merged across mentions and articles, most quoted
        first, with quote counts and date ranges (qa.quotes)."""
        self.refresh()
        return self.quote_index.speakers(since=since, until=until, sources=sources)

    def speaker_of(self, quote: Quote) -> str:
        """The merged speaker name a quote is listed under ("" when it names no speaker)."""
        return self.quote_index.speaker_of(quote)

    # --- the collection ------------------------------------------------------------------

    def add(self, paths: Sequence[PathLike] | PathLike, *,
            progress: Callable[..., None] | None = None, prune: bool | None = False) -> Any:
        """Index files/folders (new or changed articles only); returns the IndexReport."""
        return self._index("update", paths, progress, prune=prune)

    def reindex(self, paths: Sequence[PathLike] | PathLike | None = None, *,
                progress: Callable[..., None] | None = None) -> Any:
        """Bring `paths` (default: the seeds folder) up to date: new and changed files are
        indexed, files gone from those folders removed; articles from elsewhere are kept."""
        return self._index("update", paths, progress, prune=None)

    def rebuild(self, paths: Sequence[PathLike] | PathLike | None = None, *,
                progress: Callable[..., None] | None = None) -> Any:
        """Drop the whole index and re-embed `paths` (default: the seeds folder)."""
        return self._index("rebuild", paths, progress)

    def _index(self, mode: str, paths: Sequence[PathLike] | PathLike | None,
               progress: Callable[..., None] | None, **options: Any) -> Any:
        if paths is None:
            paths = [self.settings.seeds_dir]
        elif isinstance(paths, (str, Path)):
            paths = [paths]
        run = index.rebuild if mode == "rebuild" else index.update
        report = run(list(paths), self.settings, embedder=self.embedder, store=self.store,
                     progress=progress, **options)
        self.retriever_engine.refresh_keyword()
        return report

    def articles(self, query: str = "") -> list[tuple[ArticleMeta, int]]:
        """(article, chunk count) for indexed articles whose title or source contains `query`."""
        needle = (query or "").strip().lower()
        rows = self.store.list_articles()
        if not needle:
            return rows
        return [row for row in rows
                if needle in row[0].title.lower() or needle in row[0].source.lower()]

    def article(self, article_id: str) -> Article | None:
        return self.store.get_article(article_id) if article_id else None

    def sources(self) -> list[str]:
        return self.store.sources()

    def stats(self) -> dict[str, Any]:
        """Articles, chunks, sources, model and where the index lives."""
        return dict(index.stats(self.settings, store=self.store))

    def is_empty(self) -> bool:
        return self.store.count()[0] == 0
