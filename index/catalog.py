"""What filters need, in memory: article ids, sources, publication days, chunk ids per article.

Built from the store once per index generation (`Catalog.from_store`), so a filter costs a few
numpy comparisons instead of a Chroma metadata scan. The rules are those of
`index.store.build_where`: sources and article ids are sets, `since` / `until` are inclusive
YYYYMMDD bounds, and a `since` bound alone leaves out undated articles (day 0).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from index.store import Store


@dataclass(frozen=True)
class Allowed:
    """The articles and chunks a filter lets through, and how many chunks there are in all."""

    article_ids: frozenset[str]
    chunk_ids: tuple[str, ...]
    total_chunks: int


@dataclass(frozen=True)
class Catalog:
    """Per visible article: id, source, publication day; and each article's chunk ids."""

    article_ids: tuple[str, ...]
    sources: np.ndarray  # source name per article (object array)
    days: np.ndarray  # YYYYMMDD int per article, 0 when undated
    chunk_ids: tuple[tuple[str, ...], ...]  # per article, sorted
    chunk_count: int  # chunks of visible articles

    @classmethod
    def build(cls, articles: Iterable[tuple[str, str, int]],
              chunks: Iterable[tuple[str, str]]) -> Catalog:
        """From (article id, source, day) rows and (chunk id, article id) rows; chunks of
        articles without a row (not visible) are left out."""
        rows = sorted(articles)
        number = {aid: i for i, (aid, _, _) in enumerate(rows)}
        per_article: list[list[str]] = [[] for _ in rows]
        for chunk_id, article_id in chunks:
            if article_id in number:
                per_article[number[article_id]].append(chunk_id)
        return cls(article_ids=tuple(aid for aid, _, _ in rows),
                   sources=np.array([src for _, src, _ in rows], dtype=object),
                   days=np.array([day for _, _, day in rows], dtype=np.int64),
                   chunk_ids=tuple(tuple(sorted(ids)) for ids in per_article),
                   chunk_count=sum(len(ids) for ids in per_article))

    @classmethod
    def from_store(cls, store: Store) -> Catalog:
        """The catalog of what `store` holds now (two reads of its collections)."""
        return cls.build(store.article_days(), store.chunk_articles())

    def mask(self, *, sources: Sequence[str] = (), low: int | None = None,
             high: int | None = None, article_ids: Sequence[str] = ()) -> np.ndarray:
        """Boolean mask over the articles: the rules of `build_where`."""
        keep = np.ones(len(self.article_ids), dtype=bool)
        if sources:
            keep &= np.isin(self.sources, list(sources))
        if article_ids:
            keep &= np.isin(np.array(self.article_ids, dtype=object), list(article_ids))
        if low is not None:
            keep &= self.days >= low
            if high is None:
                keep &= self.days > 0
        if high is not None:
            keep &= self.days <= high
        return keep

    def allowed(self, *, sources: Sequence[str] = (), low: int | None = None,
                high: int | None = None, article_ids: Sequence[str] = ()) -> Allowed:
        """The articles and chunks the filter keeps."""
        chosen = np.flatnonzero(self.mask(sources=sources, low=low, high=high,
                                          article_ids=article_ids))
        return Allowed(article_ids=frozenset(self.article_ids[i] for i in chosen),
                       chunk_ids=tuple(cid for i in chosen for cid in self.chunk_ids[i]),
                       total_chunks=self.chunk_count)
