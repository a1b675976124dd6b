"""The quality floor CI guards: answer support and refusal on held-out RealTime QA weeks.

About 30 questions of the HELD_OUT_WEEKS of `../shared/eval/realtimeqa-train/` (never the 2022
dev set), chosen by a fixed rule (the smallest evidence-article sets), are indexed with their
own articles into a scratch store and run through `run_eval` exactly as `newsqa eval` runs the
dev set (newsqa only, with the unanswerable variants). The figures are committed beside the
test (tests/quality_floor.json, written by `python -m qa.eval.floor --write FILE`); the test
fails when support or refusal falls more than FLOOR_TOLERANCE below them.

The train set does not say which other search results belong to a question, so each
question's own articles are its evidence articles; the other selected questions' articles (the
same weeks' news) are the distractors and what an unanswerable variant may still retrieve.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from index.settings import Settings, apply_offline_env
from qa.eval.data import (
    HELD_OUT_WEEKS,
    CorpusDoc,
    EvalQuestion,
    load_corpus,
    load_queries,
    write_jsonl,
)
from qa.eval.report import EvalReport
from qa.eval.run import run_eval

FLOOR_QUESTIONS = 30
FLOOR_TOLERANCE = 0.05  # 5 percentage points
FLOOR_METRICS: tuple[str, ...] = ("answer_support", "refusal_rate")
#: The held-out training weeks next to a checkout, relative to the working directory.
DEFAULT_TRAIN_DIR = Path("../shared/eval/realtimeqa-train")
SELECTION_RULE = (f"the {FLOOR_QUESTIONS} questions of HELD_OUT_WEEKS whose evidence articles "
                  "are smallest in total characters (ties by question id)")


def floor_selection(train_dir: Path, *, questions: int = FLOOR_QUESTIONS,
                    weeks: Sequence[str] = HELD_OUT_WEEKS
                    ) -> tuple[list[EvalQuestion], list[CorpusDoc]]:
    """The floor's questions (SELECTION_RULE) and the union of their evidence articles."""
    docs = {d.id: d for d in load_corpus(train_dir / "corpus.jsonl")}
    held_out = [q for q in load_queries(train_dir / "queries_train.jsonl", set(docs))
                if q.week in set(weeks)]

    def size(question: EvalQuestion) -> tuple[int, str]:
        return sum(len(docs[g].body) for g in question.gold), question.id

    chosen = sorted(sorted(held_out, key=size)[:questions], key=lambda q: q.id)
    used = sorted({g for q in chosen for g in q.gold})
    return chosen, [docs[d] for d in used]


def _question_record(question: EvalQuestion) -> dict[str, Any]:
    return {"id": question.id, "query": question.query, "answer": question.answer,
            "question_date": question.question_date,
            "evidence": [{"doc_id": g} for g in question.gold]}


def measure_floor(train_dir: Path, settings: Settings, *,
                  questions: int = FLOOR_QUESTIONS) -> dict[str, Any]:
    """Answer support and refusal of the current answerer on the floor's questions; the
    scratch files and store go under settings.data_dir."""
    chosen, docs = floor_selection(train_dir, questions=questions)
    folder = settings.data_dir / "floor"
    folder.mkdir(parents=True, exist_ok=True)
    corpus = write_jsonl((d.to_record() for d in docs), folder / "corpus.jsonl")
    queries = write_jsonl((_question_record(q) for q in chosen), folder / "queries.jsonl")
    report = run_eval(corpus, queries, settings, systems=("newsqa",), refusal=True)
    return floor_figures(report, chosen)


def floor_figures(report: EvalReport, chosen: Sequence[EvalQuestion]) -> dict[str, Any]:
    """The figures committed and compared: rates, their counts, and what they were made on."""
    ours = report.systems["newsqa"]
    refusal = report.refusal
    assert refusal is not None
    return {"answer_support": ours.answer_support, "refusal_rate": refusal.refusal_rate,
            "false_refusal_rate": refusal.false_refusal_rate,
            "questions": len(chosen), "articles": report.counts["articles"],
            "supported": sum(bool(q.supported) for q in report.questions),
            "refused": refusal.refused, "unanswerable": refusal.unanswerable,
            "false_refusals": refusal.false_refusals,
            "held_out_weeks": list(HELD_OUT_WEEKS), "selection_rule": SELECTION_RULE,
            "question_ids": [q.id for q in chosen], "tolerance": FLOOR_TOLERANCE}


def floor_failures(measured: Mapping[str, Any], committed: Mapping[str, Any], *,
                   tolerance: float = FLOOR_TOLERANCE) -> list[str]:
    """One line per metric that fell more than `tolerance` below its committed figure."""
    return [f"{name} fell from {committed[name]:.3f} to {measured[name]:.3f} "
            f"(more than {100 * tolerance:g} points)"
            for name in FLOOR_METRICS if measured[name] < committed[name] - tolerance]


def read_floor(path: Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_floor(figures: Mapping[str, Any], path: Path) -> None:
    Path(path).write_text(json.dumps(dict(figures), indent=2) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Measure the floor; print it, and write it to --write (tests never write it)."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--train-dir", type=Path, default=DEFAULT_TRAIN_DIR)
    parser.add_argument("--data-dir", type=Path, default=Path("data/floor-scratch"),
                        help="scratch folder for the floor's store")
    parser.add_argument("--write", type=Path, help="write the figures here "
                        "(e.g. tests/quality_floor.json)")
    args = parser.parse_args(argv)
    apply_offline_env()
    figures = measure_floor(args.train_dir, Settings(data_dir=args.data_dir))
    json.dump(figures, sys.stdout, indent=2)
    print()
    if args.write:
        write_floor(figures, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
