"""`NewsQA`: the one facade the CLI, the web app and scripts use.

Construction is cheap; the model, the store and the keyword index open on first use or in
`warm_up()`. Safe for concurrent `ask()` calls from a web server: the model loads once and is
shared, the store and keyword index guard their own state.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from index.records import Article, ArticleMeta
from index.settings import Settings
from index.store import Store
from index.text import strip_control
from qa.chain import _finish, build_chain, previous_questions, rewrite_followup
from qa.errors import InvalidQuestionError, QAError
from qa.extractive import ExtractiveAnswerer
from qa.records import Answer
from qa.retriever import Filters, NewsQARetriever, RetrievalConfig, Retriever
from qa.text import single_thread_torch

MAX_QUESTION_CHARS = 2000
MAX_K = 50

PathLike = str | Path


def clean_question(question: Any) -> str:
    """The question without control characters; InvalidQuestionError if empty or too long."""
    if not isinstance(question, str):
        raise InvalidQuestionError(f"the question must be text, got {type(question).__name__}")
    text = strip_control(question).strip()
    if not text:
        raise InvalidQuestionError("the question is empty: type a question about the articles")
    if len(text) > MAX_QUESTION_CHARS:
        raise InvalidQuestionError(f"the question is {len(text)} characters long; the limit is "
                                   f"{MAX_QUESTION_CHARS}: shorten it")
    return text


def _index_generation(settings: Settings) -> str:
    """The index's generation stamp, bumped by every indexing run that changed something."""
    from index.build import generation

    return generation(settings)


