"""`newsqa train reader`: mine candidate spans, train the cross-encoder reader, calibrate, save.

Data: ../shared/eval/realtimeqa-train/ only (never the 2022 dev set). The HELD_OUT_WEEKS are
never trained on; they select the variant, calibrate the confidence and give the reported
figures. Per question, the candidates are spans (`qa.text.segment`) of its evidence articles (a
span is positive when it contains the normalised answer; the other spans of the same articles are
hard negatives) and spans of the same week's other questions' articles, at most CANDIDATES, the
most word-overlapping first. The LoRA variant learns span selection (a group loss over the
candidates) and the short answer (start/end cross-entropy on the positives where the answer is
located) together; the frozen variant learns span selection only. Variants compared on the
held-out weeks (hit@1 of an answering span among the candidates): LoRA adapter + heads, frozen
encoder + head, and today's extractive scorer on the same spans. Beside the chosen reader a
second adapter, the answerer, learns only the short answer (and "no answer" on spans without
it); it is kept when its short answers beat the reader's own there. The chosen reader's confidence
is calibrated on the held-out answerable cases and their unanswerable variants (the same mining
with every article containing the answer removed). `python -m qa.eval.train_reader --held-out`
measures the committed weights on the held-out weeks without training (`evaluate_reader`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.records import ArticleMeta, Chunk
from qa.errors import EvalError
from qa.eval.data import HELD_OUT_WEEKS, CorpusDoc, EvalQuestion, load_corpus, load_queries
from qa.eval.metrics import (
    contains_answer,
    expected_calibration_error,
    normalise_answer,
    squad_em,
    squad_f1,
)
from qa.reader import (
    FEATURES,
    WEIGHTS_DIR,
    Calibrator,
    PairPass,
    ReaderConfig,
    SpanReading,
    answer_logits,
    answerer_state,
    build_answer_head,
    build_encoder,
    confidence_features,
    encode_pairs,
    load_answerer,
    pair_logits,
    read_pairs,
    refine_answer,
    save_weights,
    span_logits,
)
from qa.records import Passage
from qa.text import content_stems, segment, words

DEFAULT_TRAIN_DIR = Path("../shared/eval/realtimeqa-train")
SEED = 12
CANDIDATES = 16
POSITIVES = 3
HARD_NEGATIVES = 9
LORA_LR = 3e-4
HEAD_LR = 1e-3
#: The short-answer loss's weight beside the group loss.
ANSWER_LOSS_WEIGHT = 1.0
#: The share of the short-answer loss's gradient that reaches the encoder (the head gets all
#: of it). Measured: at 1.0 the answer loss swamped span selection (LoRA held-out hit@1 38.8 %
#: against 50.7 % without it, below the frozen variant's 40.3 %).
ANSWER_ENCODER_GRADIENT = 0.1
FROZEN_EPOCHS = 20
#: Epochs of the short-answer adapter over the training questions' positive candidates.
ANSWERER_EPOCHS = 3
#: Candidates without the answer per question that teach the answerer "no answer here".
ANSWERER_NEGATIVES = 2
#: Refusal threshold: the highest with at most this share of answerable cases refused.
FALSE_REFUSALS = 0.10
CALIBRATION_L2 = 1.0
ECE_BINS = 10
#: Calibrator features that may only raise the confidence.
MONOTONE = frozenset({"top_score", "margin", "top_probability", "answerer_margin"})
#: Measured: with another process busy on the second core, 2 torch threads spin-wait (150 LoRA
#: steps took 45 s alone, then about 3 s a step once a neighbour started); 1 thread does not.
TORCH_THREADS = 1
Progress = Callable[[str, int, int], None] | None


@dataclass(frozen=True)
class Candidate:
    """A span of a corpus doc, labelled by whether it holds the normalised answer."""

    doc_id: str
    start: int
    end: int
    text: str
    positive: bool


@dataclass(frozen=True)
class Example:
    question: EvalQuestion
    candidates: tuple[Candidate, ...]


@dataclass(frozen=True)
class Trained:
    """A trained variant: tokenizer, encoder (with adapter), span head, answer head or None."""

    tokenizer: Any
    encoder: Any
    head: Any
    answer_head: Any
    config: ReaderConfig

    @property
    def parts(self) -> tuple[Any, Any, Any, Any]:
        return self.tokenizer, self.encoder, self.head, self.answer_head


@dataclass(frozen=True)
class TrainSettings:
    candidates: int = CANDIDATES
    lora_epochs: int = 1
    answerer_epochs: int = ANSWERER_EPOCHS
    frozen_epochs: int = FROZEN_EPOCHS
    max_steps: int | None = None
    seed: int = SEED
    threads: int = TORCH_THREADS

    def to_dict(self) -> dict[str, Any]:
        return {"candidates": self.candidates, "lora_epochs": self.lora_epochs,
                "frozen_epochs": self.frozen_epochs, "max_steps": self.max_steps,
                "answerer_epochs": self.answerer_epochs,
                "seed": self.seed, "threads": self.threads, "lora_lr": LORA_LR,
                "head_lr": HEAD_LR, "positives": POSITIVES, "hard_negatives": HARD_NEGATIVES,
                "answer_loss_weight": ANSWER_LOSS_WEIGHT,
                "answer_encoder_gradient": ANSWER_ENCODER_GRADIENT,
                "false_refusals": FALSE_REFUSALS,
                "calibration_l2": CALIBRATION_L2}


# --- data ----------------------------------------------------------------------------------


def load_training_data(train_dir: Path) -> tuple[dict[str, CorpusDoc], list[EvalQuestion], str]:
    """The corpus by id, the questions, and a sha256 over both files (for the metadata)."""
    corpus_path, queries_path = train_dir / "corpus.jsonl", train_dir / "queries_train.jsonl"
    for path in (corpus_path, queries_path):
        if not path.is_file():
            raise EvalError(f"{path}: training data file missing")
    docs = {d.id: d for d in load_corpus(corpus_path)}
    questions = load_queries(queries_path, set(docs))
    digest = hashlib.sha256()
    for path in (corpus_path, queries_path):
        digest.update(path.read_bytes())
    return docs, questions, digest.hexdigest()


@functools.lru_cache(maxsize=4096)
def _segments(doc: CorpusDoc) -> tuple[tuple[int, int, str, frozenset[str]], ...]:
    """A doc's spans with their content stems, computed once per doc."""
    return tuple((s, e, doc.body[s:e], frozenset(content_stems(doc.body[s:e])))
                 for s, e in segment(doc.body))


