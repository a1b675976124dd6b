"""What filters, the dense search and the passages need, in memory: per article its id,
source, publication day; per chunk its id, its article, its text and metadata, and its
embedding.

Built from the store once (`Catalog.from_store`) and brought in step after each write to it
(`Catalog.refreshed`: only new chunks, or those of an article whose metadata changed, are
fetched). A filter is then a few numpy comparisons instead of a Chroma metadata
scan, and the dense search an exact (brute-force) nearest-neighbour search over the allowed
rows: by construction the exact restricted search. The rules are those of
`index.store.build_where`: sources and article ids are sets, `since` / `until` are inclusive
YYYYMMDD bounds, and a `since` bound alone leaves out undated articles (day 0).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from index.errors import StoreError
from index.store import ArticleRow, ChunkHit, Store, StoredChunk

#: Reads of the store's listing and embeddings tried while another process writes to it.
READ_ATTEMPTS = 4


@dataclass(frozen=True)
class Allowed:
    """The articles and chunk rows a filter lets through, and how many chunks there are."""

    article_ids: frozenset[str]
    rows: np.ndarray  # bool per catalog chunk row
    row_ids: tuple[str, ...]  # the catalog's chunk ids, one per row
    total_chunks: int

    @cached_property
    def chunk_ids(self) -> tuple[str, ...]:
        """The allowed chunks' ids (for a search restricted inside the store)."""
        return tuple(self.row_ids[i] for i in np.flatnonzero(self.rows))


