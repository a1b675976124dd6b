"""Fixtures for the reliability tests: a real newsqa web server on 127.0.0.1 over a tmp store."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from index.settings import Settings
from tests.reliability.harness import free_port, make_corpus, settings_for, wait_for_port


@dataclass
class Served:
    """A running app: its URL, the NewsQA behind it, its settings and the Gradio Blocks."""

    url: str
    qa: Any
    settings: Settings
    demo: Any
    log: str = ""


@contextlib.contextmanager
def serve_app(settings: Settings, embedder: Any, *, auth: str = "",
              capsys: Any = None) -> Iterator[Served]:
    """`ui.app.serve` in this process (the session's model), indexing the seeds on start."""
    from qa.api import NewsQA
    from ui.app import serve

    qa = NewsQA(settings, embedder=embedder)
    port = free_port()
    demo = serve(qa, settings, host="127.0.0.1", port=port, auth=auth,
                 prevent_thread_lock=True)
    try:
        wait_for_port(port, timeout=120)
        yield Served(f"http://127.0.0.1:{port}/", qa, settings, demo)
    finally:
        demo.close()


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Served]:
    """A server over seeds/ + the small corpus (uploads up to 1 MB), shared by the reliability
    tests; they must not change what it has indexed."""
    work = tmp_path_factory.mktemp("served")
    seeds = make_corpus(work / "articles")
    settings = settings_for(work / "data", seeds_dir=seeds, max_upload_mb=1)
    with serve_app(settings, embedder) as app:
        yield app


def articles_dir(app: Served) -> Path:
    return Path(app.settings.seeds_dir)