def _spans(doc: CorpusDoc, answer: str) -> list[tuple[Candidate, frozenset[str]]]:
    return [(Candidate(doc.id, s, e, text, contains_answer(answer, text)), stems)
            for s, e, text, stems in _segments(doc)]


def _by_overlap(question: str, spans: list[tuple[Candidate, frozenset[str]]]
                ) -> list[Candidate]:
    wanted = set(content_stems(question))
    ranked = sorted(spans, key=lambda cs: (-len(wanted & cs[1]), cs[0].doc_id, cs[0].start))
    return [c for c, _ in ranked]


def mine(question: EvalQuestion, docs: dict[str, CorpusDoc], week_docs: Sequence[str],
         size: int = CANDIDATES) -> Example | None:
    """The question's candidates (positives, same-article and same-week negatives), or None
    when no span of its evidence holds the answer."""
    own = [cs for g in question.gold for cs in _spans(docs[g], question.answer)]
    positives = _by_overlap(question.query, [cs for cs in own if cs[0].positive])[:POSITIVES]
    if not positives:
        return None
    hard = _by_overlap(question.query, [cs for cs in own if not cs[0].positive])
    hard = hard[:HARD_NEGATIVES]
    others = [cs for d in week_docs if d not in question.gold
              for cs in _spans(docs[d], question.answer) if not cs[0].positive]
    rest = size - len(positives) - len(hard)
    chosen = positives + hard + _by_overlap(question.query, others)[:max(rest, 0)]
    rng = random.Random(f"{SEED}:{question.id}")
    rng.shuffle(chosen)
    return Example(question, tuple(chosen[:size]))


def mine_unanswerable(question: EvalQuestion, docs: dict[str, CorpusDoc],
                      week_docs: Sequence[str], size: int = CANDIDATES) -> Example | None:
    """The question's unanswerable variant: the same week's articles, every one that contains
    the normalised answer (its evidence included) removed, the most overlapping spans first."""
    others = [cs for d in week_docs if d not in question.gold
              and not contains_answer(question.answer, docs[d].body)
              for cs in _spans(docs[d], question.answer)]
    chosen = _by_overlap(question.query, others)[:size]
    return Example(question, tuple(chosen)) if chosen else None


def _week_docs(questions: Sequence[EvalQuestion]) -> dict[str, list[str]]:
    week_docs: dict[str, list[str]] = defaultdict(list)
    for q in questions:
        week_docs[q.week].extend(g for g in q.gold if g not in week_docs[q.week])
    return week_docs


def build_examples(docs: dict[str, CorpusDoc], questions: Sequence[EvalQuestion],
                   size: int, progress: Progress = None, *, unanswerable: bool = False
                   ) -> list[Example]:
    """The mined examples of `questions` (or their unanswerable variants)."""
    week_docs = _week_docs(questions)
    miner = mine_unanswerable if unanswerable else mine
    examples = []
    for n, q in enumerate(questions, 1):
        example = miner(q, docs, week_docs[q.week], size)
        if example is not None:
            examples.append(example)
        if progress:
            progress("mine unanswerable" if unanswerable else "mine candidates", n,
                     len(questions))
    return examples


def split(examples: Sequence[Example]) -> tuple[list[Example], list[Example]]:
    """(training, held-out): held-out = the HELD_OUT_WEEKS, whole weeks."""
    held = set(HELD_OUT_WEEKS)
    return ([e for e in examples if e.question.week not in held],
            [e for e in examples if e.question.week in held])


def locate_answer(answer: str, text: str) -> tuple[int, int] | None:
    """Char offsets of the first whole-word occurrence of the normalised answer in `text`
    (case, punctuation and articles ignored as in `normalise_answer`), or None."""
    needle = normalise_answer(answer).split()
    if not needle:
        return None
    pieces = [(token, w.start, w.end) for w in words(text)
              for token in normalise_answer(w.text).split()]
    tokens = [p[0] for p in pieces]
    for first in range(len(pieces) - len(needle) + 1):
        if tokens[first:first + len(needle)] == needle:
            return pieces[first][1], pieces[first + len(needle) - 1][2]
    return None


