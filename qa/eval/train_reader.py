"""`newsqa train reader`: mine candidate spans, train the cross-encoder reader, compare, save.

Data: ../shared/eval/realtimeqa-train/ only (never the 2022 dev set). The HELD_OUT_WEEKS are
never trained on; they select the variant and give the reported figures. Per question, the
candidates are spans (`qa.text.segment`) of its evidence articles (a span is positive when it
contains the normalised answer; the other spans of the same articles are hard negatives) and
spans of the same week's other questions' articles, at most CANDIDATES, the most word-overlapping
first. Variants compared on the held-out weeks (hit@1 of an answering span among the candidates):
LoRA adapter + head, frozen encoder + head, and today's extractive scorer on the same spans.
"""

from __future__ import annotations

import functools
import hashlib
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from index.records import ArticleMeta, Chunk
from qa.errors import EvalError
from qa.eval.data import HELD_OUT_WEEKS, CorpusDoc, EvalQuestion, load_corpus, load_queries
from qa.eval.metrics import contains_answer
from qa.reader import WEIGHTS_DIR, ReaderConfig, build_encoder, pair_logits, save_weights
from qa.records import Passage
from qa.text import content_stems, segment

DEFAULT_TRAIN_DIR = Path("../shared/eval/realtimeqa-train")
SEED = 12
CANDIDATES = 16
POSITIVES = 3
HARD_NEGATIVES = 9
LORA_LR = 3e-4
HEAD_LR = 1e-3
FROZEN_EPOCHS = 20
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
class TrainSettings:
    candidates: int = CANDIDATES
    lora_epochs: int = 1
    frozen_epochs: int = FROZEN_EPOCHS
    max_steps: int | None = None
    seed: int = SEED
    threads: int = TORCH_THREADS

    def to_dict(self) -> dict[str, Any]:
        return {"candidates": self.candidates, "lora_epochs": self.lora_epochs,
                "frozen_epochs": self.frozen_epochs, "max_steps": self.max_steps,
                "seed": self.seed, "threads": self.threads, "lora_lr": LORA_LR,
                "head_lr": HEAD_LR, "positives": POSITIVES, "hard_negatives": HARD_NEGATIVES}


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


def build_examples(docs: dict[str, CorpusDoc], questions: Sequence[EvalQuestion],
                   size: int, progress: Progress = None) -> list[Example]:
    week_docs: dict[str, list[str]] = defaultdict(list)
    for q in questions:
        week_docs[q.week].extend(g for g in q.gold if g not in week_docs[q.week])
    examples = []
    for n, q in enumerate(questions, 1):
        example = mine(q, docs, week_docs[q.week], size)
        if example is not None:
            examples.append(example)
        if progress:
            progress("mine candidates", n, len(questions))
    return examples


def split(examples: Sequence[Example]) -> tuple[list[Example], list[Example]]:
    """(training, held-out): held-out = the HELD_OUT_WEEKS, whole weeks."""
    held = set(HELD_OUT_WEEKS)
    return ([e for e in examples if e.question.week not in held],
            [e for e in examples if e.question.week in held])


# --- training ------------------------------------------------------------------------------


def _group_loss(logits: Any, labels: Sequence[bool]) -> Any:
    """-log P(some positive) under a softmax over the question's candidates."""
    import torch

    mask = torch.tensor(labels, dtype=torch.bool)
    return torch.logsumexp(logits, 0) - torch.logsumexp(logits[mask], 0)


