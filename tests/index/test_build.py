"""Incremental indexing against a real Chroma store and the real model (tiny fixtures)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import index
from index.build import IndexReport, generation, index_lock, rebuild, stats, update
from index.embedding import Embedder
from index.errors import IndexingError, IndexLockedError, ModelMismatchError
from index.keyword import KeywordIndex
from index.manifest import Manifest
from index.records import Article, Chunk
from index.settings import Settings
from index.store import Store
from tests.conftest import SEED_ARTICLE
from tests.index.test_sources import ATOM, HTML, RSS


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def touch_later(path: Path) -> None:
    """Move mtime forward so a rewrite within the same clock tick still counts as a change."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A folder with one article per format (plus the seed), all short."""
    root = tmp_path / "news"
    shutil.copy(SEED_ARTICLE, write(root / "seed.txt", "") and root / "seed.txt")
    write(root / "strike.txt", "Port strike ends\n\nDock workers returned to work on Tuesday "
                               "after the union won a pay rise of eight percent.\n")
    write(root / "notes.md", "# Storm hits coast\n\nWinds reached 150 km/h overnight and "
                             "thousands of homes lost power.\n")
    write(root / "budget.json", json.dumps({
        "title": "Budget passes", "body": "Parliament passed the budget on Friday after a "
        "long debate about school funding.", "source": "Wire", "published": "2024-03-01",
        "url": "https://example.com/budget"}))
    write(root / "wire.jsonl", "\n".join(json.dumps(r) for r in [
        {"title": "Election called", "body": "The prime minister called an early election "
         "for June.", "source": "Wire", "published_at": "2024-02-10"},
        {"title": "Rates held", "text": "The central bank held interest rates at four "
         "percent.", "source": "Wire", "date": "2024-02-11"}]) + "\n")
    write(root / "page.html", HTML)
    write(root / "feed.rss", RSS)
    write(root / "news.atom", ATOM)
    return root


def ids_and_chunks(settings: Settings) -> tuple[set[str], list[str]]:
    store = Store(settings, model_name=settings.embedding_model)
    chunk_ids = [c.id for c in store.iter_chunks()]
    return store.article_ids(), sorted(chunk_ids)


def test_formats_are_indexed_and_searchable(corpus: Path, settings: Settings,
                                            embedder: Embedder) -> None:
    stages: set[str] = set()
    report = index.update([corpus], settings, embedder=embedder,
                          progress=lambda stage, done, total: stages.add(stage))
    assert isinstance(report, IndexReport)
    # seed, strike, notes, budget, 2 jsonl, html, rss (1 good entry), atom = 9 articles
    assert (report.indexed, report.articles, report.skipped) == (9, 9, 1), report.errors
    assert report.errors[0]["reason"] == "entry 2: no text (no content or summary)"
    assert report.ok and report.model_loaded
    assert report.chunks == report.chunks_added > 9
    assert {"scan", "read", "chunk", "embed", "keyword"} <= stages

    store = Store(settings, model_name=settings.embedding_model)
    hits = store.query(embedder.embed_query("Did Italy rule out military intervention in "
                                            "Libya?"), k=3)
    assert hits[0].article.path == str(corpus / "seed.txt")
    body = SEED_ARTICLE.read_text(encoding="utf-8")
    assert body[hits[0].chunk.start:hits[0].chunk.end] == hits[0].chunk.text

    keyword = KeywordIndex.load(settings.keyword_dir)
    assert keyword is not None and len(keyword) == report.chunks
    [(chunk_id, _)] = keyword.search("dock workers union", k=1)
    assert store.get_chunks([chunk_id])[0].article.title == "Port strike ends"

    info = stats(settings)
    assert (info["articles"], info["chunks"]) == (9, report.chunks)
    assert info["published_min"] == "2024-02-10" and info["published_max"] == "2024-03-06"
    assert "Wire" in info["sources"] and info["model"] == settings.embedding_model
    assert report.to_dict()["ok"] is True