# --- training ------------------------------------------------------------------------------


def _group_loss(logits: Any, labels: Sequence[bool]) -> Any:
    """-log P(some positive) under a softmax over the question's candidates."""
    import torch

    mask = torch.tensor(labels, dtype=torch.bool)
    return torch.logsumexp(logits, 0) - torch.logsumexp(logits[mask], 0)


def answer_targets(encoded: PairPass, example: Example) -> list[tuple[int, int, int]]:
    """(row, start token, end token) of the answer in each positive candidate where it is
    located within the encoded (possibly truncated) span."""
    targets = []
    for row, candidate in enumerate(example.candidates):
        found = locate_answer(example.question.answer, candidate.text) if candidate.positive \
            else None
        if found is None:
            continue
        inside = encoded.span_tokens[row].numpy()
        starts, ends = encoded.offsets[row][:, 0], encoded.offsets[row][:, 1]
        first = np.flatnonzero(inside & (ends > found[0]))
        last = np.flatnonzero(inside & (starts < found[1]))
        if first.size and last.size and ends[inside].max() >= found[1] and first[0] <= last[-1]:
            targets.append((row, int(first[0]), int(last[-1])))
    return targets


def _answer_loss(answer_head: Any, encoded: PairPass, targets: list[tuple[int, int, int]],
                 gradient: float = ANSWER_ENCODER_GRADIENT, *, null: bool = False) -> Any:
    """Start/end cross-entropy at `targets` ((row, 0, 0) = "no answer" with `null`);
    `gradient` of it reaches the encoder."""
    import torch

    hidden = encoded.hidden
    scaled = hidden * gradient + hidden.detach() * (1 - gradient)
    start, end = answer_logits(answer_head, dataclasses.replace(encoded, hidden=scaled),
                               null=null)
    rows = torch.tensor([t[0] for t in targets])
    starts, ends = torch.tensor([t[1] for t in targets]), torch.tensor([t[2] for t in targets])
    cross = torch.nn.functional.cross_entropy
    return (cross(start[rows], starts) + cross(end[rows], ends)) / 2


