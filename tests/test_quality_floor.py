"""The quality floor: answer support and refusal on held-out RealTime QA training weeks must
not fall more than 5 points below the figures committed in tests/quality_floor.json.

The figures are written by `python -m qa.eval.floor --write tests/quality_floor.json` (never
by a test). A change that makes answers worse must not land green.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from index.settings import Settings
from qa.eval.data import HELD_OUT_WEEKS
from qa.eval.floor import (
    FLOOR_TOLERANCE,
    floor_failures,
    floor_selection,
    measure_floor,
    read_floor,
)
from tests.conftest import SHARED_EVAL, require

FLOOR_FILE = Path(__file__).with_name("quality_floor.json")
TRAIN_DIR = SHARED_EVAL.parent / "realtimeqa-train"


def test_floor_failures_flag_only_drops_beyond_the_tolerance() -> None:
    committed = {"answer_support": 0.50, "refusal_rate": 0.90}
    assert floor_failures({"answer_support": 0.46, "refusal_rate": 0.86}, committed) == []
    failures = floor_failures({"answer_support": 0.44, "refusal_rate": 0.95}, committed)
    assert len(failures) == 1 and failures[0].startswith("answer_support fell")
    assert len(floor_failures({"answer_support": 0.0, "refusal_rate": 0.0}, committed)) == 2
    assert FLOOR_TOLERANCE == 0.05


def test_committed_floor_describes_the_held_out_selection() -> None:
    committed = read_floor(FLOOR_FILE)
    assert committed["held_out_weeks"] == list(HELD_OUT_WEEKS)
    require(TRAIN_DIR.is_dir(), f"the RealTime QA training set ({TRAIN_DIR})")
    chosen, docs = floor_selection(TRAIN_DIR)
    assert [q.id for q in chosen] == committed["question_ids"]
    assert {q.week for q in chosen} <= set(HELD_OUT_WEEKS)
    assert len(chosen) == committed["questions"] == 30 and len(docs) == committed["articles"]


def test_answer_support_and_refusal_stay_above_the_committed_floor(embedder,
                                                                   tmp_path: Path) -> None:
    require(TRAIN_DIR.is_dir(), f"the RealTime QA training set ({TRAIN_DIR})")
    committed = read_floor(FLOOR_FILE)
    measured = measure_floor(TRAIN_DIR, Settings(data_dir=tmp_path / "data"))
    print(f"quality floor: support {measured['answer_support']:.3f} "
          f"(committed {committed['answer_support']:.3f}), refusal "
          f"{measured['refusal_rate']:.3f} (committed {committed['refusal_rate']:.3f})")
    assert measured["question_ids"] == committed["question_ids"]
    failures = floor_failures(measured, committed)
    if failures:
        pytest.fail("quality floor: " + "; ".join(failures), pytrace=False)
