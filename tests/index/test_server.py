"""Indexing into a Chroma server (`chroma run`) instead of the embedded store."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from index.build import stats, update
from index.embedding import Embedder
from index.errors import StoreError
from index.keyword import load_or_build
from index.settings import OFFLINE_ENV, Settings
from index.store import Store
from tests.conftest import SEED_ARTICLE, require

CHROMA = Path(sys.executable).with_name("chroma")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_chroma(folder: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A real Chroma server on a free loopback port (its URL and process), stopped at exit."""
    require(CHROMA.exists(), f"the chroma executable at {CHROMA} (pip install -e '.[dev]')")
    port = free_port()
    log = (folder / "server.log").open("wb")
    server = subprocess.Popen(
        [str(CHROMA), "run", "--path", str(folder / "db"), "--host", "127.0.0.1",
         "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, **OFFLINE_ENV})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/v2/heartbeat", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("chroma server did not start: "
                                   + (folder / "server.log").read_text(errors="replace")[-2000:])
            time.sleep(0.3)
        yield url, server
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Chroma server shared by this module's tests."""
    with running_chroma(tmp_path_factory.mktemp("chroma-server")) as (url, _):
        yield url


def test_update_and_query_through_a_server(chroma_url: str, tmp_path: Path,
                                           embedder: Embedder) -> None:
    settings = Settings(data_dir=tmp_path / "data", chroma_url=chroma_url,
                        collection="servertest")
    news = tmp_path / "news"
    news.mkdir()
    (news / "seed.txt").write_text(SEED_ARTICLE.read_text(encoding="utf-8"), encoding="utf-8")
    (news / "strike.txt").write_text("Port strike ends\n\nDock workers returned to work.\n",
                                     encoding="utf-8")
    report = update([news], settings, embedder=embedder)
    assert report.ok and report.articles == 2 and not settings.chroma_path.exists()

    store = Store(settings, model_name=settings.embedding_model)
    hits = store.query(embedder.embed_query("Trenta military intervention Libya"), k=2)
    assert hits and hits[0].article.path == str(news / "seed.txt")
    assert stats(settings, store)["store"] == chroma_url
    assert len(load_or_build(settings, store)) == report.chunks

    (news / "strike.txt").unlink()
    again = update([news], settings, embedder=Embedder())
    assert again.removed == 1 and again.articles == 1 and not again.model_loaded


def news_folder(root: Path) -> Path:
    root.mkdir()
    (root / "seed.txt").write_text(SEED_ARTICLE.read_text(encoding="utf-8"), encoding="utf-8")
    (root / "strike.txt").write_text("Port strike ends\n\nDock workers returned to work.\n",
                                     encoding="utf-8")
    return root


def test_no_change_run_against_a_server_reads_one_stamp(chroma_url: str, tmp_path: Path,
                                                        embedder: Embedder) -> None:
    """The write stamp lives in the server's collection metadata: a second machine (another
    data folder, same server) sees every write, and a no-change run opens nothing else."""
    settings = Settings(data_dir=tmp_path / "data", chroma_url=chroma_url,
                        collection="stamptest")
    news = news_folder(tmp_path / "news")
    first = update([news], settings, embedder=embedder)
    stamp = Store(settings, model_name=settings.embedding_model).fingerprint()
    assert stamp and chroma_url in stamp

    def untouchable(*args: object, **kwargs: object) -> None:
        raise AssertionError("a no-change run must not list the store's articles")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Store, "article_ids", untouchable)
        again = update([news], settings, embedder=Embedder())
    assert again.unchanged == first.indexed and not again.model_loaded

    elsewhere = Store(settings.replace(data_dir=tmp_path / "machine-2"),
                      model_name=settings.embedding_model)
    victim = sorted(elsewhere.article_ids())[0]
    elsewhere.delete_article(victim)  # written from another machine
    assert Store(settings, model_name=settings.embedding_model).fingerprint() != stamp
    healed = update([news], settings, embedder=embedder)
    assert healed.articles == 2 and healed.chunks_added > 0


def test_reset_against_a_dead_server_is_an_error_not_a_success(tmp_path: Path) -> None:
    with running_chroma(tmp_path) as (url, server):
        store = Store(Settings(data_dir=tmp_path / "data", chroma_url=url,
                               collection="resettest"), model_name="m")
        assert not store.exists()  # connected
        server.terminate()
        server.wait(timeout=15)
        with pytest.raises(StoreError, match="cannot delete collection 'resettest'"):
            store.reset()


def index_elsewhere(url: str, data_dir: Path, collection: str, news: Path) -> dict[str, object]:
    """`newsqa index` in its own process on its own data folder (another machine's indexer)."""
    newsqa = Path(sys.executable).with_name("newsqa")
    done = subprocess.run(
        [str(newsqa), "--data-dir", str(data_dir), "--chroma-url", url, "--collection",
         collection, "index", str(news), "--json"], capture_output=True, text=True,
        timeout=600, env={**os.environ, **OFFLINE_ENV})
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_a_second_data_folder_follows_another_machines_indexing(
        chroma_url: str, tmp_path: Path, embedder: Embedder) -> None:
    """Process A (its data folder) indexes into the server; B's running retriever (another
    data folder, its own keyword index) finds A's new article by keyword and by meaning
    without a restart, and after A prunes it no longer does. B's keyword catch-up fetches
    chunks from the server and needs no model."""
    from qa.retriever import RetrievalConfig, Retriever

    collection = "followtest"
    news = news_folder(tmp_path / "news")
    (news / "strike.txt").unlink()
    first = index_elsewhere(chroma_url, tmp_path / "machine-a", collection, news)
    assert first["articles"] == 1

    settings_b = Settings(data_dir=tmp_path / "machine-b", chroma_url=chroma_url,
                          collection=collection)
    unloaded = Embedder()
    keyword_only = Retriever(settings_b, embedder=unloaded,
                             store=Store(settings_b, model_name=settings_b.embedding_model),
                             config=RetrievalConfig(mode="keyword"))
    dense_only = Retriever(settings_b, embedder=embedder,
                           store=Store(settings_b, model_name=settings_b.embedding_model),
                           config=RetrievalConfig(mode="dense"))
    query = "Quintavalle dockers Stremnikova harbour walkout"
    assert all(p.article.title != "Harbour walkout ends"
               for p in keyword_only.retrieve(query, k=3))
    assert (settings_b.keyword_dir / "keyword.sqlite3").is_file()

    (news / "walkout.txt").write_text(
        "Harbour walkout ends\n\nQuintavalle dockers led by Stremnikova ended the harbour "
        "walkout on Friday after a pay deal.\n", encoding="utf-8")
    added = index_elsewhere(chroma_url, tmp_path / "machine-a", collection, news)
    assert added["indexed"] == 1 and added["articles"] == 2

    found = keyword_only.retrieve(query, k=3)
    assert found and found[0].article.title == "Harbour walkout ends"
    assert found[0].keyword_score and found[0].keyword_score > 0
    assert dense_only.retrieve(query, k=1)[0].article.title == "Harbour walkout ends"
    assert not unloaded.is_loaded  # the keyword catch-up read the server, no model

    (news / "walkout.txt").unlink()
    pruned = index_elsewhere(chroma_url, tmp_path / "machine-a", collection, news)
    assert pruned["removed"] == 1 and pruned["articles"] == 1
    assert all(p.article.title != "Harbour walkout ends"
               for p in keyword_only.retrieve(query, k=3))
    assert all(p.article.title != "Harbour walkout ends"
               for p in dense_only.retrieve(query, k=3))
    assert not unloaded.is_loaded


def test_a_second_data_folder_catches_up_a_retitled_article(
        chroma_url: str, tmp_path: Path) -> None:
    """A's article is pruned and then indexed again from another file with the same body
    (same article id, same chunk ids and count) but another title, source and date, both
    while B does not look: B's next keyword search finds the new title's words, and B's
    filters see the new source and date."""
    from qa.retriever import Filters, RetrievalConfig, Retriever

    collection = "retitletest"
    news = tmp_path / "news"
    news.mkdir()
    body = ("Quintavalle dockers led by Stremnikova ended the harbour walkout on Friday "
            "after a pay deal.")
    (news / "walkout.json").write_text(json.dumps({
        "title": "Harbour walkout ends", "body": body, "source": "Old Wire",
        "published": "2024-03-01"}), encoding="utf-8")
    assert index_elsewhere(chroma_url, tmp_path / "machine-a", collection, news)["articles"] == 1
    settings_b = Settings(data_dir=tmp_path / "machine-b", chroma_url=chroma_url,
                          collection=collection)
    unloaded = Embedder()
    reader = Retriever(settings_b, embedder=unloaded,
                       store=Store(settings_b, model_name=settings_b.embedding_model),
                       config=RetrievalConfig(mode="keyword"))
    assert reader.retrieve("Quintavalle walkout", k=1)[0].article.source == "Old Wire"
    assert reader.retrieve("zeppelin", k=1) == []

    (news / "walkout.json").unlink()
    assert index_elsewhere(chroma_url, tmp_path / "machine-a", collection,
                           news)["articles_deleted"] == 1
    (news / "zeppelin.json").write_text(json.dumps({
        "title": "Zeppelin deal signed", "body": body, "source": "New Wire",
        "published": "2024-04-02"}), encoding="utf-8")
    assert index_elsewhere(chroma_url, tmp_path / "machine-a", collection, news)["indexed"] == 1

    [found] = reader.retrieve("zeppelin", k=1)
    assert (found.article.title, found.article.source) == ("Zeppelin deal signed", "New Wire")
    assert reader.retrieve("zeppelin", k=1, filters=Filters.make(sources="New Wire"))
    assert reader.retrieve("zeppelin", k=1, filters=Filters.make(sources="Old Wire")) == []
    assert reader.retrieve("zeppelin", k=1, filters=Filters.make(since="2024-04-01"))
    assert reader.retrieve("zeppelin", k=1, filters=Filters.make(until="2024-03-31")) == []
    assert not unloaded.is_loaded