def train_lora(examples: Sequence[Example], settings: TrainSettings,
               progress: Progress = None) -> Trained:
    """LoRA + span head + answer head, multi-task: group loss + start/end cross-entropy."""
    import torch

    torch.manual_seed(settings.seed)
    config = ReaderConfig(variant="lora", answer_head=True)
    tokenizer, encoder, head = build_encoder(config)
    answer_head = build_answer_head(encoder)
    params = [{"params": [p for p in encoder.parameters() if p.requires_grad], "lr": LORA_LR},
              {"params": [*head.parameters(), *answer_head.parameters()], "lr": HEAD_LR}]
    optimiser = torch.optim.AdamW(params, weight_decay=0.01)
    order = _order(examples, settings, settings.lora_epochs)
    encoder.train()
    for step, example in enumerate(order, 1):
        encoded = encode_pairs(tokenizer, encoder, example.question.query,
                               [c.text for c in example.candidates], config.max_length)
        loss = _group_loss(span_logits(head, encoded), [c.positive for c in example.candidates])
        targets = answer_targets(encoded, example)
        if targets:
            loss = loss + ANSWER_LOSS_WEIGHT * _answer_loss(answer_head, encoded, targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if progress:
            progress("train lora", step, len(order))
    encoder.eval()
    return Trained(tokenizer, encoder, head, answer_head, config)


def answerer_examples(examples: Sequence[Example], negatives: int = ANSWERER_NEGATIVES
                      ) -> list[Example]:
    """Each example cut down to its positive candidates (where the answerer learns the
    answer) and its first `negatives` others (where it learns "no answer")."""
    kept = []
    for example in examples:
        positives = tuple(c for c in example.candidates if c.positive)
        others = tuple(c for c in example.candidates if not c.positive)[:negatives]
        if positives:
            kept.append(Example(example.question, positives + others))
    return kept


def train_answerer(examples: Sequence[Example], settings: TrainSettings,
                   progress: Progress = None, on_epoch: Callable[[int, Trained], None] | None
                   = None) -> Trained:
    """A second LoRA adapter + answer head that only finds the short answer: trained on the
    positive candidates (start/end at the answer) and ANSWERER_NEGATIVES others (start = end
    = [CLS], "no answer") with the whole gradient in the encoder (the ranker's own head gets
    a tenth of it, which keeps span selection; docs/reader.md)."""
    import torch

    torch.manual_seed(settings.seed)
    config = ReaderConfig(variant="lora", answer_head=True)
    tokenizer, encoder, _ = build_encoder(config)
    answer_head = build_answer_head(encoder)
    params = [{"params": [p for p in encoder.parameters() if p.requires_grad], "lr": LORA_LR},
              {"params": list(answer_head.parameters()), "lr": HEAD_LR}]
    optimiser = torch.optim.AdamW(params, weight_decay=0.01)
    positives = answerer_examples(examples)
    epochs = settings.answerer_epochs
    order = _order(positives, settings, epochs)
    per_epoch = max(len(order) // epochs, 1)
    encoder.train()
    for step, example in enumerate(order, 1):
        encoded = encode_pairs(tokenizer, encoder, example.question.query,
                               [c.text for c in example.candidates], config.max_length)
        targets = answer_targets(encoded, example) + [
            (row, 0, 0) for row, c in enumerate(example.candidates) if not c.positive]
        if targets:
            loss = _answer_loss(answer_head, encoded, targets, gradient=1.0, null=True)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        if progress:
            progress("train answerer", step, len(order))
        if on_epoch and step % per_epoch == 0:
            encoder.eval()
            on_epoch(step // per_epoch, Trained(tokenizer, encoder, None, answer_head, config))
            encoder.train()
    encoder.eval()
    return Trained(tokenizer, encoder, None, answer_head, config)


def _order(examples: Sequence[Example], settings: TrainSettings, epochs: int) -> list[Example]:
    rng = random.Random(settings.seed)
    order: list[Example] = []
    for _ in range(epochs):
        batch = list(examples)
        rng.shuffle(batch)
        order.extend(batch)
    return order[:settings.max_steps] if settings.max_steps else order


def _pooled(tokenizer: Any, encoder: Any, example: Example, max_length: int) -> Any:
    import torch

    identity = torch.nn.Identity()
    with torch.no_grad():
        return pair_logits(tokenizer, encoder, _Unsqueezed(identity), example.question.query,
                           [c.text for c in example.candidates], max_length).clone()


class _Unsqueezed:
    """A head that keeps the pooled vectors (pair_logits squeezes the last axis)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, pooled: Any) -> Any:
        return self.inner(pooled).unsqueeze(-1)


def train_frozen(examples: Sequence[Example], settings: TrainSettings,
                 progress: Progress = None) -> Trained:
    """The frozen encoder + span head: pooled pair vectors computed once, the head trained on
    them. No short-answer head: it would need every token state of every candidate cached."""
    import torch

    torch.manual_seed(settings.seed)
    config = ReaderConfig(variant="frozen")
    tokenizer, encoder, head = build_encoder(config)
    encoder.eval()
    cached = []
    for n, example in enumerate(examples, 1):
        cached.append((_pooled(tokenizer, encoder, example, config.max_length),
                       [c.positive for c in example.candidates]))
        if progress:
            progress("encode (frozen)", n, len(examples))
    optimiser = torch.optim.AdamW(head.parameters(), lr=HEAD_LR * 3, weight_decay=0.01)
    epochs = 1 if settings.max_steps else settings.frozen_epochs
    rng = random.Random(settings.seed)
    for _ in range(epochs):
        rng.shuffle(cached)
        for pooled, labels in cached[:settings.max_steps or None]:
            loss = _group_loss(head(pooled).squeeze(-1), labels)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return Trained(tokenizer, encoder, head, None, config)


# --- measuring -----------------------------------------------------------------------------


def read_examples(model: Trained, examples: Sequence[Example], progress: Progress = None,
                  label: str = "held-out") -> list[list[SpanReading]]:
    """The reader's readings of every example's candidates (one encoder pass each)."""
    import torch

    readings = []
    for n, example in enumerate(examples, 1):
        with torch.inference_mode():
            readings.append(read_pairs(model.parts, example.question.query,
                                       [c.text for c in example.candidates],
                                       model.config.max_length))
        if progress:
            progress(f"read {label}", n, len(examples))
    return readings


Refine = Callable[[str, str, SpanReading], SpanReading]


def answerer_refine(answerer: Trained) -> Refine:
    """(question, span, reading) -> the reading with the trained answerer's short answer."""
    import torch

    parts = (answerer.tokenizer, answerer.encoder, answerer.answer_head)

    def refine(question: str, span: str, reading: SpanReading) -> SpanReading:
        with torch.inference_mode():
            return refine_answer(parts, question, span, reading, answerer.config.max_length)
    return refine


def refined_readings(refine: Refine, examples: Sequence[Example],
                     readings: Sequence[Sequence[SpanReading]], progress: Progress = None, *,
                     given_span: bool = True) -> list[list[SpanReading]]:
    """`readings` with `refine`'s short answer in each example's top span (as the product
    refines its lead span) and, with `given_span`, in its best-scored positive (the other
    span `reader_figures` reads a short answer from)."""
    refined = []
    for n, (example, reading) in enumerate(zip(examples, readings, strict=True), 1):
        changed = list(reading)
        positives = [i for i, c in enumerate(example.candidates) if c.positive]
        wanted = {_top(reading)} | ({max(positives, key=lambda i: reading[i].score)}
                                    if positives and given_span else set())
        for row in sorted(wanted):
            changed[row] = refine(example.question.query, example.candidates[row].text,
                                  reading[row])
        refined.append(changed)
        if progress:
            progress("read held-out (answerer)", n, len(examples))
    return refined


def _top(readings: Sequence[SpanReading]) -> int:
    return max(range(len(readings)), key=lambda i: readings[i].score)


def _short_answer(candidate: Candidate, reading: SpanReading) -> str:
    if reading.answer_start is None or reading.answer_end is None:
        return ""
    return candidate.text[reading.answer_start:reading.answer_end]


def reader_figures(examples: Sequence[Example], readings: Sequence[Sequence[SpanReading]]
                   ) -> dict[str, float]:
    """hit@1 of the top span; SQuAD EM / token F1 of its short answer against the gold answer
    (0 without one) and its support (it holds the normalised answer); the same EM / F1 on the
    best-scored positive candidate ('given the span')."""
    hits, em, f1, support, given_em, given_f1 = [], [], [], [], [], []
    for example, reading in zip(examples, readings, strict=True):
        top = _top(reading)
        gold = example.question.answer
        predicted = _short_answer(example.candidates[top], reading[top])
        hits.append(float(example.candidates[top].positive))
        em.append(squad_em(predicted, gold) if predicted else 0.0)
        f1.append(squad_f1(predicted, gold) if predicted else 0.0)
        support.append(float(bool(predicted) and contains_answer(gold, predicted)))
        positives = [i for i, c in enumerate(example.candidates) if c.positive]
        best = max(positives, key=lambda i: reading[i].score)
        given = _short_answer(example.candidates[best], reading[best])
        given_em.append(squad_em(given, gold) if given else 0.0)
        given_f1.append(squad_f1(given, gold) if given else 0.0)
    return {"hit_at_1": _mean(hits), "short_em": _mean(em), "short_f1": _mean(f1),
            "short_support": _mean(support),
            "short_em_given_span": _mean(given_em), "short_f1_given_span": _mean(given_f1)}


def held_out_examples(docs: dict[str, CorpusDoc], questions: Sequence[EvalQuestion],
                      limit: int | None = None, progress: Progress = None) -> list[Example]:
    """The HELD_OUT_WEEKS' mined examples, exactly as `train_reader` mines them (of the first
    `limit` held-out questions when given)."""
    held_q = [q for q in questions if q.week in set(HELD_OUT_WEEKS)][:limit]
    return split(build_examples(docs, held_q, CANDIDATES, progress))[1]


def evaluate_reader(train_dir: Path = DEFAULT_TRAIN_DIR, folder: Path = WEIGHTS_DIR, *,
                    limit: int | None = None, progress: Progress = None
                    ) -> dict[str, dict[str, float]]:
    """The committed weights under `folder` on the held-out weeks, no training: the figures
    of `reader_figures` as shipped, with the answerer's short answers by the typed decoding
    ("answerer typed") and with the ranker head's by its best pair ("ranker untyped").
    `python -m qa.eval.train_reader --held-out`."""
    from qa.reader import Reader

    docs, questions, _ = load_training_data(train_dir)
    held = held_out_examples(docs, questions, limit, progress)
    figures = {}
    for label, switches in (("shipped", {}),
                            ("answerer typed", {"typed_answerer": True}),
                            ("ranker untyped", {"typed_answers": False})):
        reader = Reader(folder, **switches)
        readings = refined_readings(reader.short_answer, held, [
            reader.read(e.question.query, [c.text for c in e.candidates]) for e in held])
        figures[label] = {**reader_figures(held, readings), "questions": float(len(held))}
    return figures


def _mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def extractive_hit_at_1(examples: Sequence[Example], docs: dict[str, CorpusDoc],
                        progress: Progress = None) -> float:
    """Today's scorer (qa.extractive) on the same candidates: one passage per span."""
    from index.embedding import Embedder
    from qa.extractive import ExtractiveAnswerer

    bodies = {}
    answerer = ExtractiveAnswerer(Embedder(), max_embedded=CANDIDATES,
                                  article_loader=lambda key: bodies.get(key))
    hits = 0
    for n, example in enumerate(examples, 1):
        passages = [_passage(c, docs[c.doc_id], i) for i, c in enumerate(example.candidates)]
        bodies.update({p.article.id: docs[c.doc_id] for p, c in
                       zip(passages, example.candidates, strict=True)})
        spans = answerer.analyse(example.question.query, passages).spans
        hits += bool(spans) and contains_answer(example.question.answer, spans[0].text)
        if progress:
            progress("measure extractive", n, len(examples))
    return hits / len(examples) if examples else 0.0


def _passage(candidate: Candidate, doc: CorpusDoc, ordinal: int) -> Passage:
    chunk = Chunk(doc.id, ordinal, candidate.start, candidate.end, candidate.text)
    meta = ArticleMeta(id=doc.id, title=doc.title, source=doc.source, published=doc.published)
    return Passage(chunk=chunk, article=meta, score=0.5)


def positive_rate(examples: Sequence[Example]) -> float:
    """Expected hit@1 of a random pick among the candidates."""
    rates = [sum(c.positive for c in e.candidates) / len(e.candidates) for e in examples]
    return sum(rates) / len(rates) if rates else 0.0


# --- calibration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CalibrationData:
    """One row per held-out case: its features, label (top span answers) and week."""

    features: np.ndarray
    labels: np.ndarray
    weeks: tuple[str, ...]
    answerable: np.ndarray


def calibration_data(answerable: Sequence[Example], answerable_readings: Sequence[Any],
                     unanswerable: Sequence[Example], unanswerable_readings: Sequence[Any]
                     ) -> CalibrationData:
    """Features and labels: 1 when the top span holds the answer, 0 for every unanswerable."""
    rows, labels, weeks, kinds = [], [], [], []
    for examples, readings, is_answerable in ((answerable, answerable_readings, True),
                                              (unanswerable, unanswerable_readings, False)):
        for example, reading in zip(examples, readings, strict=True):
            spans = [c.text for c in example.candidates]
            rows.append(confidence_features(example.question.query, spans, reading))
            labels.append(is_answerable and example.candidates[_top(reading)].positive)
            weeks.append(example.question.week)
            kinds.append(is_answerable)
    return CalibrationData(np.array(rows, dtype=np.float64), np.array(labels, dtype=np.float64),
                           tuple(weeks), np.array(kinds, dtype=bool))


def fit_logistic(features: np.ndarray, labels: np.ndarray, threshold: float = 0.5,
                 l2: float = CALIBRATION_L2) -> Calibrator:
    """L2-regularised logistic regression on standardised features (Newton steps, numpy).
    The reader-score features (`MONOTONE`) may not get a negative weight: a feature whose
    weight comes out negative is dropped (weight 0) and the rest refitted, so a higher reader
    score never lowers the confidence."""
    mean = features.mean(0)
    scale = features.std(0)
    scale[scale < 1e-9] = 1.0
    x = (features - mean) / scale
    free = list(range(features.shape[1]))
    while True:
        theta = _newton(x[:, free], labels, l2)
        negative = [f for f, w in zip(free, theta[:-1], strict=True)
                    if FEATURES[f] in MONOTONE and w < 0]
        if not negative:
            break
        free.remove(negative[0])
    weights = np.zeros(features.shape[1])
    weights[free] = theta[:-1]
    return Calibrator(mean=tuple(map(float, mean)), scale=tuple(map(float, scale)),
                      weights=tuple(map(float, weights)), bias=float(theta[-1]),
                      threshold=threshold)


def _newton(x: np.ndarray, labels: np.ndarray, l2: float) -> np.ndarray:
    """Weights then bias of an L2-penalised logistic regression (the bias unpenalised)."""
    x = np.hstack([x, np.ones((len(x), 1))])
    theta = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[-1] = 1e-6
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ theta, -60, 60)))
        gradient = x.T @ (p - labels) + penalty * theta
        hessian = (x.T * (p * (1 - p))) @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return theta


