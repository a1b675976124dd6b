"""Filtered retrieval through the in-memory catalog equals Chroma's exact restricted search.

The store is real Chroma; its embeddings are seeded random vectors (an exact control of the
input, so that 2,000 chunks build in seconds without the model). A filter keeping under 5 %
of the chunks must give the same top-k lists on the in-memory path (an exact search over the
catalog's embeddings, restricted by a row mask) and on the restricted search inside Chroma
(`where`, at an `ef_search` high enough to be exact on 2,000 chunks).
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
from index.store import Store, StoredChunk
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


@pytest.mark.parametrize("vector_search", ["memory", "store"])
@pytest.mark.parametrize("filters", NARROW_FILTERS)
def test_dense_search_equals_exact_restricted_search(fixture: Fixture, filters: Filters,
                                                     vector_search: str) -> None:
    """Both paths (the catalog's exact search, Chroma restricted to the allowed chunk ids)
    equal Chroma's search restricted by `where`, similarities included."""
    engine = retriever(fixture)
    for query in fixture.queries:
        exact = fixture.store.query(query, 5, filters.where())
        found = engine.dense_search(query, 5, filters, vector_search=vector_search)
        assert [cid for cid, _ in found.scored] == [hit.chunk.id for hit in exact]
        assert [s for _, s in found.scored] == pytest.approx([h.similarity for h in exact],
                                                             abs=1e-5)
        assert len(exact) == 5 and found.path == vector_search


def test_unfiltered_memory_search_equals_the_store_search(fixture: Fixture) -> None:
    engine = retriever(fixture)
    for query in fixture.queries:
        got = engine.dense_search(query, 10, Filters())
        assert [cid for cid, _ in got.scored] == [
            hit.chunk.id for hit in fixture.store.query(query, 10)]


@pytest.mark.parametrize("filters", [*NARROW_FILTERS, Filters()])
def test_fused_results_equal_on_both_paths(fixture: Fixture, filters: Filters) -> None:
    store_path = retriever(fixture, vector_search="store")
    memory = Retriever(fixture.settings, embedder=NoEmbedder(), store=fixture.store,
                       keyword=store_path.keyword, config=RetrievalConfig())
    for number, query in enumerate(fixture.queries):
        text = f"report on the {WORDS[number % len(WORDS)]}"
        got = memory.retrieve(text, k=8, filters=filters, query_embedding=query)
        want = store_path.retrieve(text, k=8, filters=filters, query_embedding=query)
        assert [p.chunk.id for p in got] == [p.chunk.id for p in want]
        assert [p.chunk.text for p in got] == [p.chunk.text for p in want]
        assert got and (not filters.active
                        or {p.article.id for p in got} <= store_path.allowed_articles(filters))


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
    nearest = engine.dense_search(vectors[3], 2, filters).scored
    assert {cid for cid, _ in nearest} == {first_chunks[3].id, second_chunks[3].id}
    store.delete_article(first.id)
    assert engine.allowed_articles(filters) == {second.id}
    assert [cid for cid, _ in engine.dense_search(vectors[3], 1, Filters()).scored] == [
        second_chunks[3].id]


def test_catalog_reads_only_new_embeddings_and_follows_a_retitle(tmp_path: Path) -> None:
    """After a write only the new chunks' embeddings are read; an article whose metadata
    changed (a new title re-embeds the same chunk ids) has its embeddings read again."""
    settings = Settings(data_dir=tmp_path)
    store = Store(settings, model_name=NoEmbedder.name)
    vectors = np.eye(CHUNKS_PER_ARTICLE, DIMENSION, dtype=np.float32)
    first, first_chunks = make_article(0)
    store.upsert_articles([(first, first_chunks, vectors)])
    before = Catalog.from_store(store)
    second, second_chunks = make_article(1)
    store.upsert_articles([(second, second_chunks, vectors[::-1].copy())])
    read: list[int] = []
    original = store.chunk_records

    def counting(ids: list[str], batch: int = 5000) -> dict[str, StoredChunk]:
        read.append(len(ids))
        return original(ids, batch)

    store.chunk_records = counting  # type: ignore[method-assign]
    after = Catalog.refreshed(store, before)
    assert read == [CHUNKS_PER_ARTICLE] and after.chunk_count == 2 * CHUNKS_PER_ARTICLE
    retitled = Article(title="A new title", body=first.body, source=first.source,
                       published=first.published)
    store.upsert_articles([(retitled, first_chunks, vectors[::-1].copy())])
    latest = Catalog.refreshed(store, after)
    assert read[-1] == CHUNKS_PER_ARTICLE
    row = latest.row_ids.index(first_chunks[0].id)
    assert latest.vectors[row] == pytest.approx(vectors[-1])
    assert latest.hit(first_chunks[0].id).article.title == "A new title"
    assert latest.hit(second_chunks[0].id).chunk.text == second_chunks[0].text


def test_passages_come_from_the_catalog_and_follow_a_retitle(tmp_path: Path) -> None:
    """The in-memory path reads no chunk from the store per question; after a write the
    passages carry the article's new metadata."""
    settings = Settings(data_dir=tmp_path)
    store = Store(settings, model_name=NoEmbedder.name)
    vectors = np.eye(CHUNKS_PER_ARTICLE, DIMENSION, dtype=np.float32)
    first, first_chunks = make_article(0)
    store.upsert_articles([(first, first_chunks, vectors)])
    engine = Retriever(settings, embedder=NoEmbedder(), store=store,
                       config=RetrievalConfig(mode="dense"))
    engine.warm_up()
    reads: list[list[str]] = []
    original = store.get_chunks

    def counting(ids: list[str], visible: object = None) -> list:
        reads.append(list(ids))
        return original(ids, visible=visible)  # type: ignore[arg-type]

    store.get_chunks = counting  # type: ignore[method-assign]
    passages = engine.retrieve("report", k=3, query_embedding=vectors[2])
    assert passages[0].chunk.id == first_chunks[2].id
    assert passages[0].chunk.text == first_chunks[2].text and reads == []
    retitled = Article(title="A new title", body=first.body, source=first.source,
                       published=first.published)
    store.upsert_articles([(retitled, first_chunks, vectors)])
    again = engine.retrieve("report", k=3, query_embedding=vectors[2])
    assert again[0].chunk.id == first_chunks[2].id and again[0].article.title == "A new title"
