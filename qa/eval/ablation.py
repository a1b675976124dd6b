"""The answerer ablation of `newsqa eval --ablation`: variants of the product's answerer,
each built from the product's own parts (qa.reading.ReadingAnswerer's switches), answered
through the one eval loop (qa.eval.run).

A variant's `build(qa)` returns how to ask (NewsQA.ask's signature), or None for the product
itself (its answers are the ones the eval already measured). The variant that `calibrates`
never refuses for its confidence: its answers give the confidence curve.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qa.api import NewsQA
from qa.errors import EvalError
from qa.pipeline import Pipeline, Request, assemble
from qa.reading import ReadingAnswerer
from qa.records import Answer

Asker = Callable[..., Answer]


@dataclass(frozen=True)
class Variant:
    """One row of the ablation: its name, what it leaves out, and how it is built."""

    name: str
    description: str
    build: Callable[[NewsQA], Asker | None]
    calibrates: bool = False


def asker(pipeline: Pipeline) -> Asker:
    """NewsQA.ask over another pipeline: the same request, the same dates."""

    def ask(question: str, **options: Any) -> Answer:
        return pipeline.ask(Request.make(question, **options))

    return ask


def offline_pipeline(qa: NewsQA, *, with_reader: bool) -> Pipeline:
    """The offline pipeline over `qa`'s retrieval, quotes and answerers, assembled as the
    product assembles it (with or without the reader)."""
    if with_reader and qa.reader is None:
        raise EvalError("the ablation's reader variants need the reader (NEWSQA_READER=true)")
    return assemble(retriever=qa.retriever_engine, embedder=qa.embedder,
                    extractive=qa.extractive, generation=qa.generation,
                    quotes=qa.quote_index, reader=qa.reader if with_reader else None)


def reading_variant(**switches: bool) -> Callable[[NewsQA], Asker]:
    """A builder of the product's pipeline whose ReadingAnswerer has `switches` set
    (use_gate, short_answers, refuse)."""

    def build(qa: NewsQA) -> Asker:
        pipeline = offline_pipeline(qa, with_reader=True)
        pipeline.answerer = ReadingAnswerer(qa.extractive, qa.reader, quotes=qa.quote_index,
                                            **switches)
        return asker(pipeline)

    return build


def _extractive(qa: NewsQA) -> Asker:
    return asker(offline_pipeline(qa, with_reader=False))


def _product(qa: NewsQA) -> None:
    return None


VARIANTS: tuple[Variant, ...] = (
    Variant("extractive", "the extractive answerer before the reader (hand-set span weights, "
            "the coverage gate's refusals, no short answers)", _extractive),
    Variant("no refusal", "the product's settings run again to sweep the confidence "
            "threshold: reader ranking, short answer, coverage gate, no refusal for low "
            "confidence", reading_variant(refuse=False), calibrates=True),
    Variant("no gate", "the reader without the extractive coverage gate (missing names, "
            "absent key words) and without refusal for low confidence",
            reading_variant(use_gate=False)),
    Variant("calibrated refusal", "the product plus refusal below the reader's calibrated "
            "threshold (refuse=True; off by default because the quality floor lost support "
            "with it)", reading_variant(refuse=True)),
    Variant("calibrated refusal, no gate", "refusal below the reader's threshold instead of "
            "the coverage gate", reading_variant(refuse=True, use_gate=False)),
    Variant("no answerer", "the lead span's short answer from the ranker's own answer head, "
            "not the answerer adapter (whose margin then leaves the confidence)",
            reading_variant(answerer=False)),
    Variant("no short lead", "the reader, the reply not led by the short answer (its "
            "citation still marks it, so short-answer F1 is unchanged)",
            reading_variant(short_answers=False)),
    Variant("full", "the product: reader ranking, short answer first, coverage gate; no "
            "refusal for low confidence (qa.reading.REFUSE_BELOW_THRESHOLD, chosen on the "
            "quality floor)", _product),
)


def ablation_variants() -> tuple[Variant, ...]:
    """The variants in the order the report shows them, the full product last."""
    return VARIANTS