def train_lora(examples: Sequence[Example], settings: TrainSettings,
               progress: Progress = None) -> tuple[Any, Any, Any, ReaderConfig]:
    import torch

    torch.manual_seed(settings.seed)
    config = ReaderConfig(variant="lora")
    tokenizer, encoder, head = build_encoder(config)
    params = [{"params": [p for p in encoder.parameters() if p.requires_grad], "lr": LORA_LR},
              {"params": head.parameters(), "lr": HEAD_LR}]
    optimiser = torch.optim.AdamW(params, weight_decay=0.01)
    order = _order(examples, settings, settings.lora_epochs)
    encoder.train()
    for step, example in enumerate(order, 1):
        logits = pair_logits(tokenizer, encoder, head, example.question.query,
                             [c.text for c in example.candidates], config.max_length)
        loss = _group_loss(logits, [c.positive for c in example.candidates])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if progress:
            progress("train lora", step, len(order))
    encoder.eval()
    return tokenizer, encoder, head, config


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
                 progress: Progress = None) -> tuple[Any, Any, Any, ReaderConfig]:
    """The frozen encoder + head: pooled pair vectors computed once, the head trained on them."""
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
    return tokenizer, encoder, head, config


# --- measuring -----------------------------------------------------------------------------


def reader_hit_at_1(model: tuple[Any, Any, Any, ReaderConfig], examples: Sequence[Example],
                    progress: Progress = None, label: str = "held-out") -> float:
    """Fraction of questions whose top-scored candidate holds the answer."""
    import torch

    tokenizer, encoder, head, config = model
    hits = 0
    for n, example in enumerate(examples, 1):
        with torch.inference_mode():
            logits = pair_logits(tokenizer, encoder, head, example.question.query,
                                 [c.text for c in example.candidates], config.max_length)
        hits += example.candidates[int(logits.argmax())].positive
        if progress:
            progress(f"measure {label}", n, len(examples))
    return hits / len(examples) if examples else 0.0


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


# --- the command ---------------------------------------------------------------------------


def train_reader(train_dir: Path = DEFAULT_TRAIN_DIR, out: Path = WEIGHTS_DIR, *,
                 limit: int | None = None, variants: Sequence[str] = ("lora", "frozen"),
                 baseline: bool | None = None, progress: Progress = None) -> dict[str, Any]:
    """Train the variants, measure them and today's scorer (skipped by default in a --limit
    run) on the held-out weeks, save the best reader under `out`; returns its metadata."""
    import torch

    settings = TrainSettings(max_steps=1 if limit else None)
    torch.set_num_threads(settings.threads)
    docs, questions, data_hash = load_training_data(train_dir)
    train_q = [q for q in questions if q.week not in set(HELD_OUT_WEEKS)]
    held_q = [q for q in questions if q.week in set(HELD_OUT_WEEKS)]
    if limit:
        train_q, held_q = train_q[:limit], held_q[:limit]
    training, _ = split(build_examples(docs, train_q, settings.candidates, progress))
    _, held = split(build_examples(docs, held_q, settings.candidates, progress))
    if not training or not held:
        raise EvalError(f"{train_dir}: no trainable questions (training {len(training)}, "
                        f"held-out {len(held)})")
    results: dict[str, dict[str, float]] = {}
    models = {}
    trainers = {"lora": train_lora, "frozen": train_frozen}
    for variant in variants:
        started = time.perf_counter()
        models[variant] = trainers[variant](training, settings, progress)
        seconds = time.perf_counter() - started
        results[variant] = {"hit_at_1": reader_hit_at_1(models[variant], held, progress),
                            "train_seconds": round(seconds, 1)}
    if baseline if baseline is not None else limit is None:
        results["extractive"] = {"hit_at_1": extractive_hit_at_1(held, docs, progress)}
    results["random"] = {"hit_at_1": positive_rate(held)}
    best = max(variants, key=lambda v: results[v]["hit_at_1"])
    metadata = {"data_sha256": data_hash, "train_dir": str(train_dir), "limit": limit,
                "settings": settings.to_dict(), "seed": settings.seed,
                "held_out_weeks": list(HELD_OUT_WEEKS), "training_questions": len(training),
                "held_out_questions": len(held), "held_out": results, "chosen": best}
    _, encoder, head, config = models[best]
    sha = save_weights(Path(out), encoder, head, config, metadata)
    return {**metadata, "weights_sha256": sha}
