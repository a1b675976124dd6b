"""The coverage gate: do the retrieved passages speak about what the question asks?

Both answerers refuse through it, and the pipeline asks it before any answerer runs, so a
question the passages cannot answer never reaches a chat model. The verdict comes from the
extractive analysis: names and quoted terms of the question must occur in the passages, most
of its key words too (unless a span is a close paraphrase), and the best span must be close
enough to the question by similarity or by key words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from index.text import stem
from qa.citations import not_found
from qa.question import QuestionInfo
from qa.records import Answer, Passage
from qa.text import name_matches, words

#: Not found when the best span similarity is below RELEVANCE_BAR and the top span holds less
#: than KEYWORD_BAR of the question's (rarity-weighted) words, or when under STEM_COVERAGE_BAR
#: of the question's words occur in the passages at all (calibrated in qa/benchmark.py)...
RELEVANCE_BAR = 0.50
KEYWORD_BAR = 0.40
STEM_COVERAGE_BAR = 0.70
#: ... unless a span is at least this similar to the question (paraphrase: "offensive" for
#: "operation").
STRONG_SEMANTIC = 0.55


@dataclass(frozen=True)
class RefusalBars:
    """The gate's thresholds (see the constants above)."""

    relevance: float = RELEVANCE_BAR
    keyword: float = KEYWORD_BAR
    stem_coverage: float = STEM_COVERAGE_BAR
    strong_semantic: float = STRONG_SEMANTIC


@dataclass(frozen=True)
class Coverage:
    """Whether the passages can answer: found, and a reason when they cannot."""

    found: bool
    reason: str = ""
    best_semantic: float = 0.0


def _passage_words(passages: Sequence[Passage]) -> list[str]:
    """Lower-cased words of the passages' texts and their articles' titles."""
    pool: list[str] = []
    for passage in passages:
        pool.extend(w.lower for w in words(passage.chunk.text))
        pool.extend(w.lower for w in words(passage.article.title))
    return pool


def _absent_terms(info: QuestionInfo, pool: list[str]) -> str:
    """Why the passages miss a name or a quoted term of the question ("" when they do not)."""
    missing = [name for name in info.names if not name_matches(name, pool)]
    if missing:
        return (f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not mentioned in "
                "the passages found")
    joined = " ".join(pool)
    for term in info.quoted:
        if " ".join(w.lower for w in words(term)) not in joined:
            return f"“{term}” does not occur in the passages found"
    return ""


def judge_coverage(info: QuestionInfo, passages: Sequence[Passage], *, best_semantic: float,
                   top_keyword: float, bars: RefusalBars) -> Coverage:
    """The verdict from the question, the passages, the best span similarity and the top
    span's keyword share."""
    pool = _passage_words(passages)
    absent = _absent_terms(info, pool)
    if absent:
        return Coverage(False, absent, best_semantic)
    if info.stems:
        present = {stem(w) for w in pool}
        share = sum(s in present for s in info.stems) / len(info.stems)
        if share < bars.stem_coverage and best_semantic < bars.strong_semantic:
            return Coverage(False, "most key words of the question do not occur in the "
                                   "passages found", best_semantic)
    if best_semantic < bars.relevance and top_keyword < bars.keyword:
        return Coverage(False, "no passage is close enough to the question", best_semantic)
    return Coverage(True, "", best_semantic)


class GatedAnalysis(Protocol):
    """What the gate reads from an analysis: its coverage verdict and step timings."""

    coverage: Coverage
    timings: dict[str, float]


class Analyser(Protocol):
    """Scores the passages for a question (the extractive answerer is one)."""

    def analyse(self, question: str, passages: Sequence[Passage], *,
                query_embedding: Any = None) -> Any: ...


def refusal(question: str, passages: Sequence[Passage], analysis: GatedAnalysis, *,
            answerer: str) -> Answer | None:
    """The "not found" answer when the analysis says the passages cannot answer, else None."""
    if analysis.coverage.found:
        return None
    return not_found(question, passages, analysis.coverage.reason, answerer=answerer,
                     timings=analysis.timings)


@dataclass(frozen=True)
class Verdict:
    """The gate's decision: the analysis it rests on and the refusal (None = answer)."""

    analysis: Any
    refused: Answer | None = None

    @property
    def admitted(self) -> bool:
        return self.refused is None


class Gate:
    """Analyses the passages for a question and refuses when they do not cover it."""

    def __init__(self, analyser: Analyser) -> None:
        self.analyser = analyser

    def check(self, question: str, passages: Sequence[Passage], *, answerer: str,
              query_embedding: Any = None) -> Verdict:
        analysis = self.analyser.analyse(question, passages, query_embedding=query_embedding)
        return Verdict(analysis, refusal(question, passages, analysis, answerer=answerer))
