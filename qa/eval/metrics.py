"""The one home of evaluation metrics: answer normalisation, SQuAD EM/F1, rank metrics,
calibration (ECE, risk-coverage), percentiles.

Every number the eval, the benchmarks and the quality floor report is computed here, so that
hit@k or "the answer is supported" means the same thing everywhere.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_DASHES = frozenset("-‐‑‒–—―/")

# --- answers -------------------------------------------------------------------------------


def normalise_answer(text: str) -> str:
    """SQuAD-style: lower-case, punctuation (typographic quotes too) and a/an/the removed."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if ch in _DASHES else ch for ch in text)
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def padded(text: str) -> str:
    """The normalised text between spaces: the form whole-word answer matching searches."""
    return f" {normalise_answer(text)} "


def contains_answer(answer: str, text: str) -> bool:
    """True when the normalised answer occurs as whole words in the normalised text."""
    needle = normalise_answer(answer)
    if not needle:
        return False
    return f" {needle} " in padded(text)


def holders_of_answer(answer: str, padded_bodies: Mapping[str, str]) -> set[str]:
    """Keys of the bodies (already `padded`) that contain the normalised answer as words."""
    needle = normalise_answer(answer)
    if not needle:
        return set()
    return {key for key, body in padded_bodies.items() if f" {needle} " in body}


def squad_em(prediction: str, gold: str) -> float:
    """1.0 when prediction and gold are equal after normalisation (SQuAD EM)."""
    return float(normalise_answer(prediction) == normalise_answer(gold))


def squad_f1(prediction: str, gold: str) -> float:
    """SQuAD token F1 between prediction and gold after normalisation (0.0 .. 1.0)."""
    predicted, expected = normalise_answer(prediction).split(), normalise_answer(gold).split()
    if not predicted or not expected:
        return float(predicted == expected)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


# --- calibration ---------------------------------------------------------------------------


def expected_calibration_error(confidences: Sequence[float], outcomes: Sequence[bool],
                               bins: int = 10) -> float:
    """ECE: over equal-width confidence bins, the size-weighted gap between the mean
    confidence and the fraction of true outcomes (NaN for no values; 1.0 falls in the top bin)."""
    if len(confidences) != len(outcomes):
        raise ValueError("confidences and outcomes differ in length")
    if not confidences:
        return math.nan
    members: list[list[int]] = [[] for _ in range(bins)]
    for index, confidence in enumerate(confidences):
        if not 0.0 <= confidence <= 1.0:
            raise ValueError(f"confidence {confidence} lies outside [0, 1]")
        members[min(int(confidence * bins), bins - 1)].append(index)
    gap = 0.0
    for chosen in members:
        if chosen:
            mean_confidence = sum(confidences[i] for i in chosen) / len(chosen)
            accuracy = sum(bool(outcomes[i]) for i in chosen) / len(chosen)
            gap += len(chosen) * abs(mean_confidence - accuracy)
    return gap / len(confidences)


@dataclass(frozen=True)
class CoveragePoint:
    """At one confidence threshold: how many answer (confidence >= threshold), what share of
    all that is, and how many of those answered are right (NaN when none answer)."""

    threshold: float
    answered: int
    coverage: float
    accuracy: float


def coverage_at(threshold: float, confidences: Sequence[float],
                outcomes: Sequence[bool]) -> CoveragePoint:
    """The answered share and the accuracy among the answered at `threshold`."""
    answered = [bool(o) for c, o in zip(confidences, outcomes, strict=True) if c >= threshold]
    total = len(confidences)
    return CoveragePoint(threshold=threshold, answered=len(answered),
                         coverage=len(answered) / total if total else math.nan,
                         accuracy=sum(answered) / len(answered) if answered else math.nan)


def risk_coverage(confidences: Sequence[float], outcomes: Sequence[bool],
                  thresholds: Iterable[float] | None = None) -> list[CoveragePoint]:
    """The risk-coverage curve: one point per threshold (default: every distinct confidence,
    highest first, so coverage grows along the list)."""
    chosen = sorted(set(confidences), reverse=True) if thresholds is None else thresholds
    return [coverage_at(t, confidences, outcomes) for t in chosen]


# --- rankings ------------------------------------------------------------------------------


def distinct_in_order(keys: Iterable[str]) -> list[str]:
    """Keys with duplicates removed, first occurrence kept: passages -> article ranking."""
    return list(dict.fromkeys(keys))


def gold_rank(ranked: Sequence[str], gold: Iterable[str]) -> int | None:
    """1-based rank of the first gold article in a distinct-article ranking (None: absent)."""
    gold_set = set(gold)
    for index, key in enumerate(ranked, 1):
        if key in gold_set:
            return index
    return None


def rank_hit(rank: int | None, k: int) -> float:
    """1.0 when a gold rank lies within the first k, else 0.0."""
    return 1.0 if rank is not None and rank <= k else 0.0


def rank_reciprocal(rank: int | None, k: int = 10) -> float:
    """1/rank when the gold rank lies within the first k, else 0.0."""
    return 1.0 / rank if rank is not None and rank <= k else 0.0


def hit_at_k(ranked: Sequence[str], gold: Iterable[str], k: int) -> float:
    """1.0 when a gold article is among the first k of the ranking, else 0.0."""
    return rank_hit(gold_rank(ranked, gold), k)


def reciprocal_rank(ranked: Sequence[str], gold: Iterable[str], k: int = 10) -> float:
    """1/rank of the first gold article within the first k, else 0.0 (MRR@k per question)."""
    return rank_reciprocal(gold_rank(ranked, gold), k)


def hit_rate(ranks: Sequence[int | None], k: int) -> float:
    """hit@k over questions, from their gold ranks (NaN for no questions)."""
    if not ranks:
        return math.nan
    return sum(rank_hit(rank, k) for rank in ranks) / len(ranks)


def mean_reciprocal_rank(ranks: Sequence[int | None], k: int = 10) -> float:
    """MRR@k over questions, from their gold ranks (NaN for no questions)."""
    if not ranks:
        return math.nan
    return sum(rank_reciprocal(rank, k) for rank in ranks) / len(ranks)


# --- latencies -----------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def percentile_ms(seconds: Sequence[float], q: float) -> float:
    """The q-th percentile of durations in seconds, in milliseconds (NaN for none)."""
    return 1000.0 * percentile(seconds, q) if seconds else math.nan
