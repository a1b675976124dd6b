"""Quotes stored with their article records: added, replaced, pruned and re-extracted with
the index run, against a real Chroma store and the real model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from index.build import generation, update
from index.embedding import Embedder
from index.manifest import Manifest
from index.quotes import EXTRACTOR_KEY, QuoteCatalog, QuoteExtractor, StoredQuotes
from index.records import Article, Chunk, Quote
from index.settings import Settings
from index.store import Store

MAYOR = ("Springfield approved new bike lanes on Tuesday. “Our streets must be safe for "
         "everyone,” Mayor Jane Alvarez said. Shop owners worried about parking.")
MAYOR_CHANGED = ("Springfield approved new bike lanes on Tuesday. “We will consult every shop "
                 "before building,” Mayor Jane Alvarez said. Shop owners worried about parking.")
PORT = ("The port strike ended on Monday. “We won a fair deal,” union leader Sam Okafor told "
        "reporters. Ships began unloading at noon.")


def write(folder: Path, name: str, body: str, published: str = "2024-03-01") -> Path:
    path = folder / name
    path.write_text(json.dumps({"title": name, "body": body, "source": "Wire",
                                "published": published}), encoding="utf-8")
    st = path.stat()  # a rewrite within one clock tick still counts as a change
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    return path


def catalog(settings: Settings) -> QuoteCatalog:
    return QuoteCatalog.from_store(Store(settings, model_name=settings.embedding_model))


def contents(settings: Settings) -> set[str]:
    return {q.content for q in catalog(settings).quotes}


def assert_verbatim(settings: Settings) -> None:
    store = Store(settings, model_name=settings.embedding_model)
    for quote in catalog(settings).quotes:
        article = store.get_article(quote.article_id)
        assert article is not None and quote.matches(article.body), quote


def test_quotes_follow_their_article_through_add_change_and_prune(
        tmp_path: Path, settings: Settings, embedder: Embedder) -> None:
    folder = tmp_path / "news"
    folder.mkdir()
    write(folder, "mayor.json", MAYOR)
    write(folder, "port.json", PORT)
    added = update([folder], settings, embedder=embedder)
    assert added.indexed == 2 and added.quotes_extracted >= 2
    assert any("Our streets must be safe" in c for c in contents(settings))
    assert any("We won a fair deal" in c for c in contents(settings))
    assert_verbatim(settings)

    write(folder, "mayor.json", MAYOR_CHANGED)
    changed = update([folder], settings, embedder=embedder)
    assert changed.updated == 1
    now = contents(settings)
    assert any("We will consult every shop" in c for c in now)
    assert not any("Our streets must be safe" in c for c in now)  # replaced with its article
    assert any("We won a fair deal" in c for c in now)  # the other article's quotes kept
    assert_verbatim(settings)

    (folder / "port.json").unlink()
    pruned = update([folder], settings, embedder=embedder)
    assert pruned.removed == 1
    assert not any("We won a fair deal" in c for c in contents(settings))
    assert {q.article_id for q in catalog(settings).quotes} == set(catalog(settings).articles)


def test_no_change_rerun_extracts_nothing_and_loads_no_model(
        tmp_path: Path, settings: Settings, embedder: Embedder) -> None:
    folder = tmp_path / "news"
    folder.mkdir()
    write(folder, "mayor.json", MAYOR)
    update([folder], settings, embedder=embedder)
    before = catalog(settings).quotes
    fresh = Embedder()
    again = update([folder], settings, embedder=fresh)
    assert not fresh.is_loaded and not again.model_loaded
    assert again.quotes_extracted == 0 and again.unchanged == 1
    assert catalog(settings).quotes == before


def fake_extractor(version: str) -> QuoteExtractor:
    """An extractor under exact control: the article's first word, attributed to "Tester"."""
    def extract(article: Article) -> tuple[Quote, ...]:
        end = article.body.index(" ")
        return (Quote(article_id=article.id, content_spans=((0, end),),
                      content=article.body[:end], speaker_name="Tester",
                      published=article.published, source=article.source),)
    return QuoteExtractor(version=version, extract=extract)


