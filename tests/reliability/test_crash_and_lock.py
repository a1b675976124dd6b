"""kill -9 during indexing converges to a clean build; two indexers never corrupt the store."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from index import build
from tests.reliability.conftest import Figures, Served
from tests.reliability.crash import converge_problems, run_crashes
from tests.reliability.harness import (
    QUESTIONS,
    StoreSnapshot,
    ask_api,
    client,
    make_bulk_corpus,
    make_corpus,
    popen_cli,
    run_cli,
    settings_for,
    snapshot,
)

#: kill -9s of `newsqa index` in the default run (crash.py --kills 10 is the same run).
KILLS = 10


def test_ten_kill_9s_during_indexing_converge_to_the_clean_build(tmp_path: Path, embedder: Any,
                                                                 figures: Figures) -> None:
    def reference(paths: list[Path]) -> StoreSnapshot:
        settings = settings_for(tmp_path / "clean")
        build.update(paths, settings, embedder=embedder)
        return snapshot(settings)

    lines: list[str] = []
    report = run_crashes(tmp_path, kills=KILLS, seed=7, extra_articles=24, kills_per_cycle=4,
                         reference_builder=reference, write_window=3.0, write_delay=0.3,
                         log=lines.append)
    print("\n".join(lines))
    summary = report.summary()
    figures({key: value for key, value in summary.items()
             if key not in ("problems", "clean_build_s")}  # the reference is built in-process
            | {"problems": len(summary["problems"]),
               "cycles": max((k.cycle for k in report.kills), default=0)})
    assert summary["kills"] == KILLS, summary
    assert not report.problems, json.dumps(summary, indent=2)
    assert summary["converged"] == len(report.kills), summary
    # The final re-run reproduced the clean build exactly (ids are content-derived).
    assert report.kills[-1].after_rerun["articles"] == report.reference["articles"]
    assert report.kills[-1].after_rerun["chunks"] == report.reference["chunks"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = make_corpus(tmp_path_factory.mktemp("lock") / "articles")
    return make_bulk_corpus(folder, 12)


def wait_for_lock_owner(data_dir: Path, proc: subprocess.Popen, timeout: float) -> None:
    """Block until `proc` holds the indexing lock: the owner file, written right after the
    lock is taken, names its pid."""
    lock = settings_for(data_dir).lock_path
    owner = lock.with_name(lock.name + ".owner")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the first indexer exited ({proc.returncode}) before it "
                                 f"was seen holding the lock: {proc.communicate()}")
        with contextlib.suppress(OSError, ValueError):
            if json.loads(owner.read_text(encoding="utf-8")).get("pid") == proc.pid:
                return
        time.sleep(0.02)
    raise AssertionError(f"the first indexer never took the lock in {timeout:.0f}s")


def test_two_indexers_at_once_the_second_refuses_clearly(corpus: Path, tmp_path: Path,
                                                         embedder: Any,
                                                         figures: Figures) -> None:
    """The first `newsqa index` takes the lock and is then frozen (SIGSTOP), so it provably
    holds the lock while the second runs: the second must refuse with status 2 and one line
    naming the first; the first, thawed, finishes; the store equals one clean build."""
    data_dir = tmp_path / "data"
    first = popen_cli("index", str(corpus), "--json", "--quiet", data_dir=data_dir)
    try:
        wait_for_lock_owner(data_dir, first, timeout=300)
        os.killpg(first.pid, signal.SIGSTOP)
        second = run_cli("index", str(corpus), "--json", "--quiet", data_dir=data_dir,
                         timeout=300)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(first.pid, signal.SIGCONT)
    out, err = first.communicate(timeout=600)
    print(f"second indexer: exit {second.returncode}: {second.stderr.strip()}")
    assert second.returncode == 2, (second.returncode, second.stdout, second.stderr)
    assert "another indexer" in second.stderr and f"pid {first.pid}" in second.stderr, \
        second.stderr
    assert str(data_dir) in second.stderr and "index.lock" in second.stderr, second.stderr
    assert "Traceback" not in second.stderr and not second.stdout.strip(), second
    assert len(second.stderr.strip().splitlines()) == 1, second.stderr
    assert first.returncode == 0, err
    first_report = json.loads(out)
    assert first_report["errors"] == [] and first_report["indexed"] == 17, first_report
    clean = settings_for(tmp_path / "clean")
    build.update([corpus], clean, embedder=embedder)
    reference = snapshot(clean)
    _, problems = converge_problems(data_dir, reference)
    assert not problems, problems
    figures({"first indexer exit": first.returncode, "second indexer exit": second.returncode,
             "refusal": second.stderr.strip().replace(str(tmp_path), "TMP"),
             "store equals a clean build": not problems,
             "articles": reference.article_count, "chunks": reference.chunk_count})


def test_indexer_refuses_while_another_holds_the_lock(corpus: Path, tmp_path: Path,
                                                      embedder) -> None:
    data_dir = tmp_path / "data"
    build.update([corpus], settings_for(data_dir), embedder=embedder)
    before = snapshot(settings_for(data_dir))
    extra = make_bulk_corpus(tmp_path / "more", 2, start=500)
    with build.index_lock(settings_for(data_dir)):
        began = time.monotonic()
        refused = run_cli("index", str(extra), "--quiet", data_dir=data_dir, timeout=300)
        assert time.monotonic() - began < 240  # it refused instead of hanging
    assert refused.returncode == 2, refused.stderr
    assert "another indexer" in refused.stderr and "index.lock" in refused.stderr
    assert "Traceback" not in refused.stderr
    after = snapshot(settings_for(data_dir))
    assert (after.article_ids, after.chunk_ids) == (before.article_ids, before.chunk_ids)
    # Once the lock is free, indexing works again.
    assert build.update([extra], settings_for(data_dir), embedder=embedder).indexed == 2
    assert snapshot(settings_for(data_dir)).article_count == before.article_count + 2


def test_server_index_endpoint_refuses_clearly_while_an_indexer_runs(served: Served) -> None:
    """`/index` on the running server while a desk's `newsqa index` holds the lock."""
    from gradio_client.exceptions import AppError

    api = client(served.url)
    before = snapshot(served.settings)
    with build.index_lock(served.settings), pytest.raises(AppError, match="another indexer"):
        api.predict(api_name="/index")
    report = api.predict(api_name="/index")  # free again: an incremental no-op
    assert report["errors"] == [] and report["indexed"] == 0, report
    assert ask_api(api, QUESTIONS[0].text)["found"]
    assert snapshot(served.settings).to_dict() == before.to_dict()
