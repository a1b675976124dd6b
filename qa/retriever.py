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
from index.records import Chunk
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
#: Where the dense search runs: "memory" = an exact search over the catalog's copy of the
#: embeddings (index.catalog; a filter is a row mask), "store" = Chroma's HNSW (restricted to
#: the allowed chunk ids when filtered). Memory won at every size measured (docs/benchmarks.md)
#: and is the exact restricted search by construction.
VectorSearch = Literal["memory", "store"]
DEFAULT_VECTOR_SEARCH: VectorSearch = "memory"


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
    vector_search: VectorSearch = DEFAULT_VECTOR_SEARCH

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise QAError(f"retrieval mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.vector_search not in ("memory", "store"):
            raise QAError(f"vector_search must be 'memory' or 'store', got "
                          f"{self.vector_search!r}")
        if self.rrf_k < 0 or self.depth < 1 or self.per_article < 1:
            raise QAError("rrf_k must be >= 0, depth and per_article >= 1")


@dataclass(frozen=True)
class DenseHits:
    """A dense search's (chunk id, cosine similarity) pairs, best first, the chunks it already
    read (the store's search returns them), and where it ran ("memory" or "store")."""

    scored: list[tuple[str, float]]
    hits: dict[str, ChunkHit]
    path: VectorSearch


@dataclass
class _Candidate:
    chunk_id: str
    dense: float | None = None
    dense_rank: int | None = None
    keyword: float | None = None
    keyword_rank: int | None = None
    fused: float = 0.0

    @property
    def article_id(self) -> str:
        return Chunk.article_id_of(self.chunk_id)


def _capped(ranked: Sequence[_Candidate], k: int, cap: int | None) -> list[_Candidate]:
    """The first k candidates, at most `cap` per article (no cap when None)."""
    chosen: list[_Candidate] = []
    per_article: dict[str, int] = {}
    for cand in ranked:
        count = per_article.get(cand.article_id, 0)
        if cap is not None and count >= cap:
            continue
        per_article[cand.article_id] = count + 1
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
        self._catalog: tuple[str | None, Catalog] | None = None  # (store fingerprint, catalog)
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
        """What filters and the dense search need (index.catalog), brought in step with the
        store after each write to it (its fingerprint, a file read or one request to a
        server, is checked per use; only new chunks' embeddings are read)."""
        stamp = self.store.fingerprint()
        cached = self._catalog
        if cached is None or cached[0] != stamp:
            with self._lock:
                cached = self._catalog
                if cached is None or cached[0] != stamp:
                    previous = cached[1] if cached is not None else None
                    cached = (stamp, Catalog.refreshed(self.store, previous))
                    self._catalog = cached
        return cached[1]

    def refresh_keyword(self) -> None:
        """Pick up changes in the store (after indexing): the keyword index and the catalog
        (brought in step on next use)."""
        with self._lock:
            if self._catalog is not None:
                self._catalog = (None, self._catalog[1])  # stale, its embeddings reusable
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
                     vector_search: VectorSearch = DEFAULT_VECTOR_SEARCH) -> DenseHits:
        """The `depth` nearest chunks under `filters`, best first (see `_dense`)."""
        return self._dense(query_embedding, depth, self.allowed(filters), vector_search)

    def _dense(self, query_embedding: Any, depth: int, allowed: Allowed | None,
               vector_search: VectorSearch) -> DenseHits:
        """In memory: the exact search over the catalog's embeddings, restricted to the
        allowed rows. In the store: Chroma's HNSW, restricted to the allowed chunk ids."""
        if vector_search == "memory":
            scored = self.catalog.nearest(query_embedding, depth,
                                          None if allowed is None else allowed.rows)
            return DenseHits(scored, {}, "memory")
        hits = self.store.query(query_embedding, depth,
                                ids=None if allowed is None else allowed.chunk_ids)
        return DenseHits([(hit.chunk.id, hit.similarity) for hit in hits],
                         {hit.chunk.id: hit for hit in hits}, "store")

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
        known: dict[str, ChunkHit] = {}
        if config.mode in ("hybrid", "dense"):
            if query_embedding is None:
                query_embedding = self.embedder.embed_query(query)
            found = self._dense(query_embedding, config.depth, allowed, config.vector_search)
            known.update(found.hits)
            for rank, (cid, similarity) in enumerate(found.scored):
                candidates[cid] = _Candidate(cid, dense=similarity, dense_rank=rank)
        if config.mode in ("hybrid", "keyword"):
            scored = self._following_keyword().search(
                query, config.depth,
                allowed_article_ids=None if allowed is None else set(allowed.article_ids))
            for rank, (cid, score) in enumerate(scored):
                cand = candidates.setdefault(cid, _Candidate(cid))
                cand.keyword, cand.keyword_rank = float(score), rank
        for cand in candidates.values():
            cand.fused = sum(weight / (config.rrf_k + rank + 1)
                             for weight, rank in ((config.dense_weight, cand.dense_rank),
                                                  (config.keyword_weight, cand.keyword_rank))
                             if rank is not None)
        ranked = sorted(candidates.values(), key=lambda c: (-c.fused, c.chunk_id))
        single = len(filters.article_ids) == 1 or (allowed is not None
                                                   and len(allowed.article_ids) == 1)
        return self._passages(ranked, k or self.settings.top_k,
                              None if single else config.per_article, known)

    def _passages(self, ranked: list[_Candidate], k: int, cap: int | None,
                  known: dict[str, ChunkHit]) -> list[Passage]:
        """The first k of `ranked` (at most `cap` per article) as passages, from the catalog;
        a chunk it does not hold yet (the keyword index can be a write ahead) is read from
        the store if its article is visible, and one removed meanwhile gives way to the next."""
        catalog = self.catalog
        while True:
            chosen = _capped(ranked, k, cap)
            for cand in chosen:
                if cand.chunk_id not in known and (hit := catalog.hit(cand.chunk_id)):
                    known[cand.chunk_id] = hit
            missing = [c.chunk_id for c in chosen if c.chunk_id not in known]
            if missing:
                known.update((hit.chunk.id, hit) for hit in self.store.get_chunks(
                    missing, visible=catalog.visible_ids))
            gone = {c.chunk_id for c in chosen if c.chunk_id not in known}
            if not gone:
                break
            ranked = [c for c in ranked if c.chunk_id not in gone]
        return [Passage(chunk=known[c.chunk_id].chunk, article=known[c.chunk_id].article,
                        score=c.fused, dense_score=c.dense, keyword_score=c.keyword)
                for c in chosen]

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
