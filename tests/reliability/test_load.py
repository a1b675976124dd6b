"""Several users at once through the real server's `/ask` endpoint (the full run is load.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.reliability.conftest import Served
from tests.reliability.harness import (
    QUESTIONS,
    check_load,
    cites_expected,
    run_users,
    snapshot,
)


def test_five_users_three_questions_each_no_errors_all_cited(served: Served) -> None:
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


@pytest.mark.slow
def test_full_load_20_users_10_questions(tmp_path: Path) -> None:
    from tests.reliability.load import run_load

    figures = run_load(tmp_path, users=20, questions=10, time_limit=1200)
    assert figures["load"]["errors"] == 0, figures
    assert not figures["problems"], figures["problems"]


@pytest.mark.slow
def test_full_load_while_another_process_indexes(tmp_path: Path) -> None:
    from tests.reliability.load import run_load

    figures = run_load(tmp_path, users=10, questions=6, time_limit=1200, reindex=True)
    assert not figures["problems"], figures["problems"]