def _probabilities(calibrator: Calibrator, features: np.ndarray) -> np.ndarray:
    return np.array([calibrator.probability(row) for row in features])


def leave_one_week_out(data: CalibrationData) -> np.ndarray:
    """Each case's confidence from a calibrator fitted on the other weeks only (in-sample
    when there is a single week)."""
    out = np.zeros(len(data.labels))
    weeks = sorted(set(data.weeks))
    for week in weeks:
        held = np.array([w == week for w in data.weeks])
        train = ~held if len(weeks) > 1 else held
        calibrator = fit_logistic(data.features[train], data.labels[train])
        out[held] = _probabilities(calibrator, data.features[held])
    return out


def reliability(confidences: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
                ) -> tuple[float, list[dict[str, float]]]:
    """ECE over `bins` equal-width bins (qa.eval.metrics), and each non-empty bin's count,
    mean confidence and accuracy (the reliability plot's points)."""
    which = np.minimum((confidences * bins).astype(int), bins - 1)
    table = []
    for b in range(bins):
        chosen = which == b
        if chosen.any():
            table.append({"bin": b, "count": int(chosen.sum()),
                          "confidence": float(confidences[chosen].mean()),
                          "accuracy": float(labels[chosen].mean())})
    ece = expected_calibration_error([float(c) for c in confidences],
                                     [bool(v) for v in labels], bins)
    return float(ece), table


