"""kill -9 during indexing converges to a clean build; two indexers never corrupt the store."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from index import build
from tests.reliability.conftest import Served
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


def test_three_kill_9s_during_indexing_converge_to_the_clean_build(tmp_path: Path,
                                                                   embedder) -> None:
    def reference(paths: list[Path]) -> StoreSnapshot:
        settings = settings_for(tmp_path / "clean")
        build.update(paths, settings, embedder=embedder)
        return snapshot(settings)

    lines: list[str] = []
    report = run_crashes(tmp_path, kills=3, seed=3, extra_articles=8, kills_per_cycle=3,
                         reference_builder=reference, write_window=3.0, write_delay=0.15,
                         log=lines.append)
    print("\n".join(lines))
    summary = report.summary()
    assert summary["kills"] == 3, summary
    assert not report.problems, json.dumps(summary, indent=2)
    # The final re-run reproduced the clean build exactly (ids are content-derived).
    assert report.kills[-1].after_rerun["articles"] == report.reference["articles"]
    assert report.kills[-1].after_rerun["chunks"] == report.reference["chunks"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = make_corpus(tmp_path_factory.mktemp("lock") / "articles")
    return make_bulk_corpus(folder, 12)


def test_two_indexers_at_once_one_waits_or_refuses_clearly(corpus: Path, tmp_path: Path,
                                                           embedder) -> None:
    data_dir = tmp_path / "data"
    first = popen_cli("index", str(corpus), "--json", "--quiet", data_dir=data_dir)
    second = popen_cli("index", str(corpus), "--json", "--quiet", data_dir=data_dir)
    outcomes = []
    for proc in (first, second):
        out, err = proc.communicate(timeout=600)
        outcomes.append((proc.returncode, out, err))
    codes = sorted(code for code, _, _ in outcomes)
    print(f"exit codes of the two indexers: {codes}")
    assert codes[0] == 0, outcomes  # at least one indexer finished its work
    for code, out, err in outcomes:
        if code != 0:  # the other one refused: one clear line, no traceback, no half work
            assert code == 2, err
            assert "another indexer" in err and str(data_dir) in err, err
            assert "Traceback" not in err
        else:
            assert json.loads(out)["errors"] == []
    # Whatever happened, the store is exactly what a single clean run gives.
    clean = settings_for(tmp_path / "clean")
    build.update([corpus], clean, embedder=embedder)
    reference = snapshot(clean)
    _, problems = converge_problems(data_dir, reference)
    assert not problems, problems


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