class NewsQA:
    """Ask questions of the indexed articles; add, list and inspect articles."""

    def __init__(self, settings: Settings, *, embedder: Any = None, store: Store | None = None,
                 llm: Any = None, retrieval: RetrievalConfig | None = None) -> None:
        if not isinstance(settings, Settings):
            raise QAError(f"settings must be a Settings, got {type(settings).__name__}")
        from index.embedding import get_embedder

        self.settings = settings
        self.embedder = embedder if embedder is not None else get_embedder(
            settings.embedding_model)
        self.store = store if store is not None else Store(settings, model_name=self.embedder.name)
        self.retriever_engine = Retriever(settings, embedder=self.embedder, store=self.store,
                                          config=retrieval)
        self.extractive = ExtractiveAnswerer(self.embedder, article_loader=self._load_article)
        self._llm = llm
        if isinstance(llm, str) or (llm is None and settings.llm):
            from qa.llm import validate_spec

            validate_spec(llm if isinstance(llm, str) else settings.llm)
        self._llm_answerer: Any = None
        self._lock = threading.Lock()
        self._chain: Any = None
        self._generation = _index_generation(settings)  # read before the store first opens

    @classmethod
    def from_settings(cls, settings: Settings | None = None, *, llm: Any = None) -> NewsQA:
        """A NewsQA over `settings` (defaults when None; environment is read by callers)."""
        return cls(settings or Settings(), llm=llm)

    # --- lazy parts ----------------------------------------------------------------------

    @property
    def llm_answerer(self) -> Any:
        """The LLM answerer when one is configured (settings.llm or llm=), else None."""
        if self._llm is None and not self.settings.llm:
            return None
        if self._llm_answerer is None:
            with self._lock:
                if self._llm_answerer is None:
                    from qa.llm import LLMAnswerer, make_chat_model

                    model = self._llm
                    if model is None or isinstance(model, str):
                        model = make_chat_model(model or self.settings.llm, self.settings)
                    self._llm_answerer = LLMAnswerer(model, self.extractive)
        return self._llm_answerer

    @property
    def answerer_name(self) -> str:
        return "llm" if (self._llm is not None or self.settings.llm) else "extractive"

    @property
    def chain(self) -> Any:
        """The LCEL pipeline question -> Answer (see qa.chain.build_chain)."""
        if self._chain is None:
            self._chain = build_chain(self)
        return self._chain

    def _load_article(self, article_id: str) -> Article | None:
        return self.store.get_article(article_id)

    def warm_up(self) -> None:
        """Load the model, open the store and the keyword index, set up the LLM if any."""
        self.embedder.warm_up()
        self.retriever_engine.warm_up()
        _ = self.llm_answerer
        _ = self.chain

    # --- asking --------------------------------------------------------------------------

    def refresh(self) -> bool:
        """Reopen the store and reload the keyword index when an indexer (possibly another
        process) published a new generation since we last looked; True when it did."""
        current = _index_generation(self.settings)
        if current == self._generation:
            return False
        with self._lock:
            if current == self._generation:
                return False
            self.store.reopen()
            self.retriever_engine.refresh_keyword()
            self._generation = current
        return True

    def _state(self, question: str, history: Sequence[Any] | None, k: int | None,
               sources: str | Sequence[str] | None, since: str | date | None,
               until: str | date | None, article_ids: str | Sequence[str] | None
               ) -> dict[str, Any]:
        text = clean_question(question)
        self.refresh()
        if k is not None and not 1 <= int(k) <= MAX_K:
            raise QAError(f"k must be between 1 and {MAX_K}, got {k}")
        filters = Filters.make(sources=sources, since=since, until=until, article_ids=article_ids)
        return {"question": text, "history": list(history or ()), "k": k, "filters": filters}

    def ask(self, question: str, *, history: Sequence[Any] | None = None, k: int | None = None,
            sources: str | Sequence[str] | None = None, since: str | date | None = None,
            until: str | date | None = None,
            article_ids: str | Sequence[str] | None = None) -> Answer:
        """Answer a question from the indexed articles, with checked citations."""
        state = self._state(question, history, k, sources, since, until, article_ids)
        started = time.perf_counter()
        answer = self.chain.invoke(state)
        return replace(answer, timings={**answer.timings, "total": time.perf_counter() - started})

    def stream(self, question: str, *, history: Sequence[Any] | None = None,
               k: int | None = None, sources: str | Sequence[str] | None = None,
               since: str | date | None = None, until: str | date | None = None,
               article_ids: str | Sequence[str] | None = None) -> Iterator[str | Answer]:
        """Text pieces of the answer, then the final Answer (the same as ask() gives)."""
        state = self._state(question, history, k, sources, since, until, article_ids)
        started = time.perf_counter()
        llm = self.llm_answerer
        if llm is None:
            answer = self.chain.invoke(state)
            yield from answer.text.splitlines(keepends=True)
            yield replace(answer, timings={**answer.timings,
                                           "total": time.perf_counter() - started})
            return
        standalone = state["question"]
        if state["history"]:
            standalone = llm.rewrite(standalone, previous_questions(state["history"]))
        with single_thread_torch():
            embedding = self.embedder.embed_query(standalone)
        passages = self.retriever_engine.retrieve(standalone, k=k, filters=state["filters"],
                                                  query_embedding=embedding)
        for item in llm.stream(standalone, passages, query_embedding=embedding):
            if isinstance(item, Answer):
                final = _finish(item, state["question"], standalone, item.timings)
                yield replace(final, timings={**final.timings,
                                              "total": time.perf_counter() - started})
            else:
                yield item

    def standalone_question(self, question: str, history: Sequence[Any] | None) -> str:
        """The follow-up rewritten to stand alone (offline rule, or the LLM when set)."""
        text = clean_question(question)
        if self.llm_answerer is not None and history:
            return self.llm_answerer.rewrite(text, previous_questions(history))
        return rewrite_followup(text, history)

    def retriever(self, *, k: int | None = None, sources: str | Sequence[str] | None = None,
                  since: str | date | None = None, until: str | date | None = None,
                  article_ids: str | Sequence[str] | None = None) -> NewsQARetriever:
        """A LangChain BaseRetriever over the index with these filters."""
        filters = Filters.make(sources=sources, since=since, until=until, article_ids=article_ids)
        return self.retriever_engine.as_langchain(k=k, filters=filters)

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
        from index import build

        if paths is None:
            paths = [self.settings.seeds_dir]
        elif isinstance(paths, (str, Path)):
            paths = [paths]
        run = build.rebuild if mode == "rebuild" else build.update
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
        from index import build

        return dict(build.stats(self.settings, store=self.store))

    def is_empty(self) -> bool:
        return self.store.count()[0] == 0
