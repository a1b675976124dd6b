"""Hybrid retrieval: dense (Chroma) and keyword (BM25) candidates fused by reciprocal rank.

`Retriever.retrieve()` returns `Passage`s for the answerers; `NewsQARetriever` wraps it as a
LangChain `BaseRetriever` returning `Document`s, for users' own LCEL chains.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from index import keyword as keyword_index
from index.catalog import Allowed, Catalog
from index.dates import day_number
from index.errors import DateError
from index.records import ArticleMeta, Chunk
from index.settings import Settings
from index.store import ChunkHit, Store, build_where
from qa.errors import QAError
from qa.records import Passage

Mode = Literal["hybrid", "dense", "keyword"]
MODES: tuple[str, ...] = ("hybrid", "dense", "keyword")

#: Defaults chosen on the RealTime QA subset (see qa/benchmark.py `evaluate_retrieval`).
DEFAULT_MODE: Mode = "hybrid"
DEFAULT_RRF_K = 60
DEFAULT_DEPTH = 40
DEFAULT_PER_ARTICLE = 3
DEFAULT_DENSE_WEIGHT = 0.5
DEFAULT_KEYWORD_WEIGHT = 1.0
#: A filtered dense search restricted to the allowed chunk ids (from the catalog) is Chroma's
#: exact restricted search without its metadata scan. With `filter_widen` > 0 it first asks
#: for depth x filter_widen neighbours unfiltered and keeps the allowed ones (the restricted
#: search when too few survive). Off by default: on the 21.5k-chunk dev store retrieval took
#: 34.0 ms p50 with the ids search against 31.6 ms wide, and at HNSW ef_search 100 the wide
#: lists are not the restricted search's (9 of 163 top-40 dense lists differ).
DEFAULT_FILTER_WIDEN = 0
#: The wide search is tried only in stores of at least this many chunks.
DEFAULT_WIDE_MIN_CHUNKS = 5000


def _as_tuple(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    return tuple(v.strip() for v in value if v and v.strip())


def _as_day(value: str | date | None, name: str) -> str:
    """A filter bound as YYYY-MM-DD ("" when unset); QAError naming the bound otherwise."""
    try:
        if day_number(value) is None:
            return ""
    except DateError as exc:
        raise QAError(f"{name}: {exc}") from exc
    return value.isoformat() if isinstance(value, date) else str(value).strip()[:10]


@dataclass(frozen=True)
class Filters:
    """Which articles a question may be answered from (empty = no restriction)."""

    sources: tuple[str, ...] = ()
    since: str = ""
    until: str = ""
    article_ids: tuple[str, ...] = ()

    @classmethod
    def make(cls, *, sources: str | Sequence[str] | None = None,
             since: str | date | None = None, until: str | date | None = None,
             article_ids: str | Sequence[str] | None = None) -> Filters:
        """Validated filters from loose arguments (a single string or a list, dates or ISO)."""
        filters = cls(sources=_as_tuple(sources), since=_as_day(since, "since"),
                      until=_as_day(until, "until"), article_ids=_as_tuple(article_ids))
        if filters.since and filters.until and filters.since > filters.until:
            raise QAError(f"since ({filters.since}) is after until ({filters.until})")
        return filters

    @property
    def active(self) -> bool:
        return bool(self.sources or self.since or self.until or self.article_ids)

    def where(self) -> dict[str, Any] | None:
        return build_where(sources=self.sources or None, since=self.since or None,
                           until=self.until or None, article_ids=self.article_ids or None)

    def select(self, catalog: Catalog) -> Allowed:
        """The articles and chunks of `catalog` these filters keep (the rules of `where`)."""
        return catalog.allowed(sources=self.sources, low=day_number(self.since or None),
                               high=day_number(self.until or None),
                               article_ids=self.article_ids)

    def to_dict(self) -> dict[str, Any]:
        return {"sources": list(self.sources), "since": self.since, "until": self.until,
                "article_ids": list(self.article_ids)}


@dataclass(frozen=True)
class RetrievalConfig:
    """How candidates are gathered and fused; the defaults won on the eval subset."""

    mode: Mode = DEFAULT_MODE
    rrf_k: int = DEFAULT_RRF_K
    depth: int = DEFAULT_DEPTH
    per_article: int = DEFAULT_PER_ARTICLE
    dense_weight: float = DEFAULT_DENSE_WEIGHT
    keyword_weight: float = DEFAULT_KEYWORD_WEIGHT
    filter_widen: int = DEFAULT_FILTER_WIDEN
    wide_min_chunks: int = DEFAULT_WIDE_MIN_CHUNKS

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise QAError(f"retrieval mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if min(self.rrf_k, self.filter_widen, self.wide_min_chunks) < 0 \
                or self.depth < 1 or self.per_article < 1:
            raise QAError("rrf_k, filter_widen and wide_min_chunks must be >= 0, depth and "
                          "per_article >= 1")


@dataclass(frozen=True)
class DenseHits:
    """A dense search's hits, best first, and its path: "unfiltered", "wide" (searched wider,
    filtered in Python) or "exact" (Chroma restricted to the allowed chunk ids)."""

    hits: list[ChunkHit]
    path: Literal["unfiltered", "wide", "exact"]


@dataclass
class _Candidate:
    chunk: Chunk
    article: ArticleMeta
    dense: float | None = None
    dense_rank: int | None = None
    keyword: float | None = None
    keyword_rank: int | None = None
    fused: float = 0.0


def _capped(ranked: Sequence[_Candidate], k: int, cap: int | None) -> list[_Candidate]:
    """The first k candidates, at most `cap` per article (no cap when None)."""
    chosen: list[_Candidate] = []
    per_article: dict[str, int] = {}
    for cand in ranked:
        count = per_article.get(cand.article.id, 0)
        if cap is not None and count >= cap:
            continue
        per_article[cand.article.id] = count + 1
        chosen.append(cand)
        if len(chosen) >= k:
            break
    return chosen


class Retriever:
    """Dense + BM25 retrieval over the store with filters and a per-article cap.

    Cheap to construct; the model, the store and the keyword index open on first use.
    """

    def __init__(self, settings: Settings, *, embedder: Any, store: Store,
                 keyword: Any = None, config: RetrievalConfig | None = None) -> None:
        self.settings = settings
        self.embedder = embedder
        self.store = store
        self.config = config or RetrievalConfig()
        self._keyword = keyword
        self._catalog: tuple[str, Catalog] | None = None  # (store fingerprint, catalog)
        self._lock = threading.Lock()

    # --- lazy parts ----------------------------------------------------------------------

    @property
    def keyword(self) -> Any:
        """The keyword index (index.keyword), opened and brought in step on first use."""
        if self._keyword is None:
            with self._lock:
                if self._keyword is None:
                    self._keyword = keyword_index.load_or_build(self.settings, self.store)
        return self._keyword

    def _following_keyword(self) -> Any:
        """The keyword index, caught up first with a Chroma server's writes from any machine
        (its write stamp moved: the new articles' chunks are fetched from the server, removed
        ones dropped; no model needed). Locally the indexer keeps it in step."""
        index = self.keyword
        if self.settings.chroma_url:
            index.catch_up(self.store)
        return index

    @property
    def catalog(self) -> Catalog:
        """What filters need (index.catalog), re-read from the store after each write to it
        (its fingerprint, a file read or one request to a server, is checked per use)."""
        stamp = self.store.fingerprint()
        cached = self._catalog
        if cached is None or cached[0] != stamp:
            with self._lock:
                cached = self._catalog
                if cached is None or cached[0] != stamp:
                    cached = (stamp, Catalog.from_store(self.store))
                    self._catalog = cached
        return cached[1]

    def refresh_keyword(self) -> None:
        """Pick up changes in the store (after indexing): the keyword index and the filter
        catalog (re-read on next use)."""
        with self._lock:
            self._catalog = None
            if self._keyword is not None:
                self._keyword.catch_up(self.store)  # what the indexer wrote, or a sync

    def warm_up(self) -> None:
        self.embedder.warm_up()
        self.store.count()
        _ = self.catalog
        if self.config.mode != "dense":
            len(self.keyword)  # opened, in step and its postings in memory

    # --- retrieval -----------------------------------------------------------------------

    def allowed(self, filters: Filters) -> Allowed | None:
        """The articles and chunks the filters let through (None when nothing is filtered):
        a lookup in the catalog, no store access."""
        return filters.select(self.catalog) if filters.active else None

    def allowed_articles(self, filters: Filters) -> set[str] | None:
        """Ids of the articles the filters let through (None when nothing is filtered)."""
        allowed = self.allowed(filters)
        return None if allowed is None else set(allowed.article_ids)

    def dense_search(self, query_embedding: Any, depth: int, filters: Filters, *,
                     widen: int = DEFAULT_FILTER_WIDEN,
                     min_chunks: int = DEFAULT_WIDE_MIN_CHUNKS) -> DenseHits:
        """The `depth` nearest chunks under `filters`, best first, and the path that found
        them (see `_dense`)."""
        return self._dense(query_embedding, depth, self.allowed(filters), widen, min_chunks)

    def _dense(self, query_embedding: Any, depth: int, allowed: Allowed | None, widen: int,
               min_chunks: int) -> DenseHits:
        """Filtered, in a store of at least `min_chunks`: the `depth * widen` nearest without
        a filter, kept when allowed. When the allowed share makes that unlikely to keep
        `depth`, fewer survive, or `widen` is 0: Chroma's search restricted to the allowed
        chunk ids (exact restriction, no metadata scan)."""
        if allowed is None:
            return DenseHits(self.store.query(query_embedding, depth), "unfiltered")
        total = allowed.total_chunks
        wide = depth * widen
        if wide and total >= min_chunks and len(allowed.chunk_ids) * wide >= depth * total:
            hits = self.store.query(query_embedding, wide)
            kept = [hit for hit in hits if hit.article.id in allowed.article_ids]
            if len(kept) >= depth:
                return DenseHits(kept[:depth], "wide")
        return DenseHits(self.store.query(query_embedding, depth, ids=allowed.chunk_ids), "exact")

    def retrieve(self, query: str, *, k: int | None = None, filters: Filters | None = None,
                 config: RetrievalConfig | None = None,
                 query_embedding: Any = None) -> list[Passage]:
        """The k best passages for `query` under `filters`, best first."""
        config = config or self.config
        filters = filters or Filters()
        allowed = self.allowed(filters)
        if allowed is not None and not allowed.article_ids:
            return []
        candidates: dict[str, _Candidate] = {}
        if config.mode in ("hybrid", "dense"):
            if query_embedding is None:
                query_embedding = self.embedder.embed_query(query)
            found = self._dense(query_embedding, config.depth, allowed, config.filter_widen,
                                config.wide_min_chunks)
            self._add_dense(candidates, found.hits)
        if config.mode in ("hybrid", "keyword"):
            self._add_keyword(candidates, query, config.depth,
                              None if allowed is None else set(allowed.article_ids))
        for cand in candidates.values():
            cand.fused = sum(weight / (config.rrf_k + rank + 1)
                             for weight, rank in ((config.dense_weight, cand.dense_rank),
                                                  (config.keyword_weight, cand.keyword_rank))
                             if rank is not None)
        ranked = sorted(candidates.values(), key=lambda c: (-c.fused, c.chunk.id))
        single = len(filters.article_ids) == 1 or (allowed is not None
                                                   and len(allowed.article_ids) == 1)
        chosen = _capped(ranked, k or self.settings.top_k, None if single else config.per_article)
        return [Passage(chunk=c.chunk, article=c.article, score=c.fused, dense_score=c.dense,
                        keyword_score=c.keyword) for c in chosen]

    @staticmethod
    def _add_dense(candidates: dict[str, _Candidate], hits: Sequence[ChunkHit]) -> None:
        """The store's nearest chunks, with their dense rank."""
        for rank, hit in enumerate(hits):
            candidates[hit.chunk.id] = _Candidate(hit.chunk, hit.article, dense=hit.similarity,
                                                  dense_rank=rank)

    def _add_keyword(self, candidates: dict[str, _Candidate], query: str, depth: int,
                     allowed: set[str] | None) -> None:
        """The keyword index's best chunks, with their keyword rank (fetched when new)."""
        scored = self._following_keyword().search(query, depth, allowed_article_ids=allowed)
        missing = [cid for cid, _ in scored if cid not in candidates]
        fetched = {hit.chunk.id: hit for hit in self.store.get_chunks(missing)}
        for rank, (cid, score) in enumerate(scored):
            if cid in candidates:
                candidates[cid].keyword, candidates[cid].keyword_rank = float(score), rank
            elif cid in fetched:
                hit = fetched[cid]
                candidates[cid] = _Candidate(hit.chunk, hit.article, keyword=float(score),
                                             keyword_rank=rank)

    def as_langchain(self, *, k: int | None = None, filters: Filters | None = None
                     ) -> NewsQARetriever:
        return NewsQARetriever(engine=self, k=k, filters=filters or Filters())


