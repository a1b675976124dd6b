"""Filtered retrieval through the in-memory catalog equals Chroma's exact restricted search.

The store is real Chroma; its embeddings are seeded random vectors (an exact control of the
input, so that 2,000 chunks build in seconds without the model). A filter keeping under 5 %
of the chunks must give the same top-k lists on the fast path (wide search, filtered in
Python) and on the exact restricted search (Chroma `where`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest

from index.catalog import Catalog
from index.records import Article, Chunk
from index.settings import Settings
from index.store import Store
from qa.retriever import Filters, RetrievalConfig, Retriever

ARTICLES = 200
CHUNKS_PER_ARTICLE = 10
DIMENSION = 32
SOURCES = ("Reuters", "AP", "BBC", "Xinhua")
WORDS = ("ceasefire", "election", "budget", "harbour", "vaccine", "drought", "strike", "court")
FIRST_DAY = date(2020, 1, 1)


@dataclass(frozen=True)
class Fixture:
    store: Store
    settings: Settings
    queries: np.ndarray


class NoEmbedder:
    """The tests pass query embeddings themselves; no model is needed."""

    name = "fixture-random-vectors"

    def warm_up(self) -> None:
        pass


def make_article(number: int) -> tuple[Article, list[Chunk]]:
    """Article `number`: its day is FIRST_DAY + number, ten sentence chunks."""
    sentences = [f"Sentence {i} of report {number} on the {WORDS[(number + i) % len(WORDS)]}. "
                 for i in range(CHUNKS_PER_ARTICLE)]
    body = "".join(sentences)
    published = "" if number % 50 == 49 else (FIRST_DAY + timedelta(days=number)).isoformat()
    article = Article(title=f"Report {number}", body=body, source=SOURCES[number % 4],
                      published=published)
    chunks, start = [], 0
    for ordinal, sentence in enumerate(sentences):
        chunks.append(Chunk(article_id=article.id, ordinal=ordinal, start=start,
                            end=start + len(sentence), text=sentence))
        start += len(sentence)
    return article, chunks


@pytest.fixture(scope="module")
def fixture(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    settings = Settings(data_dir=Path(tmp_path_factory.mktemp("filters")))
    store = Store(settings, model_name=NoEmbedder.name)
    rng = np.random.default_rng(15)
    items = []
    for number in range(ARTICLES):
        article, chunks = make_article(number)
        vectors = rng.normal(size=(len(chunks), DIMENSION)).astype(np.float32)
        items.append((article, chunks, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)))
    store.upsert_articles(items)
    store.set_search_ef(1500)  # near-exact HNSW: both paths then find the true neighbours
    store.reopen()
    near_allowed = np.stack([items[n][2][3] for n in (0, 2, 49, 99)]) * 0.9
    queries = np.concatenate([rng.normal(size=(12, DIMENSION)), near_allowed]).astype(np.float32)
    return Fixture(store=store, settings=settings, queries=queries)


def retriever(fixture: Fixture, **config: object) -> Retriever:
    return Retriever(fixture.settings, embedder=NoEmbedder(), store=fixture.store,
                     config=RetrievalConfig(**config))  # type: ignore[arg-type]


#: Under 5 % of the 2,000 chunks each (asserted below).
NARROW_FILTERS = [Filters.make(until="2020-01-04"),  # 4 dated + 4 undated articles
                  Filters.make(sources=["AP"], since="2020-05-01", until="2020-06-08"),
                  Filters.make(since="2020-07-10")]


def test_narrow_filters_keep_under_five_percent(fixture: Fixture) -> None:
    catalog = Catalog.from_store(fixture.store)
    assert catalog.chunk_count == ARTICLES * CHUNKS_PER_ARTICLE
    for filters in NARROW_FILTERS:
        kept = len(filters.select(catalog).chunk_ids)
        assert 0 < kept < 0.05 * catalog.chunk_count, (filters, kept)


@pytest.mark.parametrize("filters", [*NARROW_FILTERS, Filters.make(sources=["BBC", "AP"]),
                                     Filters.make(since="2020-02-01"),
                                     Filters.make(until="2020-04-30"),
                                     Filters.make(article_ids=["nope"])])
def test_catalog_lets_through_what_chroma_where_does(fixture: Fixture, filters: Filters) -> None:
    engine = retriever(fixture)
    exact = {meta.id for meta, _ in fixture.store.list_articles(where=filters.where())}
    assert engine.allowed_articles(filters) == exact


@pytest.mark.parametrize("widen", [0, 4, 64])
@pytest.mark.parametrize("filters", NARROW_FILTERS)
def test_fast_dense_search_equals_exact_restricted_search(fixture: Fixture, filters: Filters,
                                                          widen: int) -> None:
    """widen 0: restricted by chunk ids; 4: too few would survive, so the same; 64: the
    wide search filtered in Python. Each equals Chroma's search restricted by `where`."""
    engine = retriever(fixture)
    paths = set()
    for query in fixture.queries:
        exact = [hit.chunk.id for hit in fixture.store.query(query, 5, filters.where())]
        found = engine.dense_search(query, 5, filters, widen=widen, min_chunks=0)
        assert [hit.chunk.id for hit in found.hits] == exact
        assert len(exact) == 5
        paths.add(found.path)
    assert ("wide" in paths) == (widen == 64)