def test_no_change_rerun_reads_nothing_and_does_not_load_the_model(
        corpus: Path, settings: Settings, embedder: Embedder) -> None:
    first = update([corpus], settings, embedder=embedder)
    stamp = generation(settings)
    fresh = Embedder()
    Store(settings, model_name=settings.embedding_model).query(
        embedder.embed_query("bridge"), k=2)  # a reader (the web app) does not count as a change

    def untouchable(*args: object, **kwargs: object) -> None:
        raise AssertionError("a no-change run must not open the store")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Store, "_collections", untouchable)
        again = update([corpus], settings, embedder=fresh)
    assert not fresh.is_loaded and not again.model_loaded
    assert (again.indexed, again.updated, again.removed, again.chunks_added) == (0, 0, 0, 0)
    assert again.unchanged == first.indexed
    assert generation(settings) == stamp  # nothing changed: servers need not reload


def test_change_delete_and_duplicate(corpus: Path, settings: Settings,
                                     embedder: Embedder) -> None:
    update([corpus], settings, embedder=embedder)
    stamp = generation(settings)
    strike = corpus / "strike.txt"
    old_id = Article(title="", body=strike.read_text().split("\n\n", 1)[1].strip()).id
    write(strike, "Port strike ends\n\nDock workers returned on Wednesday instead.\n")
    touch_later(strike)
    shutil.copy(corpus / "notes.md", corpus / "notes-copy.md")  # same text, another name
    (corpus / "page.html").unlink()

    report = update([corpus], settings, embedder=embedder)
    assert (report.updated, report.indexed, report.duplicates, report.removed) == (1, 1, 1, 1)
    assert report.articles == 8  # 9 - html; the copy is stored once
    assert generation(settings) != stamp
    article_ids, chunk_ids = ids_and_chunks(settings)
    assert old_id not in article_ids
    assert len(chunk_ids) == len(set(chunk_ids)) == report.chunks
    with Manifest(settings.manifest_path) as manifest:
        notes = manifest.refs(str(corpus / "notes.md"))[str(corpus / "notes.md")]
        assert manifest.refs(str(corpus / "notes-copy.md")) == {
            str(corpus / "notes-copy.md"): notes}

    (corpus / "notes.md").unlink()  # one of two names gone: the article stays
    report = update([corpus], settings, embedder=embedder)
    assert report.removed == 1 and report.articles_deleted == 0 and report.articles == 8
    (corpus / "notes-copy.md").unlink()  # last name gone: the article goes
    report = update([corpus], settings, embedder=embedder)
    assert report.removed == 1 and report.articles_deleted == 1 and report.articles == 7
    keyword = KeywordIndex.load(settings.keyword_dir)
    assert keyword is not None and len(keyword) == report.chunks


def test_small_update_after_a_completed_run_lists_nothing(corpus: Path, settings: Settings,
                                                          embedder: Embedder) -> None:
    """After a completed run, adding one article and deleting another touches only those:
    the store's and the manifest's full listings are never read, and the keyword index
    ends exactly as a full sync of the store would leave it."""
    update([corpus], settings, embedder=embedder)
    write(corpus / "zeppelin.txt", "Zeppelin lands\n\nA zeppelin landed at the harbour on "
                                   "Sunday, the first in forty years.\n")
    (corpus / "notes.md").unlink()

    def unlisted(*args: object, **kwargs: object) -> None:
        raise AssertionError("a small update must not list the whole index")

    with pytest.MonkeyPatch.context() as patch:
        for owner, name in ((Store, "article_ids"), (Store, "list_articles"),
                            (Store, "iter_chunks"), (Store, "sweep_orphan_chunks"),
                            (Store, "count"), (Manifest, "referenced_ids"),
                            (KeywordIndex, "sync")):
            patch.setattr(owner, name, unlisted)
        report = update([corpus], settings, embedder=embedder)
    assert (report.indexed, report.removed, report.articles_deleted) == (1, 1, 1)
    assert report.articles == 9
    store = Store(settings, model_name=settings.embedding_model)
    assert len(store.article_ids()) == 9
    assert (report.articles, report.chunks) == store.count()  # counted without a store count
    keyword = KeywordIndex.load(settings.keyword_dir)
    assert keyword is not None and len(keyword) == report.chunks
    [(chunk_id, _)] = keyword.search("zeppelin", k=1)
    assert store.get_chunks([chunk_id])[0].article.title == "Zeppelin lands"
    assert keyword.search("storm winds", k=5) == []  # the deleted article's chunks are gone
    fresh = KeywordIndex(settings.data_dir / "reference-keyword")
    fresh.sync(store)
    assert sorted(fresh.chunk_ids) == sorted(keyword.chunk_ids)
    assert fresh.articles() == keyword.articles()


