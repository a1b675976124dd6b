"""The evaluation report: its model (scores, short answers and calibration, refusals,
per-question results, the ablation), the terminal table, the Markdown page and its charts
(hit@k, risk-coverage)."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from qa.eval.metrics import (
    CoveragePoint,
    coverage_at,
    expected_calibration_error,
    hit_rate,
    mean_reciprocal_rank,
    percentile_ms,
    risk_coverage,
)

EVAL_VERSION = 1
KS: tuple[int, ...] = tuple(range(1, 11))
CALIBRATION_BINS = 10
#: The confidence thresholds of the risk-coverage table (the chart uses every distinct one).
COVERAGE_THRESHOLDS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(10))
REFUSAL_CHECK = Path(__file__).parent / "refusal_check.json"
#: Per-question fields that quote the eval data: left out of eval.json unless `details`.
EVAL_TEXT_KEYS = ("query", "answer", "reply", "short_answer", "variant_reply",
                  "variant_short_answer", "variant_quotes")

#: Targets the report is checked against (issue 12; set before measuring, never tuned to the
#: data). Retrieval keeps today's figures as its floor; the textbook gain is the older target.
TARGETS = {
    "hit@5 gain over textbook (points)": 10.0,
    "hit@5 (min)": 0.853,
    "MRR@10 (min)": 0.695,
    "answer_support": 0.60,
    "short_answer_support": 0.60,
    "short_answer_f1": 0.35,
    "short_answer_f1 (stretch)": 0.45,
    "refusal_rate": 0.70,
    "false_refusal_rate (max)": 0.10,
    "answer latency p50 ms (max)": 500.0,
    "full eval minutes (max)": 20.0,
    "cached rerun minutes (max)": 3.0,
}


@dataclass(frozen=True)
class SystemScores:
    """Article-level retrieval scores of one system (hit@k for k = 1..10, MRR@10)."""

    name: str
    questions: int
    hits: tuple[float, ...]
    mrr10: float
    latency_p50_ms: float
    latency_p95_ms: float
    answer_support: float | None = None
    answer_contained: float | None = None
    answer_p50_ms: float | None = None
    answer_p95_ms: float | None = None

    @classmethod
    def from_ranks(cls, name: str, ranks: Sequence[int | None], latencies: Sequence[float],
                   **answers: Any) -> SystemScores:
        """Scores from each question's gold rank and retrieval time (seconds)."""
        return cls(name=name, questions=len(ranks),
                   hits=tuple(hit_rate(ranks, k) for k in KS),
                   mrr10=mean_reciprocal_rank(ranks, 10),
                   latency_p50_ms=percentile_ms(latencies, 50),
                   latency_p95_ms=percentile_ms(latencies, 95), **answers)

    def hit(self, k: int) -> float:
        return self.hits[k - 1]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"questions": self.questions}
        out.update({f"hit@{k}": self.hit(k) for k in (1, 5, 10)})
        out["mrr@10"] = self.mrr10
        out["hit_curve"] = list(self.hits)
        out["latency_p50_ms"] = self.latency_p50_ms
        out["latency_p95_ms"] = self.latency_p95_ms
        if self.answer_support is not None:
            out["answer_support"] = self.answer_support
            out["answer_contained"] = self.answer_contained
        if self.answer_p50_ms is not None:
            out["answer_latency_p50_ms"] = self.answer_p50_ms
            out["answer_latency_p95_ms"] = self.answer_p95_ms
        return out