def refusal_threshold(answerable_confidences: np.ndarray,
                      false_refusals: float = FALSE_REFUSALS) -> float:
    """The highest threshold that refuses at most `false_refusals` of the answerable cases."""
    ordered = np.sort(answerable_confidences)
    allowed = int(np.floor(false_refusals * len(ordered) + 1e-9))
    return float(ordered[min(allowed, len(ordered) - 1)]) if len(ordered) else 0.0


def _refused(confidences: np.ndarray, threshold: float) -> float:
    return float((confidences < threshold).mean()) if len(confidences) else 0.0


def calibrate(data: CalibrationData) -> tuple[Calibrator, dict[str, Any]]:
    """The shipped calibrator (fitted on every held-out case) with its threshold, and the
    report: leave-one-week-out ECE and reliability bins, refusal rates at the threshold."""
    fitted = fit_logistic(data.features, data.labels)
    confidences = _probabilities(fitted, data.features)
    threshold = refusal_threshold(confidences[data.answerable])
    calibrator = fit_logistic(data.features, data.labels, threshold)
    lowo = leave_one_week_out(data)
    ece, bins = reliability(lowo, data.labels)
    in_sample_ece, _ = reliability(confidences, data.labels)
    report = {
        "features": list(FEATURES), "cases": len(data.labels),
        "answerable": int(data.answerable.sum()), "unanswerable": int((~data.answerable).sum()),
        "positive_rate": float(data.labels.mean()) if len(data.labels) else 0.0,
        "ece_leave_one_week_out": ece, "ece_in_sample": in_sample_ece, "reliability": bins,
        "false_refusals": _refused(confidences[data.answerable], threshold),
        "unanswerable_refused": _refused(confidences[~data.answerable], threshold),
        "false_refusals_leave_one_week_out": _refused(lowo[data.answerable], threshold),
        "unanswerable_refused_leave_one_week_out": _refused(lowo[~data.answerable], threshold),
    }
    return calibrator, report