@dataclass(frozen=True)
class Catalog:
    """Visible articles (id, source, day, metadata stamp) and their chunks' rows."""

    articles: tuple[ArticleRow, ...]  # sorted by id
    sources: np.ndarray  # source name per article (object array)
    days: np.ndarray  # YYYYMMDD int per article, 0 when undated
    row_ids: tuple[str, ...]  # chunk id per row
    row_article: np.ndarray  # article index per row
    vectors: np.ndarray  # (rows, dimension) float32 unit embeddings
    hits: tuple[ChunkHit, ...]  # per row: the chunk and its article's metadata

    @cached_property
    def article_ids(self) -> tuple[str, ...]:
        return tuple(row.id for row in self.articles)

    @cached_property
    def _row_of(self) -> dict[str, int]:
        return {cid: row for row, cid in enumerate(self.row_ids)}

    def hit(self, chunk_id: str) -> ChunkHit | None:
        """The chunk with that id and its article, when this catalog holds it."""
        row = self._row_of.get(chunk_id)
        return None if row is None else self.hits[row]

    @cached_property
    def visible_ids(self) -> frozenset[str]:
        """The visible articles' ids, as a set (what `Store.get_chunks` checks against)."""
        return frozenset(self.article_ids)

    @cached_property
    def _id_array(self) -> np.ndarray:
        return np.array(self.article_ids, dtype=object)

    @property
    def chunk_count(self) -> int:
        """Chunks of visible articles."""
        return len(self.row_ids)

    @classmethod
    def build(cls, articles: Iterable[ArticleRow],
              chunks: Iterable[tuple[str, str, StoredChunk]]) -> Catalog:
        """From article rows and (chunk id, article id, stored chunk) rows; chunks of
        articles without a row (not visible) are left out."""
        rows = sorted(articles, key=lambda row: row.id)
        number = {row.id: i for i, row in enumerate(rows)}
        kept = [(cid, number[aid], stored) for cid, aid, stored in chunks if aid in number]
        return cls(articles=tuple(rows),
                   sources=np.array([row.source for row in rows], dtype=object),
                   days=np.array([row.day for row in rows], dtype=np.int64),
                   row_ids=tuple(cid for cid, _, _ in kept),
                   row_article=np.array([article for _, article, _ in kept], dtype=np.int64),
                   vectors=np.asarray(np.stack([stored.vector for _, _, stored in kept]),
                                      dtype=np.float32)
                   if kept else np.zeros((0, 0), dtype=np.float32),
                   hits=tuple(stored.hit for _, _, stored in kept))

    @classmethod
    def from_store(cls, store: Store) -> Catalog:
        """The catalog of what `store` holds now (every chunk's embedding read once)."""
        return cls.refreshed(store, None)

    @classmethod
    def refreshed(cls, store: Store, previous: Catalog | None) -> Catalog:
        """What `store` holds now, reusing `previous`'s embeddings of chunks still stored
        under unchanged article metadata (a title change re-embeds an article's chunks).
        A chunk removed while this reads is left out: its write moved the store's stamp, so
        the next use reads again. A read that fails because another process is writing
        (Chroma then reports ids it cannot find) is repeated from the listing on, a few
        times, before its StoreError is raised."""
        for attempt in range(READ_ATTEMPTS):
            try:
                return cls._read(store, previous)
            except StoreError:
                if attempt == READ_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    @classmethod
    def _read(cls, store: Store, previous: Catalog | None) -> Catalog:
        articles = store.article_rows()
        visible = {row.id for row in articles}
        chunks = [(cid, aid) for cid, aid in store.chunk_articles() if aid in visible]
        known = previous.reusable_chunks(articles) if previous is not None else {}
        fetched = store.chunk_records([cid for cid, _ in chunks if cid not in known])
        stored = {**known, **fetched}
        return cls.build(articles, ((cid, aid, stored[cid]) for cid, aid in chunks
                                    if cid in stored))

    def reusable_chunks(self, articles: Sequence[ArticleRow]) -> dict[str, StoredChunk]:
        """The chunks of this catalog (hit and embedding) whose article's row is unchanged."""
        unchanged = set(self.articles) & set(articles)
        same = np.array([row in unchanged for row in self.articles], dtype=bool)
        if not len(self.row_ids):
            return {}
        return {self.row_ids[i]: StoredChunk(self.hits[i], self.vectors[i])
                for i in np.flatnonzero(same[self.row_article])}

    def mask(self, *, sources: Sequence[str] = (), low: int | None = None,
             high: int | None = None, article_ids: Sequence[str] = ()) -> np.ndarray:
        """Boolean mask over the articles: the rules of `build_where`."""
        keep = np.ones(len(self.articles), dtype=bool)
        if sources:
            keep &= np.isin(self.sources, list(sources))
        if article_ids:
            keep &= np.isin(self._id_array, list(article_ids))
        if low is not None:
            keep &= self.days >= low
            if high is None:
                keep &= self.days > 0
        if high is not None:
            keep &= self.days <= high
        return keep

    def allowed(self, *, sources: Sequence[str] = (), low: int | None = None,
                high: int | None = None, article_ids: Sequence[str] = ()) -> Allowed:
        """The articles and chunk rows the filter keeps."""
        keep = self.mask(sources=sources, low=low, high=high, article_ids=article_ids)
        return Allowed(article_ids=frozenset(self._id_array[keep]),
                       rows=keep[self.row_article] if len(self.row_ids)
                       else np.zeros(0, dtype=bool),
                       row_ids=self.row_ids, total_chunks=self.chunk_count)

    def nearest(self, embedding: np.ndarray, k: int,
                rows: np.ndarray | None = None) -> list[tuple[str, float]]:
        """The k chunks (id, cosine similarity) nearest to `embedding` among the `rows`
        allowed (all when None), best first: an exact search. `einsum` rather than a BLAS
        matrix-vector product: it runs on this thread, so no BLAS worker threads are left
        spinning against the next query's embedding on a small machine."""
        if k < 1 or not len(self.row_ids):
            return []
        query = np.asarray(embedding, dtype=np.float32)
        scores = np.einsum("ij,j->i", self.vectors, query / (np.linalg.norm(query) or 1.0))
        candidates = np.flatnonzero(rows) if rows is not None else None
        if candidates is not None:
            scores = scores[candidates]
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.lexsort((top, -scores[top]))]
        chosen = candidates[top] if candidates is not None else top
        return [(self.row_ids[i], float(scores[j])) for i, j in zip(chosen, top, strict=True)]