@dataclass(frozen=True)
class ShortAnswerScores:
    """Short answers over the answerable questions (a refusal or an answer without a short
    answer scores 0): SQuAD EM/F1 of the short answer alone; `first_quote_f1` the F1 of the
    first cited quote, for context; `support` counts an answer whose short answer holds the
    normalised gold answer and whose citation carrying it is from a gold article."""

    questions: int
    exact_match: float
    f1: float
    first_quote_f1: float
    support: float
    with_short_answer: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Calibration:
    """Confidence against support, from a pass whose answers were never refused for their
    confidence (so that every threshold can be swept): per answer, its level and whether it
    is supported (the first citation is gold and a quote holds the normalised answer).

    A level is the answer's confidence; +inf for an answer found without one (another
    answerer: answered at every threshold), -inf for one refused otherwise (the coverage gate:
    answered at none). ECE counts the answers found with a confidence; variants are never supported
    (their gold is left out). `threshold` is the product's refusal threshold.
    """

    source: str
    answerable: tuple[tuple[float, bool], ...]
    unanswerable: tuple[tuple[float, bool], ...]
    threshold: float | None = None

    def ece(self, *, pooled: bool = True) -> float:
        """ECE over 10 bins of the confidence against support (pooled: variants too)."""
        pairs = [(c, o) for c, o in (*self.answerable, *(self.unanswerable if pooled else ()))
                 if math.isfinite(c)]
        return expected_calibration_error([c for c, _ in pairs], [o for _, o in pairs],
                                          CALIBRATION_BINS)

    def rated(self, *, pooled: bool = True) -> int:
        """How many answers carried a confidence (what ECE is computed over)."""
        pairs = (*self.answerable, *(self.unanswerable if pooled else ()))
        return sum(math.isfinite(c) for c, _ in pairs)

    def curve(self) -> list[CoveragePoint]:
        """Risk-coverage over the answerable questions at every distinct confidence."""
        levels, outcomes = [c for c, _ in self.answerable], [o for _, o in self.answerable]
        thresholds = sorted({c for c in levels if math.isfinite(c)}, reverse=True)
        return risk_coverage(levels, outcomes, thresholds)

    def coverage_rows(self) -> list[tuple[CoveragePoint, CoveragePoint]]:
        """Per table threshold (and the product's): the answerable questions' point and the
        variants' point (whose coverage is the share of unanswerable variants answered)."""
        answerable = [c for c, _ in self.answerable], [o for _, o in self.answerable]
        variants = [c for c, _ in self.unanswerable], [o for _, o in self.unanswerable]
        thresholds = sorted({*COVERAGE_THRESHOLDS,
                             *([] if self.threshold is None else [self.threshold])})
        return [(coverage_at(t, *answerable), coverage_at(t, *variants)) for t in thresholds]

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "threshold": self.threshold,
                "rated": {"pooled": self.rated(), "answerable": self.rated(pooled=False)},
                "ece_10_bins": self.ece(), "ece_10_bins_answerable": self.ece(pooled=False),
                "risk_coverage": [
                    {"threshold": a.threshold, "answered": a.coverage, "support": a.accuracy,
                     "unanswerable_answered": v.coverage} for a, v in self.coverage_rows()]}


@dataclass(frozen=True)
class AblationRow:
    """One answerer variant on the same dev questions: what `newsqa eval --ablation` shows."""

    name: str
    description: str
    answer_support: float
    short_answer_f1: float
    refusal_rate: float
    false_refusal_rate: float
    answer_p50_ms: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RefusalScores:
    """Refusals: on unanswerable variants (should refuse) and on the answerable set (should
    not)."""

    unanswerable: int
    refused: int
    answerable: int
    false_refusals: int
    excluded_articles_mean: float

    @property
    def refusal_rate(self) -> float:
        return self.refused / self.unanswerable if self.unanswerable else math.nan

    @property
    def false_refusal_rate(self) -> float:
        return self.false_refusals / self.answerable if self.answerable else math.nan

    def to_dict(self) -> dict[str, Any]:
        return {"refusal_rate": self.refusal_rate, "false_refusal_rate": self.false_refusal_rate,
                "unanswerable": self.unanswerable, "refused": self.refused,
                "answerable": self.answerable, "false_refusals": self.false_refusals,
                "excluded_articles_mean": self.excluded_articles_mean}


@dataclass(frozen=True)
class QuestionResult:
    """What happened to one question: gold ranks per system, the answer and its support."""

    id: str
    query: str
    answer: str
    gold: tuple[str, ...]
    ranks: Mapping[str, int | None]
    found: bool | None = None
    supported: bool | None = None
    contained: bool | None = None
    first_citation: str = ""
    reply: str = ""
    latency_ms: float = 0.0
    refused_unanswerable: bool | None = None
    excluded: int = 0
    span_supported: bool | None = None
    short_answer: str = ""
    short_em: float | None = None
    short_f1: float | None = None
    first_quote_f1: float | None = None
    short_supported: bool | None = None
    confidence: float | None = None
    variant_confidence: float | None = None
    variant_first_citation: str = ""
    variant_reply: str = ""
    variant_short_answer: str = ""
    variant_quotes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["variant_quotes"] = list(self.variant_quotes)
        out["ranks"] = dict(self.ranks)
        out["gold"] = list(self.gold)
        return out