def plot_reliability(report: dict[str, Any], path: Path) -> None:
    """The reliability plot (mean confidence vs accuracy per bin) as a PNG via matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = report["reliability"]
    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    axis.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o",
              label=f"reader (ECE {report['ece_leave_one_week_out']:.3f}, LOWO)")
    for b in bins:
        axis.annotate(str(b["count"]), (b["confidence"], b["accuracy"]), fontsize=7,
                      textcoords="offset points", xytext=(4, -10))
    axis.set(xlabel="confidence (leave-one-week-out)", ylabel="share whose top span answers",
             xlim=(0, 1), ylim=(0, 1), title="Reader confidence, held-out training weeks")
    axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


# --- the command ---------------------------------------------------------------------------


def _mined(docs: dict[str, CorpusDoc], questions: list[EvalQuestion], limit: int | None,
           settings: TrainSettings, progress: Progress
           ) -> tuple[list[Example], list[Example], list[Example]]:
    """(training, held-out answerable, held-out unanswerable) examples."""
    held_weeks = set(HELD_OUT_WEEKS)
    train_q = [q for q in questions if q.week not in held_weeks]
    held_q = [q for q in questions if q.week in held_weeks]
    if limit:
        train_q, held_q = train_q[:limit], held_q[:limit]
    training, _ = split(build_examples(docs, train_q, settings.candidates, progress))
    _, held = split(build_examples(docs, held_q, settings.candidates, progress))
    kept = {e.question.id for e in held}
    unanswerable = [e for e in build_examples(docs, held_q, settings.candidates, progress,
                                              unanswerable=True) if e.question.id in kept]
    return training, held, unanswerable


def train_reader(train_dir: Path = DEFAULT_TRAIN_DIR, out: Path = WEIGHTS_DIR, *,
                 limit: int | None = None, variants: Sequence[str] = ("lora", "frozen"),
                 baseline: bool | None = None, answerer_wanted: bool = True,
                 progress: Progress = None) -> dict[str, Any]:
    """Train the variants, measure them and today's scorer (skipped by default in a --limit
    run) on the held-out weeks, calibrate the best one's confidence, train the short-answer
    adapter beside it (kept when it beats the ranker's own short answers on the held-out
    weeks), save them under `out`; returns the metadata."""
    import torch

    started_all = time.perf_counter()
    settings = TrainSettings(max_steps=1 if limit else None)
    torch.set_num_threads(settings.threads)
    docs, questions, data_hash = load_training_data(train_dir)
    training, held, unanswerable = _mined(docs, questions, limit, settings, progress)
    if not training or not held:
        raise EvalError(f"{train_dir}: no trainable questions (training {len(training)}, "
                        f"held-out {len(held)})")
    results, models, readings, trained_answerer = _train_variants(
        training, held, variants, settings, progress,
        answerer=answerer_wanted and "lora" in variants)
    if baseline if baseline is not None else limit is None:
        results["extractive"] = {"hit_at_1": extractive_hit_at_1(held, docs, progress)}
    results["random"] = {"hit_at_1": positive_rate(held)}
    best = max(variants, key=lambda v: results[v]["hit_at_1"])
    chosen = models[best]
    answerer = None
    if chosen.answer_head is not None and trained_answerer is not None:
        answerer, results["answerer"] = _measured_answerer(trained_answerer, chosen, held,
                                                           readings[best], progress)
        if results["answerer"]["short_f1"] <= results[best]["short_f1"]:
            answerer = None
    silent = read_examples(chosen, unanswerable, progress, "unanswerable")
    answerable_read = readings[best]
    if answerer is not None:
        refine = answerer_refine(answerer)
        answerable_read = refined_readings(refine, held, answerable_read, given_span=False)
        silent = refined_readings(refine, unanswerable, silent, given_span=False)
    calibrator, calibration = calibrate(
        calibration_data(held, answerable_read, unanswerable, silent))
    metadata = {"data_sha256": data_hash, "train_dir": str(train_dir), "limit": limit,
                "settings": settings.to_dict(), "seed": settings.seed,
                "held_out_weeks": list(HELD_OUT_WEEKS), "training_questions": len(training),
                "held_out_questions": len(held), "held_out": results, "chosen": best,
                "calibration": calibrator.to_dict(), "calibration_report": calibration,
                "total_seconds": round(time.perf_counter() - started_all, 1)}
    config = dataclasses.replace(chosen.config, answer_adapter=answerer is not None)
    metadata["answerer_kept"] = answerer is not None
    sha = save_weights(Path(out), chosen.encoder, chosen.head, config, metadata,
                       chosen.answer_head,
                       (answerer.encoder, answerer.answer_head) if answerer else None)
    return {**metadata, "weights_sha256": sha}


#: The answerer trained in the worker: its tensors (as numpy) and its training seconds.
BackgroundAnswerer = tuple[dict[str, np.ndarray], float]
Variants = tuple[dict[str, dict[str, float]], dict[str, Trained],
                 dict[str, list[list[SpanReading]]], BackgroundAnswerer | None]


def _train_variants(training: Sequence[Example], held: Sequence[Example],
                    variants: Sequence[str], settings: TrainSettings, progress: Progress, *,
                    answerer: bool = False) -> Variants:
    """Each variant trained and read on the held-out weeks: (figures, models, readings) by
    variant, in `variants` order, and with `answerer` the answerer's tensors. The frozen
    variant (beside another one) and the answerer train one after the other in a process of
    their own, on the machine's other core, while the LoRA ranker trains: they are
    independent of it (each seeds itself: same seed, same result)."""
    import concurrent.futures
    import multiprocessing

    results: dict[str, dict[str, float]] = {}
    models: dict[str, Trained] = {}
    readings: dict[str, list[list[SpanReading]]] = {}
    background = "frozen" in variants and len(variants) > 1
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        frozen = pool.submit(_frozen_job, training, held, settings) if background else None
        trained = pool.submit(answerer_job, training, settings) if answerer else None
        for variant in variants:
            if variant == "frozen" and frozen is not None:
                continue
            trainer = train_lora if variant == "lora" else train_frozen
            started = time.perf_counter()
            models[variant] = trainer(training, settings, progress)
            seconds = time.perf_counter() - started
            readings[variant] = read_examples(models[variant], held, progress, variant)
            results[variant] = {**reader_figures(held, readings[variant]),
                                "train_seconds": round(seconds, 1)}
        if frozen is not None:
            results["frozen"], head_state, readings["frozen"] = frozen.result()
            models["frozen"] = _frozen_model(head_state)
        answerer_result = trained.result() if trained is not None else None
    return ({v: results[v] for v in variants}, models, readings, answerer_result)


def _frozen_job(training: Sequence[Example], held: Sequence[Example], settings: TrainSettings
                ) -> tuple[dict[str, float], dict[str, np.ndarray], list[list[SpanReading]]]:
    """The frozen variant, trained and read in a worker process: its figures, its span
    head's tensors (as numpy) and its held-out readings."""
    import torch

    torch.set_num_threads(settings.threads)
    started = time.perf_counter()
    model = train_frozen(training, settings)
    seconds = time.perf_counter() - started
    read = read_examples(model, held)
    figures = {**reader_figures(held, read), "train_seconds": round(seconds, 1)}
    return figures, {k: v.detach().numpy() for k, v in model.head.state_dict().items()}, read


