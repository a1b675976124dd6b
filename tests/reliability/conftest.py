"""Fixtures for the reliability tests: a real newsqa web server on 127.0.0.1 over a tmp store."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from index.settings import Settings
from tests.conftest import TEST_OUTPUT
from tests.reliability.figures import FIGURES_FILE, FiguresReport
from tests.reliability.harness import free_port, make_corpus, settings_for, wait_for_port

#: figures(mapping, title=None): record a test's figures in test-output/reliability.md.
Figures = Callable[..., None]

_REPORT = pytest.StashKey[FiguresReport]()


def pytest_configure(config: pytest.Config) -> None:
    command = " ".join(["pytest", *sys.argv[1:]]) if sys.argv[1:] else "pytest"
    config.stash[_REPORT] = FiguresReport(TEST_OUTPUT / FIGURES_FILE, command)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[pytest.TestReport]:
    """Times every phase of the reliability tests (this conftest's folder only)."""
    report = yield
    item.config.stash[_REPORT].timed(report.nodeid, report.duration, report.outcome,
                                     report.when)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    session.config.stash[_REPORT].finish()


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Figures:
    """Record this test's figures (a mapping) under its name, or under `title`."""
    report = request.config.stash[_REPORT]

    def record(values: Mapping[str, object], title: str | None = None) -> None:
        report.add(title or request.node.name, values)

    return record


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