def test_prune_modes(corpus: Path, tmp_path: Path, settings: Settings,
                     embedder: Embedder) -> None:
    other = write(tmp_path / "elsewhere" / "extra.txt", "Extra story\n\nA separate report.")
    update([corpus, other], settings, embedder=embedder)
    (corpus / "notes.md").unlink()
    kept = update([corpus], settings, embedder=embedder, prune=False)
    assert kept.removed == 0 and kept.articles == 10
    default = update([corpus], settings, embedder=embedder)  # prunes under corpus only
    assert default.removed == 1 and default.articles == 9
    forced = update([corpus / "strike.txt"], settings, embedder=embedder, prune=True)
    assert forced.articles == 1 and forced.removed == 8  # 7 files, one holding 2 keys


def test_bad_inputs_never_lose_what_is_indexed(corpus: Path, settings: Settings,
                                               embedder: Embedder) -> None:
    update([corpus], settings, embedder=embedder)
    strike = corpus / "strike.txt"
    strike.write_bytes(b"\xff\xfe broken")  # an indexed file turns unreadable
    touch_later(strike)
    write(corpus / "empty.txt", "")
    (corpus / "blob.txt").write_bytes(b"\x00\x01")
    write(corpus / "good.txt", "New story\n\nA council vote on Monday approved the budget.")
    report = update([corpus], settings, embedder=embedder)
    reasons = {Path(e["path"]).name: e["reason"] for e in report.errors}
    assert reasons["strike.txt"].startswith("not UTF-8 text")
    assert reasons["empty.txt"] == "empty file"
    assert reasons["blob.txt"].startswith("binary file")
    assert report.indexed == 1 and report.articles == 10 and report.ok

    with pytest.raises(IndexingError, match="strict mode"):
        update([corpus], settings, embedder=embedder, strict=True)

    only_bad = update([corpus / "empty.txt"], settings, embedder=embedder)
    assert not only_bad.ok and only_bad.skipped == 1 and only_bad.articles == 10