def passage_to_document(passage: Passage) -> Document:
    """A passage as a LangChain Document: chunk text plus chunk, article and score metadata."""
    chunk, article = passage.chunk, passage.article
    return Document(
        id=chunk.id, page_content=chunk.text,
        metadata={"chunk_id": chunk.id, "article_id": article.id, "title": article.title,
                  "source": article.source, "author": article.author,
                  "published": article.published, "url": article.url, "path": article.path,
                  "ordinal": chunk.ordinal, "start": chunk.start, "end": chunk.end,
                  "score": passage.score, "dense_score": passage.dense_score,
                  "keyword_score": passage.keyword_score})


def format_docs(documents: Sequence[Document]) -> str:
    """Numbered passages with their article titles: the usual `retriever | format_docs` step."""
    parts = []
    for number, doc in enumerate(documents, 1):
        meta = doc.metadata
        head = " - ".join(x for x in (meta.get("title"), meta.get("source"),
                                      meta.get("published")) if x)
        parts.append(f"[{number}] {head}\n{doc.page_content}")
    return "\n\n".join(parts)


class NewsQARetriever(BaseRetriever):
    """LangChain retriever over the newsqa index (hybrid dense + keyword, filters applied)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: Any
    k: int | None = None
    filters: Filters = Filters()

    def _get_relevant_documents(self, query: str, *,
                                run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        passages = self.engine.retrieve(query, k=self.k, filters=self.filters)
        return [passage_to_document(p) for p in passages]
