"""The store's write path: Chroma's vector index saved often enough that a small write stays
cheap on a large index, a store not created yet opened on a thread, and chunk reads checked
against a visible set the caller already holds."""

from __future__ import annotations

from pathlib import Path

import chromadb
import chromadb.errors
import numpy as np
import pytest
from chromadb.api.models.Collection import Collection

from index.build import update
from index.embedding import Embedder
from index.errors import StoreError
from index.records import Article, Chunk
from index.settings import Settings
from index.store import HNSW_SYNC_THRESHOLD, SCHEMA_VERSION, Store


def _article(title: str, body: str) -> tuple[Article, list[Chunk]]:
    article = Article(title=title, body=body, source="Wire", published="2024-05-02")
    return article, [Chunk(article_id=article.id, ordinal=0, start=0, end=len(body),
                           text=body)]


def _unit_vectors(rows: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(rows, 384)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _sync_thresholds(path: Path) -> dict[str, int]:
    client = chromadb.PersistentClient(path=str(path),
                                       settings=chromadb.Settings(anonymized_telemetry=False))
    return {c.name: c.configuration["hnsw"]["sync_threshold"]
            for c in client.list_collections()}


def test_new_collections_save_their_vector_index_every_hundred_records(
        settings: Settings) -> None:
    store = Store(settings, model_name=settings.embedding_model)
    article, chunks = _article("Port reopens", "The port reopened on Thursday.")
    store.upsert_article(article, chunks, _unit_vectors(1, 0))
    assert HNSW_SYNC_THRESHOLD == 100
    assert _sync_thresholds(settings.chroma_path) == {
        settings.collection: 100, f"{settings.collection}-articles": 100}


def test_an_older_store_is_brought_to_the_threshold_at_its_first_write(
        settings: Settings) -> None:
    """Collections created with Chroma's default (1000 records between saves) keep their
    data and get the lower threshold when newsqa next writes to them."""
    client = chromadb.PersistentClient(path=str(settings.chroma_path),
                                       settings=chromadb.Settings(anonymized_telemetry=False))
    metadata = {"embedding_model": settings.embedding_model, "dimension": 384,
                "newsqa_schema": SCHEMA_VERSION}
    for name in (settings.collection, f"{settings.collection}-articles"):
        client.get_or_create_collection(name, embedding_function=None, metadata=metadata,
                                        configuration={"hnsw": {"space": "cosine"}})
    assert set(_sync_thresholds(settings.chroma_path).values()) == {1000}
    store = Store(settings, model_name=settings.embedding_model)
    first, first_chunks = _article("Budget passes", "Parliament passed the budget.")
    store.upsert_article(first, first_chunks, _unit_vectors(1, 1))
    assert set(_sync_thresholds(settings.chroma_path).values()) == {HNSW_SYNC_THRESHOLD}
    second, second_chunks = _article("Rates held", "The bank held its rates.")
    Store(settings, model_name=settings.embedding_model).upsert_article(
        second, second_chunks, _unit_vectors(1, 2))
    assert store.article_ids() == {first.id, second.id}


def test_get_chunks_keeps_to_the_visible_set_it_is_given(settings: Settings) -> None:
    store = Store(settings, model_name=settings.embedding_model)
    shown, shown_chunks = _article("Storm hits coast", "Winds reached the coast overnight.")
    hidden, hidden_chunks = _article("Strike ends", "Dock workers returned to work.")
    store.upsert_articles([(shown, shown_chunks, _unit_vectors(1, 3)),
                           (hidden, hidden_chunks, _unit_vectors(1, 4))])
    ids = [shown_chunks[0].id, hidden_chunks[0].id]
    assert [hit.chunk.id for hit in store.get_chunks(ids)] == ids
    kept = store.get_chunks(ids, visible={shown.id})
    assert [hit.chunk.id for hit in kept] == [shown_chunks[0].id]
    assert kept[0].chunk.text == "Winds reached the coast overnight."
    assert kept[0].article.title == "Storm hits coast"


def test_a_store_not_created_yet_is_known_empty_and_a_build_still_fills_it(
        tmp_path: Path, settings: Settings, embedder: Embedder) -> None:
    """A first build opens the store on a thread (`Store.open_in_background`) while it reads
    and embeds; its writes then land as usual."""
    store = Store(settings, model_name=settings.embedding_model)
    assert store.known_empty()
    news = tmp_path / "news"
    news.mkdir()
    (news / "strike.txt").write_text("Port strike ends\n\nDock workers returned to work on "
                                     "Tuesday after the union won a pay rise.\n",
                                     encoding="utf-8")
    report = update([news], settings, embedder=embedder)
    assert report.indexed == 1 and report.chunks >= 1
    assert not store.known_empty()
    assert len(Store(settings, model_name=settings.embedding_model).article_ids()) == 1


def test_a_read_failing_on_a_stale_view_is_retried_once_from_the_files(
        settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """While another process writes to the same folder, an embedded reader's view goes stale
    and Chroma fails a read ("Error finding id", seen under load in a re-index-while-serving
    run): the store reopens from disk and reads again; a failure that persists is a
    StoreError naming the read. (The fault is injected: the race cannot be timed.)"""
    store = Store(settings, model_name=settings.embedding_model)
    article, chunks = _article("Ferry resumes", "The ferry resumed its crossings on Friday.")
    store.upsert_article(article, chunks, _unit_vectors(1, 5))
    real_get = Collection.get
    calls: list[int] = []

    def fails_once(self: Collection, *args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            raise chromadb.errors.InternalError("Error executing plan: Error finding id")
        return real_get(self, *args, **kwargs)

    monkeypatch.setattr(Collection, "get", fails_once)
    hits = store.get_chunks([chunks[0].id], visible={article.id})
    assert [h.chunk.text for h in hits] == ["The ferry resumed its crossings on Friday."]
    assert len(calls) == 2
    assert [h.chunk.id for h in store.chunks_of_articles([article.id])] == [chunks[0].id]
    reads = {  # every other single read of the records or chunks, each failing once
        "visible_ids": lambda: store.visible_ids({article.id}) == {article.id},
        "article_ids": lambda: store.article_ids() == {article.id},
        "article_rows": lambda: [row.id for row in store.article_rows()] == [article.id],
        "list_articles": lambda: [meta.id for meta, _ in store.list_articles()] == [article.id],
        "quote_records": lambda: [meta.id for meta, _ in store.quote_records()] == [article.id],
        "get_article": lambda: store.get_article(article.id) == article,
        "chunk_articles": lambda: store.chunk_articles() == [(chunks[0].id, article.id)],
        "article_chunks": lambda: [c.id for c in store.article_chunks(article.id)]
        == [chunks[0].id],
    }
    for name, read_ok in reads.items():
        calls.clear()
        assert read_ok(), name
        assert len(calls) >= 2, f"{name} did not meet the injected failure"

    def always_fails(self: Collection, *args: object, **kwargs: object) -> object:
        raise chromadb.errors.InternalError("Error executing plan: Error finding id")

    monkeypatch.setattr(Collection, "get", always_fails)
    with pytest.raises(StoreError, match=r"cannot read chunks at .*Error finding id"):
        store.get_chunks([chunks[0].id], visible={article.id})