@pytest.mark.parametrize("filters", NARROW_FILTERS)
def test_fused_results_equal_exact_restricted_search(fixture: Fixture, filters: Filters) -> None:
    exact = retriever(fixture, filter_widen=0)
    fast = Retriever(fixture.settings, embedder=NoEmbedder(), store=fixture.store,
                     keyword=exact.keyword,
                     config=RetrievalConfig(filter_widen=64, wide_min_chunks=0))
    for number, query in enumerate(fixture.queries):
        text = f"report on the {WORDS[number % len(WORDS)]}"
        got = fast.retrieve(text, k=8, filters=filters, query_embedding=query)
        want = exact.retrieve(text, k=8, filters=filters, query_embedding=query)
        assert [p.chunk.id for p in got] == [p.chunk.id for p in want]
        assert got and {p.article.id for p in got} <= exact.allowed_articles(filters)
    depth = fast.config.depth
    assert any(fast.dense_search(q, depth, filters, widen=64, min_chunks=0).path == "wide"
               for q in fixture.queries)
    assert all(exact.dense_search(q, depth, filters).path == "exact" for q in fixture.queries)


def test_small_stores_use_the_restricted_search(fixture: Fixture) -> None:
    engine = retriever(fixture, filter_widen=64)  # 2,000 chunks: below wide_min_chunks
    assert engine.retrieve("report", filters=NARROW_FILTERS[0],
                           query_embedding=fixture.queries[0])
    found = engine.dense_search(fixture.queries[0], engine.config.depth, NARROW_FILTERS[0],
                                widen=engine.config.filter_widen,
                                min_chunks=engine.config.wide_min_chunks)
    assert found.path == "exact"


def test_catalog_follows_every_write_to_the_store(tmp_path: Path) -> None:
    """Each write renews the store's write stamp: the next filter sees the change."""
    settings = Settings(data_dir=tmp_path)
    store = Store(settings, model_name=NoEmbedder.name)
    vectors = np.eye(CHUNKS_PER_ARTICLE, DIMENSION, dtype=np.float32)
    first, first_chunks = make_article(0)
    store.upsert_articles([(first, first_chunks, vectors)])
    engine = Retriever(settings, embedder=NoEmbedder(), store=store)
    filters = Filters.make(until="2020-12-31")
    assert engine.allowed_articles(filters) == {first.id}
    second, second_chunks = make_article(1)
    store.upsert_articles([(second, second_chunks, vectors)])
    assert engine.allowed_articles(filters) == {first.id, second.id}
    assert len(filters.select(engine.catalog).chunk_ids) == 2 * CHUNKS_PER_ARTICLE
    store.delete_article(first.id)
    assert engine.allowed_articles(filters) == {second.id}