def _frozen_model(head_state: dict[str, np.ndarray]) -> Trained:
    """The frozen variant rebuilt from its span head's tensors."""
    import torch

    config = ReaderConfig(variant="frozen")
    tokenizer, encoder, head = build_encoder(config)
    head.load_state_dict({k: torch.from_numpy(v) for k, v in head_state.items()})
    encoder.eval()
    return Trained(tokenizer, encoder, head, None, config)


def answerer_job(training: Sequence[Example], settings: TrainSettings
                  ) -> BackgroundAnswerer:
    """The answerer, trained in a worker process: its tensors (as numpy) and seconds."""
    import torch

    torch.set_num_threads(settings.threads)
    started = time.perf_counter()
    model = train_answerer(training, settings)
    seconds = time.perf_counter() - started
    state = answerer_state(model.encoder, model.answer_head)
    return {k: v.numpy() for k, v in state.items()}, seconds


def _measured_answerer(trained: BackgroundAnswerer, ranker: Trained, held: Sequence[Example],
                       readings: Sequence[Sequence[SpanReading]], progress: Progress
                       ) -> tuple[Trained, dict[str, float]]:
    """The worker's answerer rebuilt, and its held-out figures (the ranker's top spans, its
    short answers)."""
    import torch

    state, seconds = trained
    config = ReaderConfig(variant="lora", answer_head=True)
    loaded = load_answerer(config, {k: torch.from_numpy(v) for k, v in state.items()})
    if loaded is None:
        raise EvalError("the answerer's worker returned no answer head")
    answerer = Trained(ranker.tokenizer, loaded[0], None, loaded[1], config)
    refined = refined_readings(answerer_refine(answerer), held, readings, progress)
    return answerer, {**reader_figures(held, refined), "train_seconds": round(seconds, 1)}


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m qa.eval.train_reader --held-out [--train-dir DIR]`: the committed weights'
    held-out figures as JSON (as shipped, and with either head's other decoding), no training."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m qa.eval.train_reader")
    parser.add_argument("--held-out", action="store_true", required=True,
                        help="evaluate the committed weights on the held-out weeks")
    parser.add_argument("--train-dir", type=Path, default=DEFAULT_TRAIN_DIR)
    parser.add_argument("--weights", type=Path, default=WEIGHTS_DIR)
    args = parser.parse_args(argv)
    from index.settings import apply_offline_env

    apply_offline_env()
    print(json.dumps(evaluate_reader(args.train_dir, args.weights), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
