"""Indexing into a Chroma server (`chroma run`) instead of the embedded store."""

from __future__ import annotations

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
