"""One real newsqa web app for the UI tests: real model, real Chroma, seeds in a temp folder.

The app is started once per session through `ui.app.serve` (first start indexes the seed
folder), on 127.0.0.1 and a free port. The seed folder is a copy of seeds/ plus one hostile
article whose text and title carry markup that must never run.
"""

from __future__ import annotations

import json
import shutil
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from index.settings import Settings
from tests.conftest import SEED_ARTICLE, TEST_OUTPUT

EVIL_SCRIPT = "<script>window.__pwned=1</script>"
EVIL_IMG = '<img src=x onerror="window.__pwned=2">'
EVIL_ARTICLE = {
    "title": "Zorblax harbour council <b>vote</b> " + EVIL_SCRIPT,
    "source": "Evil Gazette",
    "published": "2021-03-04",
    "url": "javascript:window.__pwned=3",
    "body": ("The Zorblax harbour council voted to rebuild the lighthouse, said councillor "
             f"Mirela Okonjo. {EVIL_SCRIPT} The lighthouse will cost nine million crowns "
             f"{EVIL_IMG} and open next spring, Okonjo said."),
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveApp:
    url: str
    qa: Any
    settings: Settings
    demo: Any
    started: float
    ready: float


@pytest.fixture(scope="session")
def ui_seeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ui-seeds")
    shutil.copy(SEED_ARTICLE, folder / SEED_ARTICLE.name)
    (folder / "zorblax.json").write_text(json.dumps(EVIL_ARTICLE), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def live_app(tmp_path_factory: pytest.TempPathFactory, embedder: Any,
             ui_seeds: Path) -> Iterator[LiveApp]:
    """The real app over a fresh store; the first start indexes `ui_seeds`."""
    from qa.api import NewsQA
    from ui.app import serve

    settings = Settings(data_dir=tmp_path_factory.mktemp("ui-data"), seeds_dir=ui_seeds,
                        max_upload_mb=1)
    qa = NewsQA(settings, embedder=embedder)
    started = time.perf_counter()
    port = free_port()
    demo = serve(qa, settings, host="127.0.0.1", port=port, auth="", prevent_thread_lock=True)
    app = LiveApp(url=f"http://127.0.0.1:{port}/", qa=qa, settings=settings, demo=demo,
                  started=started, ready=time.perf_counter())
    try:
        yield app
    finally:
        demo.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh context and page in the session's one Chromium (tests/conftest.py `browser`)."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    # A bound on waiting, not a speed check: on 2 shared cores the first answer can take long.
    context.set_default_timeout(90_000)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    TEST_OUTPUT.mkdir(parents=True, exist_ok=True)
    return TEST_OUTPUT