def test_crash_half_way_then_rerun_converges(corpus: Path, tmp_path: Path,
                                             settings: Settings, embedder: Embedder,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    clean = Settings(data_dir=tmp_path / "clean")
    update([corpus], clean, embedder=embedder)
    expected = ids_and_chunks(clean)

    real_upsert = Store.upsert_articles
    calls = {"n": 0}

    def crashing(self: Store, items: list[tuple[Article, list[Chunk], np.ndarray]],
                 quotes: object = None, *, new: bool = False) -> None:
        calls["n"] += 1
        if calls["n"] == 4:  # die after writing the chunks but before the article record
            article, chunks, embeddings = items[0]
            chunk_col, _ = self._collections(dimension=int(embeddings.shape[1]))
            chunk_col.upsert(ids=[c.id for c in chunks], embeddings=embeddings,
                             documents=[c.text for c in chunks],
                             metadatas=[{"article_id": article.id, "ordinal": c.ordinal,
                                         "start": c.start, "end": c.end} for c in chunks])
            raise RuntimeError("simulated crash")
        real_upsert(self, items, quotes, new=new)

    monkeypatch.setattr(Store, "upsert_articles", crashing)
    with pytest.raises(RuntimeError, match="simulated crash"):
        update([corpus], settings, embedder=embedder, embed_group=1)  # one article per write
    monkeypatch.setattr(Store, "upsert_articles", real_upsert)
    partial = Store(settings, model_name=settings.embedding_model)
    assert partial.count()[0] == 3 and partial.count()[1] > sum(
        n for _, n in partial.list_articles())  # three articles and some orphan chunks

    report = update([corpus], settings, embedder=embedder)
    assert report.articles == 9 and (report.unchanged, report.indexed) == (3, 6)
    assert ids_and_chunks(settings) == expected  # same ids, no duplicates, no orphans
    store = Store(settings, model_name=settings.embedding_model)
    assert store.count() == (9, len(expected[1]))
    again = update([corpus], settings, embedder=Embedder())
    assert again.chunks_added == 0 and not again.model_loaded


def test_manifest_and_store_are_reconciled(corpus: Path, settings: Settings,
                                           embedder: Embedder) -> None:
    update([corpus], settings, embedder=embedder)
    store = Store(settings, model_name=settings.embedding_model)
    victim = sorted(store.article_ids())[0]
    store.delete_article(victim)  # lost from the store behind the manifest's back
    report = update([corpus], settings, embedder=embedder)
    assert victim in store.article_ids() and report.articles == 9

    settings.manifest_path.unlink()  # manifest lost: nothing re-embedded, nothing deleted
    report = update([corpus], settings, embedder=Embedder())
    assert report.chunks_added == 0 and report.articles == 9 and report.articles_deleted == 0


def test_second_indexer_fails_at_once_with_a_clear_error(corpus: Path,
                                                         settings: Settings) -> None:
    with index_lock(settings):
        started = time.monotonic()
        with pytest.raises(IndexLockedError, match=f"pid {os.getpid()}"):
            update([corpus], settings, embedder=Embedder())
        with pytest.raises(IndexLockedError, match=r"waited 0\.2 s"):
            update([corpus], settings, embedder=Embedder(), lock_timeout=0.2)
        assert time.monotonic() - started < 30
    assert not settings.lock_path.with_name("index.lock.owner").exists()


def test_model_mismatch_and_rebuild(corpus: Path, settings: Settings,
                                    embedder: Embedder) -> None:
    other = Store(settings, model_name="some-other-model")
    article = Article(title="Old", body="Built with another model.")
    chunk = Chunk(article_id=article.id, ordinal=0, start=0, end=len(article.body),
                  text=article.body)
    other.upsert_article(article, [chunk], np.ones((1, 384), dtype=np.float32) / np.sqrt(384))
    with pytest.raises(ModelMismatchError, match="some-other-model"):
        update([corpus], settings, embedder=embedder)
    report = rebuild([corpus], settings, embedder=embedder)
    assert report.articles == 9 and article.id not in Store(
        settings, model_name=settings.embedding_model).article_ids()


def test_same_url_twice_in_a_file_keeps_the_first(tmp_path: Path, settings: Settings,
                                                  embedder: Embedder) -> None:
    path = write(tmp_path / "dup.jsonl", "\n".join(json.dumps(r) for r in [
        {"title": "One", "body": "First version of the story.", "url": "https://x.org/a"},
        {"title": "Two", "body": "Second, different story.", "url": "https://x.org/a"},
    ]) + "\n")
    report = update([path], settings, embedder=embedder)
    assert (report.indexed, report.articles, report.chunks_added) == (1, 1, 1)
    assert report.errors[0]["path"] == "https://x.org/a"
    assert "same URL" in report.errors[0]["reason"]