@dataclass(frozen=True)
class EvalReport:
    """Everything one evaluation run measured; `to_dict()` is the JSON form."""

    corpus: str
    queries: str
    selection: Mapping[str, Any]
    counts: Mapping[str, int]
    systems: Mapping[str, SystemScores]
    refusal: RefusalScores | None
    timings: Mapping[str, float]
    cache: Mapping[str, Any]
    settings: Mapping[str, Any]
    environment: Mapping[str, Any]
    started_at: str
    questions: tuple[QuestionResult, ...] = field(default=(), repr=False)
    short_answers: ShortAnswerScores | None = None
    calibration: Calibration | None = None
    ablation: tuple[AblationRow, ...] = ()
    hand_check: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("selection", "counts", "systems", "timings", "cache", "settings",
                     "environment", "hand_check"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    def gains(self) -> dict[str, dict[str, float]]:
        """newsqa minus each peer, in percentage points (hit@k) and MRR points."""
        if "newsqa" not in self.systems:
            return {}
        ours = self.systems["newsqa"]
        return {name: {**{f"hit@{k}": 100 * (ours.hit(k) - peer.hit(k)) for k in (1, 5, 10)},
                       "mrr@10": 100 * (ours.mrr10 - peer.mrr10)}
                for name, peer in self.systems.items() if name != "newsqa"}

    def checks(self) -> dict[str, dict[str, Any]]:
        """Each target with the measured value, how it reads and whether it is met."""
        return {**self._retrieval_checks(), **self._answer_checks(), **self._refusal_checks(),
                **self._time_checks()}

    def _retrieval_checks(self) -> dict[str, dict[str, Any]]:
        ours = self.systems.get("newsqa")
        if ours is None:
            return {}
        out: dict[str, dict[str, Any]] = {}
        gains = self.gains()
        if "textbook" in gains:
            gain = gains["textbook"]["hit@5"]
            out["newsqa hit@5 >= textbook + 10 points"] = _check(
                gain, gain >= TARGETS["hit@5 gain over textbook (points)"], f"{gain:+.1f} pts")
        if {"textbook", "bm25"} & set(self.systems):
            best_peer = max((p.mrr10 for n, p in self.systems.items()
                             if n in ("textbook", "bm25")), default=0.0)
            margin = ours.mrr10 - best_peer
            out["newsqa MRR@10 above every peer"] = _check(margin, margin > 0,
                                                           f"{100 * margin:+.1f} pts")
        out["hit@5 >= 85.3%"] = _check(ours.hit(5), ours.hit(5) >= TARGETS["hit@5 (min)"],
                                       _pct(ours.hit(5)))
        out["MRR@10 >= 69.5"] = _check(ours.mrr10, ours.mrr10 >= TARGETS["MRR@10 (min)"],
                                       f"{100 * ours.mrr10:.1f}")
        return out

    def _answer_checks(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        ours = self.systems.get("newsqa")
        if ours and ours.answer_support is not None:
            out["answer support >= 60%"] = _check(
                ours.answer_support, ours.answer_support >= TARGETS["answer_support"],
                _pct(ours.answer_support))
        short = self.short_answers
        if short is not None:
            out["support on the short answer's span >= 60%"] = _check(
                short.support, short.support >= TARGETS["short_answer_support"],
                _pct(short.support))
            for label, key in (("short-answer F1 >= 0.35", "short_answer_f1"),
                               ("short-answer F1 >= 0.45 (stretch)",
                                "short_answer_f1 (stretch)")):
                out[label] = _check(short.f1, short.f1 >= TARGETS[key], f"{short.f1:.3f}")
        if ours and ours.answer_p50_ms is not None:
            limit = TARGETS["answer latency p50 ms (max)"]
            out[f"answer latency p50 <= {limit:.0f} ms"] = _check(
                ours.answer_p50_ms, ours.answer_p50_ms <= limit, f"{ours.answer_p50_ms:.0f} ms")
        return out

    def _refusal_checks(self) -> dict[str, dict[str, Any]]:
        r = self.refusal
        if r is None:
            return {}
        return {"refusal rate >= 70%": _check(r.refusal_rate,
                                              r.refusal_rate >= TARGETS["refusal_rate"],
                                              _pct(r.refusal_rate)),
                "false refusals <= 10%": _check(
                    r.false_refusal_rate,
                    r.false_refusal_rate <= TARGETS["false_refusal_rate (max)"],
                    _pct(r.false_refusal_rate))}

    def _time_checks(self) -> dict[str, dict[str, Any]]:
        total = self.timings.get("total_s")
        if total is None or self.selection.get("sample") or self.selection.get("limit"):
            return {}
        reused = {bool(self.cache.get("newsqa_reused")),
                  bool(self.cache.get("textbook_reused", True))}
        if len(reused) != 1:  # a partly cached run meets neither time target's terms
            return {}
        cached = reused.pop()
        limit = TARGETS["cached rerun minutes (max)" if cached else "full eval minutes (max)"]
        ablation = sum(v for k, v in self.timings.items() if k.startswith("ablation"))
        minutes = (total - ablation) / 60.0  # the ablation's passes are not the eval's time
        return {f"{'cached rerun' if cached else 'full eval'} <= {limit:g} min": _check(
            minutes, minutes <= limit, f"{minutes:.1f} min")}

    def to_dict(self) -> dict[str, Any]:
        return {
            "eval_version": EVAL_VERSION,
            "started_at": self.started_at,
            "corpus": self.corpus,
            "queries": self.queries,
            "selection": dict(self.selection),
            "counts": dict(self.counts),
            "systems": {name: s.to_dict() for name, s in self.systems.items()},
            "gains_points": self.gains(),
            "refusal": self.refusal.to_dict() if self.refusal else None,
            "short_answers": self.short_answers.to_dict() if self.short_answers else None,
            "calibration": self.calibration.to_dict() if self.calibration else None,
            "ablation": [row.to_dict() for row in self.ablation],
            "hand_check": dict(self.hand_check),
            "latency": {name: _latency(s) for name, s in self.systems.items()},
            "timings": dict(self.timings),
            "cache": dict(self.cache),
            "checks": self.checks(),
            "settings": dict(self.settings),
            "environment": dict(self.environment),
            "questions": [q.to_dict() for q in self.questions],
        }


def _check(value: float, met: bool, shown: str) -> dict[str, Any]:
    """One target's entry: the measured value, how the report prints it, whether it is met."""
    return {"value": value, "shown": shown, "met": bool(met)}


def _latency(s: SystemScores) -> dict[str, float | None]:
    out: dict[str, float | None] = {"retrieval_p50_ms": s.latency_p50_ms,
                                    "retrieval_p95_ms": s.latency_p95_ms}
    if s.answer_p50_ms is not None:
        out.update(answer_p50_ms=s.answer_p50_ms, answer_p95_ms=s.answer_p95_ms)
    return out


def _pct(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.1f}%"


# --- the hand check of answered unanswerable variants -----------------------------------------


def load_hand_check(path: Path) -> dict[str, Any]:
    """The hand check's record ({"judged": what was judged, "checks": [{"id", "verdict":
    "right"|"wrong" (the reply answers correctly), "answerable" (the corpus left a paraphrase
    of the answer in), "reason"}]}); empty when the file does not exist."""
    path = Path(path)
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    for entry in data.get("checks", []):
        if entry.get("verdict") not in ("right", "wrong"):
            raise ValueError(f"{path}: verdict of {entry.get('id')!r} must be right or wrong")
    return data


def hand_check_summary(record: Mapping[str, Any], results: Sequence[QuestionResult]
                       ) -> dict[str, Any]:
    """How many hand-checked variants this run also answered, and how many were right."""
    answered = {q.id for q in results if q.refused_unanswerable is False}
    kept = [e for e in record.get("checks", []) if e["id"] in answered]
    if not kept:
        return {}
    return {"checked": len(kept), "right": sum(e["verdict"] == "right" for e in kept),
            "answerable": sum(bool(e.get("answerable")) for e in kept),
            "judged": record.get("judged", ""), "listed": len(record.get("checks", []))}


# --- the terminal table ----------------------------------------------------------------------


def render_table(report: EvalReport) -> str:
    """A plain-text summary for the terminal: scores per system, gains, refusals, latency."""
    c = report.counts
    lines = [f"newsqa eval: {c.get('questions', 0)} questions, {c.get('articles', 0)} articles "
             f"({c.get('chunks', 0)} newsqa chunks)", ""]
    header = (f"{'system':<10} {'hit@1':>7} {'hit@5':>7} {'hit@10':>7} {'MRR@10':>7} "
              f"{'support':>8} {'p50 ms':>8} {'p95 ms':>8}")
    lines += [header, "-" * len(header)]
    for name, s in report.systems.items():
        lines.append(f"{name:<10} {_pct(s.hit(1)):>7} {_pct(s.hit(5)):>7} {_pct(s.hit(10)):>7} "
                     f"{100 * s.mrr10:>7.1f} {_pct(s.answer_support):>8} "
                     f"{s.latency_p50_ms:>8.0f} {s.latency_p95_ms:>8.0f}")
    gains = report.gains()
    if gains:
        lines.append("")
        for peer, g in gains.items():
            lines.append(f"newsqa vs {peer}: hit@1 {g['hit@1']:+.1f} pts, hit@5 "
                         f"{g['hit@5']:+.1f} pts, hit@10 {g['hit@10']:+.1f} pts, MRR@10 "
                         f"{g['mrr@10']:+.1f} pts")
    if report.refusal:
        r = report.refusal
        lines.append(f"refusals: {_pct(r.refusal_rate)} of {r.unanswerable} unanswerable "
                     f"variants refused; false refusals {_pct(r.false_refusal_rate)} of "
                     f"{r.answerable} answerable")
    lines += _table_short_answers(report)
    for row in report.ablation:
        lines.append(f"ablation {row.name}: support {_pct(row.answer_support)}, short F1 "
                     f"{row.short_answer_f1:.3f}, refusal {_pct(row.refusal_rate)}, false "
                     f"refusals {_pct(row.false_refusal_rate)}, p50 {row.answer_p50_ms:.0f} ms")
    lines.append("")
    for name, check in report.checks().items():
        lines.append(f"[{'ok' if check['met'] else 'MISSED'}] {name}")
    timing = ", ".join(f"{k} {v:.0f}s" for k, v in report.timings.items())
    lines.append(f"time: {timing}")
    return "\n".join(lines)


def _table_short_answers(report: EvalReport) -> list[str]:
    short = report.short_answers
    if short is None:
        return []
    lines = [f"short answers: EM {short.exact_match:.3f}, F1 {short.f1:.3f} (first quote F1 "
             f"{short.first_quote_f1:.3f}); support on the short answer's span "
             f"{_pct(short.support)}"]
    calibration = report.calibration
    if calibration is not None:
        lines.append(f"confidence: ECE {calibration.ece():.3f} over {CALIBRATION_BINS} bins "
                     f"({calibration.rated()} answers with a confidence, {calibration.source})")
    check = report.hand_check
    if check.get("checked"):
        lines.append(f"hand check: of {check['checked']} answered variants, "
                     f"{check['right']} were right, {check.get('answerable', 0)} answerable")
    return lines


# --- the Markdown page -----------------------------------------------------------------------


def _scope(selection: Mapping[str, Any]) -> str:
    if selection.get("sample"):
        return (f"--sample {selection['sample']} (seed {selection['seed']}, gold articles plus "
                f"{selection['distractors_per_question']} random distractors per question)")
    if selection.get("limit"):
        return f"--limit {selection['limit']}"
    return "all questions, whole corpus"


def _md_header(report: EvalReport, command: str) -> list[str]:
    c, env = report.counts, report.environment
    textbook = f", {c.get('textbook_chunks')} textbook chunks" if "textbook_chunks" in c else ""
    lines = ["# newsqa evaluation", "",
             "Generated by `qa.eval.run.run_eval` (`newsqa eval`); do not edit by hand.", "",
             f"- Run: {report.started_at}, {_scope(report.selection)}"]
    if command:
        lines.append(f"- Command: `{command}`")
    lines += [f"- Corpus: `{report.corpus}` ({c.get('articles')} of {c.get('corpus_total')} "
              f"articles; {c.get('chunks')} newsqa chunks{textbook})",
              f"- Questions: `{report.queries}` ({c.get('questions')} of "
              f"{c.get('questions_total')})",
              f"- Machine: {env.get('cpu_cores')} cores ({env.get('processor')}), "
              f"{env.get('ram_gib')} GiB RAM, no GPU; model {env.get('embedding_model')}",
              "- Date rule: every system only sees articles published on or before the "
              "question's date (`until=question_date`), i.e. the question date is \"today\"."]
    if report.selection.get("sample"):
        lines.append("- Caveat: with `--sample` the distractors are random articles, so "
                     "retrieval is close to its ceiling for every system and gains look small; "
                     "the full corpus (whose distractors are topical search results) is the "
                     "real test.")
    return lines


def _md_retrieval(report: EvalReport, chart_name: str | None) -> list[str]:
    lines = ["", "## Retrieval (article level)", "",
             "Distinct articles in rank order among the retrieved passages; a hit is any gold "
             "(evidence) article. Same questions, same date rule, same depth (10 articles) for "
             "every system.", "",
             "| system | hit@1 | hit@5 | hit@10 | MRR@10 | retrieval p50 | retrieval p95 |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name, s in report.systems.items():
        lines.append(f"| {name} | {_pct(s.hit(1))} | {_pct(s.hit(5))} | {_pct(s.hit(10))} | "
                     f"{100 * s.mrr10:.1f} | {s.latency_p50_ms:.0f} ms | "
                     f"{s.latency_p95_ms:.0f} ms |")
    gains = report.gains()
    if gains:
        lines += ["", "Gain of newsqa over each peer (percentage points):", "",
                  "| peer | hit@1 | hit@5 | hit@10 | MRR@10 |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        lines += [f"| {peer} | {g['hit@1']:+.1f} | {g['hit@5']:+.1f} | {g['hit@10']:+.1f} | "
                  f"{g['mrr@10']:+.1f} |" for peer, g in gains.items()]
    if chart_name:
        lines += ["", f"![hit@k per system]({chart_name})"]
    return lines


def _md_systems(report: EvalReport) -> list[str]:
    return ["", "Systems:", "",
            "- **newsqa**: the product retriever (hybrid dense + BM25, reciprocal-rank fusion, "
            "per-article cap) over newsqa's chunks "
            f"({report.settings.get('chunk_tokens')} word pieces, "
            f"{report.settings.get('chunk_overlap')} overlap, title-prefixed embeddings).",
            "- **textbook**: the LangChain recipe: `RecursiveCharacterTextSplitter("
            "chunk_size=1000, chunk_overlap=200)`, `HuggingFaceEmbeddings` of the same bundled "
            "model (normalised), `langchain_chroma.Chroma`, `similarity_search`.",
            "- **bm25**: BM25 alone (`index.keyword`: bm25s's Lucene scoring over an incremental "
            "SQLite inverted index, the project's stemmer and stop words) over the same chunks "
            "as newsqa.", "",
            "newsqa's retrieval defaults (qa/retriever.py) were chosen on the RealTime QA "
            "dev questions, so on that set its figures are not held-out."]


def _md_answers(report: EvalReport) -> list[str]:
    ours = report.systems.get("newsqa")
    if not ours or ours.answer_support is None:
        return []
    answerer = report.selection.get("answerer") or "newsqa"
    reader = report.selection.get("reader") or ""
    lines = ["", f"## Answers (newsqa, {answerer} answerer)", ""]
    if reader:
        lines += [f"- Reader weights: sha256 `{reader}`."]
    lines += [f"- Answer support: **{_pct(ours.answer_support)}** of questions are answered "
              "with a cited span containing the normalised gold answer (lower-case, "
              "punctuation incl. typographic quotes and a/an/the removed) AND a first "
              "citation from a gold article.",
              f"- Answer contained (lenient: anywhere in the reply or its quotes, any "
              f"article): {_pct(ours.answer_contained)}.",
              *_md_short_answers(report.short_answers),
              f"- Answer latency per question: p50 {ours.answer_p50_ms:.0f} ms, "
              f"p95 {ours.answer_p95_ms:.0f} ms (model warm, one question at a time)."]
    return lines


def _md_short_answers(short: ShortAnswerScores | None) -> list[str]:
    if short is None:
        return []
    return [f"- Short answers (SQuAD normalisation, all {short.questions} questions; a "
            f"refusal or an answer without a short answer scores 0; "
            f"{_pct(short.with_short_answer)} were answered with one): exact match "
            f"**{short.exact_match:.3f}**, token F1 **{short.f1:.3f}**. For context, the "
            f"first cited quote's token F1 against the gold answer: "
            f"{short.first_quote_f1:.3f}.",
            f"- Support on the short answer's own span (the short answer contains the "
            f"normalised gold answer and the citation carrying it is from a gold article): "
            f"**{_pct(short.support)}**."]


def _md_calibration(report: EvalReport, chart_name: str | None) -> list[str]:
    calibration = report.calibration
    if calibration is None:
        return []
    threshold = calibration.threshold
    product = "" if threshold is None else (
        f" The reader's calibrated threshold is {threshold:.3f}; the product refuses below it "
        f"only with refusal for low confidence switched on (off by default: the 'calibrated "
        f"refusal' ablation row has it on).")
    lines = ["", "## Confidence", "",
             f"`Answer.confidence` against support (the first citation is from a gold "
             f"article and a cited quote holds the normalised gold answer), measured on "
             f"{calibration.source}, so that every threshold can be swept.{product}", "",
             f"- ECE over {CALIBRATION_BINS} equal-width bins: **{calibration.ece():.3f}** "
             f"over the {calibration.rated()} answers found with a confidence (answerable "
             f"questions and unanswerable variants, which are never supported); "
             f"{calibration.ece(pooled=False):.3f} on the "
             f"{calibration.rated(pooled=False)} answerable questions alone.", "",
             "Risk-coverage: answering only when the confidence reaches the threshold "
             "(answerable questions: the share answered and the support among those "
             "answered; unanswerable variants: the share answered, i.e. 1 - refusal). "
             "Answers the coverage gate refused count as refused at every threshold; answers "
             "without a confidence (the quote answerer's) as answered at every one.", "",
             "| threshold | answered | support among answered | variants answered |",
             "| ---: | ---: | ---: | ---: |"]
    lines += [f"| {_threshold(a.threshold, threshold)} | {_pct(a.coverage)} ({a.answered}) | "
              f"{_pct(a.accuracy)} | {_pct(v.coverage)} ({v.answered}) |"
              for a, v in calibration.coverage_rows()]
    if chart_name:
        lines += ["", f"![risk-coverage]({chart_name})"]
    return lines


def _threshold(value: float, product: float | None) -> str:
    """A table threshold; the reader's calibrated one is marked and shown to three decimals."""
    return f"{value:.3f} (reader threshold)" if value == product else f"{value:.1f}"


def _md_ablation(report: EvalReport) -> list[str]:
    if not report.ablation:
        return []
    lines = ["", "## Ablation", "",
             "The same dev questions (and their unanswerable variants) answered by variants "
             "of the answerer, through the same eval loop and retrieval.", "",
             "| variant | support | short-answer F1 | refusal | false refusals | "
             "answer p50 |", "| --- | ---: | ---: | ---: | ---: | ---: |"]
    lines += [f"| {row.name} | {_pct(row.answer_support)} | {row.short_answer_f1:.3f} | "
              f"{_pct(row.refusal_rate)} | {_pct(row.false_refusal_rate)} | "
              f"{row.answer_p50_ms:.0f} ms |" for row in report.ablation]
    lines += ["", *(f"- **{row.name}**: {row.description}" for row in report.ablation)]
    return lines


def _md_refusals(report: EvalReport) -> list[str]:
    r = report.refusal
    if not r:
        return []
    return ["", "## Refusals", "",
            f"- Unanswerable variants (each question again, with its gold articles and "
            f"every article containing the normalised answer left out through an "
            f"article-id filter; {r.excluded_articles_mean:.1f} articles left out on "
            f"average): **{_pct(r.refusal_rate)}** refused ({r.refused} of "
            f"{r.unanswerable}).",
            f"- False refusals on the answerable questions: **"
            f"{_pct(r.false_refusal_rate)}** ({r.false_refusals} of {r.answerable}).",
            *_md_hand_check(report.hand_check)]


def _md_hand_check(check: Mapping[str, Any]) -> list[str]:
    if not check.get("checked"):
        return []
    return [f"- Hand check (qa/eval/{REFUSAL_CHECK.name}): of {check['checked']} answered "
            f"unanswerable variants, {check['right']} were right; "
            f"{check.get('answerable', 0)} were answerable from a paraphrase left in the "
            f"corpus (the answer filter matches whole normalised words: \"nine\" for 9, "
            f"\"Antarctica's\" for Antarctica), so the refusal figure is a lower bound. "
            f"Judged: {check.get('judged', '')}".rstrip()]


def _md_targets(report: EvalReport) -> list[str]:
    checks = report.checks()
    if not checks:
        return []
    return ["", "## Targets", "", "| target | measured | met |", "| --- | ---: | :---: |",
            *(f"| {name} | {check['shown']} | {'yes' if check['met'] else 'NO'} |"
              for name, check in checks.items())]


def _md_time_and_caches(report: EvalReport, notes: Sequence[str]) -> list[str]:
    lines = ["", "## Time", "", "| phase | seconds |", "| --- | ---: |"]
    lines += [f"| {k.removesuffix('_s').replace('_', ' ')} | {v:.1f} |"
              for k, v in report.timings.items()]
    if notes:
        lines += ["", *notes]
    cache = report.cache
    textbook = ""
    if "textbook_dir" in cache:
        textbook = (f"; textbook store `{cache.get('textbook_dir')}` "
                    f"({'reused' if cache.get('textbook_reused') else 'built'}; its build took "
                    f"{cache.get('textbook_first_build_s', 0):.0f} s)")
    built = "reused, nothing re-embedded" if cache.get("newsqa_reused") else "built"
    lines += ["", f"Caches: newsqa store `{cache.get('newsqa_dir')}` ({built}){textbook}."]
    return lines


def _md_misses(report: EvalReport) -> list[str]:
    misses = [q.id for q in report.questions if q.ranks.get("newsqa") is None]
    if not misses:
        return []
    return ["", f"Questions with no gold article in newsqa's top 10 ({len(misses)}): "
            + ", ".join(f"`{m}`" for m in misses[:40])
            + (" ..." if len(misses) > 40 else "")
            + " (ids only: the eval texts stay out of the repository)."]


def report_markdown(report: EvalReport, chart_name: str | None = None,
                    command: str = "", notes: Sequence[str] = (),
                    coverage_name: str | None = None) -> str:
    """The Markdown form of a report (what write_report saves)."""
    lines = [*_md_header(report, command), *_md_retrieval(report, chart_name),
             *_md_systems(report), *_md_answers(report), *_md_calibration(report, coverage_name),
             *_md_refusals(report), *_md_ablation(report), *_md_targets(report),
             *_md_time_and_caches(report, notes), *_md_misses(report)]
    return "\n".join(lines) + "\n"


# --- files -----------------------------------------------------------------------------------


def _plot(path: Path, draw: Callable[[Any], None]) -> bool:
    """Draw one chart with `draw(axes)` into a PNG at `path`; False when matplotlib is
    missing. The one plotting path of the report's charts."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    draw(ax)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def write_chart(report: EvalReport, path: Path) -> bool:
    """hit@k curves (k = 1..10) per system as a PNG; False when matplotlib is missing."""

    def draw(ax: Any) -> None:
        for name, s in report.systems.items():
            ax.plot(KS, [100 * h for h in s.hits], marker="o", label=f"{name} (MRR@10 "
                    f"{100 * s.mrr10:.1f})")
        ax.set_xlabel("k (distinct articles retrieved)")
        ax.set_ylabel("hit@k (% of questions with a gold article in the top k)")
        ax.set_xticks(KS)
        ax.set_ylim(0, 100)
        ax.legend(loc="lower right")
        ax.set_title(f"Article-level hit@k, {report.counts.get('questions', 0)} questions, "
                     f"{report.counts.get('articles', 0)} articles", fontsize=10)

    return _plot(path, draw)


def write_coverage_chart(calibration: Calibration, path: Path) -> bool:
    """The risk-coverage curve (support among answered vs. the share answered, sweeping the
    confidence threshold) as a PNG; False when matplotlib is missing."""
    points = calibration.curve()

    def draw(ax: Any) -> None:
        ax.plot([100 * p.coverage for p in points], [100 * p.accuracy for p in points],
                marker=".", label=f"answerable questions ({len(calibration.answerable)})")
        if calibration.threshold is not None:
            at = coverage_at(calibration.threshold, *zip(*calibration.answerable, strict=True))
            ax.plot([100 * at.coverage], [100 * at.accuracy], marker="o", linestyle="",
                    label=f"product threshold {calibration.threshold:.2f}")
        ax.set_xlabel("answered (% of answerable questions, confidence >= threshold)")
        ax.set_ylabel("support among the answered (%)")
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.legend(loc="upper right")
        ax.set_title(f"Risk-coverage (ECE {calibration.ece():.3f}, {CALIBRATION_BINS} bins)",
                     fontsize=10)

    return _plot(path, draw)


def _command_line(command: str) -> str:
    """The command that produced the report: given, else this process's `newsqa ...`."""
    if command or Path(sys.argv[0]).name != "newsqa":
        return command
    return " ".join(["newsqa", *sys.argv[1:]])


def write_report(report: EvalReport, directory: Path, *, command: str = "",
                 details: bool = False, notes: Sequence[str] = ()) -> Path:
    """Write eval.md, eval.json, the hit@k chart (eval-hitk.png) and, when answers carried a
    confidence, the risk-coverage chart (eval-coverage.png) into `directory`.

    Question texts, answers and replies are left out of eval.json unless `details` (so that a
    report can be committed without copying the evaluation data).
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    chart = directory / "eval-hitk.png"
    has_chart = write_chart(report, chart)
    coverage = directory / "eval-coverage.png"
    calibration = report.calibration
    has_coverage = bool(calibration and calibration.answerable) and write_coverage_chart(
        calibration, coverage)
    data = report.to_dict()
    if not details:
        for row in data["questions"]:
            for key in EVAL_TEXT_KEYS:
                row.pop(key, None)
    (directory / "eval.json").write_text(
        json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    path = directory / "eval.md"
    path.write_text(report_markdown(report, chart.name if has_chart else None,
                                    command=_command_line(command), notes=notes,
                                    coverage_name=coverage.name if has_coverage else None),
                    encoding="utf-8")
    return path