def test_a_new_extractor_version_re_extracts_stored_articles_without_re_embedding(
        tmp_path: Path, settings: Settings, embedder: Embedder) -> None:
    folder = tmp_path / "news"
    folder.mkdir()
    write(folder, "mayor.json", MAYOR)
    write(folder, "port.json", PORT)
    update([folder], settings, embedder=embedder)
    chunks_before = sorted(c.id for c in Store(settings, model_name=settings.embedding_model)
                           .iter_chunks())
    stamp = generation(settings)
    fresh = Embedder()
    redone = update([folder], settings, embedder=fresh, quotes=fake_extractor("fake-1"))
    assert not fresh.is_loaded and redone.chunks_added == 0
    assert redone.quotes_extracted == 2
    assert contents(settings) == {"Springfield", "The"}
    assert {q.speaker_name for q in catalog(settings).quotes} == {"Tester"}
    assert sorted(c.id for c in Store(settings, model_name=settings.embedding_model)
                  .iter_chunks()) == chunks_before
    assert generation(settings) != stamp  # servers reopen the store and see the new quotes
    with Manifest(settings.manifest_path) as manifest:
        assert manifest.get(EXTRACTOR_KEY) == "fake-1"
    same = update([folder], settings, embedder=fresh, quotes=fake_extractor("fake-1"))
    assert same.quotes_extracted == 0 and not fresh.is_loaded


def test_store_writes_quotes_in_the_article_record(settings: Settings) -> None:
    """Exact control: quotes written by the upsert that makes the article visible, rewritten
    by `set_quotes` without touching the body or chunks; an article stored without quotes
    is listed as not extracted."""
    store = Store(settings, model_name=settings.embedding_model)
    with_quotes = Article(title="A", body="Alpha said hello. Beta agreed.")
    without = Article(title="B", body="Nobody said anything here.")
    quote = Quote(article_id=with_quotes.id, content_spans=((12, 17),), content="hello",
                  speaker="Alpha", speaker_span=(0, 5), speaker_name="Alpha")
    vector = np.ones((1, 4), dtype=np.float32) / 2
    chunk = Chunk(with_quotes.id, 0, 0, len(with_quotes.body), with_quotes.body)
    other = Chunk(without.id, 0, 0, len(without.body), without.body)
    store.upsert_article(with_quotes, [chunk], vector, quotes=[quote])
    store.upsert_article(without, [other], vector)
    stored = QuoteCatalog.from_store(store)
    assert stored.quotes == (quote,) and stored.unextracted == {without.id}
    cache = StoredQuotes(store)
    first = cache.current()
    assert cache.current() is first  # read once per store write
    replaced = Quote(article_id=with_quotes.id, content_spans=((24, 30),), content="agreed",
                     speaker_name="Beta")
    store.set_quotes({with_quotes.id: [replaced], without.id: []})
    assert cache.current() is not first
    assert cache.current().quotes == (replaced,) and not cache.current().unextracted
    assert store.get_article(with_quotes.id) == with_quotes
    assert [c.id for c in store.article_chunks(with_quotes.id)] == [chunk.id]
    store.delete_article(with_quotes.id)
    assert QuoteCatalog.from_store(store).quotes == ()


def test_catalog_filters_follow_the_retriever_rules() -> None:
    from index.records import ArticleMeta

    def quote(article: str, published: str, source: str) -> Quote:
        return Quote(article_id=article, content_spans=((0, 1),), content="x",
                     published=published, source=source)

    rows = [(ArticleMeta(id="a1", source="Wire"), [quote("a1", "2024-03-01", "Wire")]),
            (ArticleMeta(id="a2", source="Post"), [quote("a2", "", "Post")]),
            (ArticleMeta(id="a3", source="Wire"), [quote("a3", "2024-05-01", "Wire")])]
    built = QuoteCatalog.build(rows)
    assert [q.article_id for q in built.select(low=20240101)] == ["a1", "a3"]  # undated out
    assert [q.article_id for q in built.select(high=20240401)] == ["a1", "a2"]
    assert [q.article_id for q in built.select(sources=["Post"])] == ["a2"]


@pytest.mark.parametrize("body", [MAYOR, PORT])
def test_default_extractor_spans_are_verbatim(body: str) -> None:
    from index.quotes import default_extractor

    article = Article(title="t", body=body)
    quotes = default_extractor().quotes_of(article)
    assert quotes and all(q.matches(body) for q in quotes)


def test_quotes_through_a_chroma_server(tmp_path: Path, embedder: Embedder) -> None:
    """The same record field and re-extraction against a real `chroma run` server."""
    from tests.index.test_server import running_chroma

    with running_chroma(tmp_path) as (url, _):
        settings = Settings(data_dir=tmp_path / "data", chroma_url=url, collection="quotes")
        folder = tmp_path / "news"
        folder.mkdir()
        write(folder, "mayor.json", MAYOR)
        update([folder], settings, embedder=embedder)
        assert any("Our streets must be safe" in c for c in contents(settings))
        assert_verbatim(settings)
        redone = update([folder], settings, embedder=Embedder(),
                        quotes=fake_extractor("fake-server"))
        assert redone.quotes_extracted == 1 and not redone.model_loaded
        assert contents(settings) == {"Springfield"}
