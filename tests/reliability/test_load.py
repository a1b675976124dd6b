"""Several users at once through the real server's `/ask` endpoint (the full run is load.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.reliability.conftest import Figures, Served
from tests.reliability.harness import (
    QUESTIONS,
    check_load,
    cites_expected,
    run_users,
    snapshot,
)


def test_five_users_three_questions_each_no_errors_all_cited(served: Served,
                                                             figures: Figures) -> None:
    before = snapshot(served.settings)
    report = run_users(served.url, users=5, questions=QUESTIONS, per_user=3, time_limit=600)
    summary = report.summary()
    assert summary["requests"] == 15 and not report.timed_out, summary
    problems = check_load(report, served.settings)
    assert not problems, "\n".join(problems)
    # Answerable questions are answered from the right article, quoting the key phrase.
    wrong = {r.question.text for r in report.results
             if r.question.article and not cites_expected(r.answer, r.question)}
    assert not wrong, wrong
    assert snapshot(served.settings).to_dict() == before.to_dict()
    print(json.dumps(summary))
    figures(summary, "5 users x 3 questions, in-process server")


def load_figures(figures: dict[str, Any]) -> dict[str, Any]:
    """The figures of a load.py run worth keeping, flat (problems counted, listed apart)."""
    flat = dict(figures["load"])
    flat["server ready (s)"] = figures["server_ready_s"]
    flat["store before"] = figures["store_before"]
    flat["store after"] = figures["store_after"]
    flat["answers quoting the key phrase"] = figures["answers_quoting_the_key_phrase"]
    flat["rounds"] = figures["rounds"]
    if "indexer" in figures:
        indexer = figures["indexer"]
        flat["indexer exit"] = indexer.get("exit")
        flat["indexer seconds"] = indexer.get("seconds")
        flat["indexer indexed"] = (indexer.get("report") or {}).get("indexed")
        flat["new articles answered without restart"] = sum(
            1 for q in figures["late_questions"] if q["expected_article_cited"])
    flat["problems"] = len(figures["problems"])
    return flat


def test_full_load_20_users_10_questions(tmp_path: Path, figures: Figures) -> None:
    """The real `newsqa serve` process, 20 gradio clients at once, 10 questions each."""
    from tests.reliability.load import run_load

    result = run_load(tmp_path, users=20, questions=10, time_limit=1200)
    figures(load_figures(result), "20 users x 10 questions, real `newsqa serve`")
    assert result["load"]["requests"] == 200 and not result["load"]["timed_out"], result
    assert result["load"]["errors"] == 0, result
    assert not result["problems"], result["problems"]


def test_full_load_while_another_process_indexes(tmp_path: Path, figures: Figures) -> None:
    """10 users x 6 questions, in rounds, while a separate `newsqa index` adds 3 articles."""
    from tests.reliability.load import run_load

    result = run_load(tmp_path, users=10, questions=6, time_limit=1200, reindex=True)
    figures(load_figures(result), "10 users x 6 questions while another process indexes")
    assert result["indexer"]["exit"] == 0, result["indexer"]
    assert result["load"]["errors"] == 0, result
    assert not result["problems"], result["problems"]
