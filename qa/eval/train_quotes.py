"""`newsqa train quotes`: the attribution tagger's head, trained on PolNeAR train.jsonl only.

Token states of the frozen MiniLM are computed once (forward passes only) and cached under
the temp folder, keyed by the data's sha256; a fixed 10 % of the training articles (seeded) is
held out for choosing the epoch and for the reported figures. Gold attributions become BIO
tags: contents first, then sources and cues; an attribution whose cue sits inside another's
content (nested) is left to its outer content, since flat tags cannot nest.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.attribution import Attribution
from index.embedding import Embedder, torch_threads
from index.quote_tagger import (
    KINDS,
    STRIDE,
    TAGS,
    WEIGHTS_DIR,
    WINDOW,
    Pieces,
    TaggerConfig,
    article_states,
    build_head,
    decode_tags,
    head_logits,
    link,
    save_weights,
    token_features,
    word_pieces,
)
from qa.errors import EvalError

DEFAULT_DATA = Path("../shared/eval/polnear/train.jsonl")
DEFAULT_CACHE = Path(tempfile.gettempdir()) / "newsqa-quote-states"
SEED = 13
HELD_OUT = 0.10
SEGMENT = 256
BATCH = 32
LR = 2e-3
EPOCHS = 10
TORCH_THREADS = 1
#: Loss weight of the SOURCE and CUE tags (B and I) against 1 for the others: the rarer
#: kinds, whose misses cost the speaker (held-out train: see docs/quotes-eval.md).
CLASS_WEIGHTS = (("SOURCE", 2.0), ("CUE", 2.0))
Progress = Callable[[str, int, int], None] | None
Span = tuple[int, int]


@dataclass(frozen=True)
class GoldArticle:
    """One annotated article: its id, text and (content, source, cue) span lists."""

    id: str
    text: str
    attributions: tuple[dict[str, tuple[Span, ...]], ...]


@dataclass(frozen=True)
class Encoded:
    """An article ready for the head: float16 states, features and tag ids per word piece."""

    article: GoldArticle
    pieces: Pieces
    states: np.ndarray
    features: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = EPOCHS
    lr: float = LR
    batch: int = BATCH
    segment: int = SEGMENT
    seed: int = SEED
    held_out: float = HELD_OUT
    threads: int = TORCH_THREADS
    class_weights: tuple[tuple[str, float], ...] = CLASS_WEIGHTS

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "lr": self.lr, "batch": self.batch,
                "segment": self.segment, "seed": self.seed, "held_out": self.held_out,
                "threads": self.threads, "window": WINDOW, "stride": STRIDE,
                "class_weights": dict(self.class_weights)}

    def tag_weights(self) -> list[float]:
        """The loss weight of every tag in TAGS order (1 for a kind not listed)."""
        weights = dict(self.class_weights)
        return [weights.get(tag[2:], 1.0) for tag in TAGS]


# --- data ----------------------------------------------------------------------------------


def _spans(value: Any, where: str) -> tuple[Span, ...]:
    if not isinstance(value, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(n, int) for n in p)
            for p in value):
        raise EvalError(f"{where}: spans must be a list of [start, end] pairs")
    return tuple((int(a), int(b)) for a, b in value)


def parse_article(line: str, where: str) -> GoldArticle:
    """One JSON line of PolNeAR -> GoldArticle; malformed lines are a clear EvalError."""
    try:
        row = json.loads(line)
    except ValueError as exc:
        raise EvalError(f"{where}: not JSON: {exc}") from exc
    if not isinstance(row, dict) or not isinstance(row.get("text"), str) \
            or not isinstance(row.get("attributions"), list):
        raise EvalError(f"{where}: needs 'id', 'text' and a list of 'attributions'")
    attributions = []
    for number, item in enumerate(row["attributions"]):
        if not isinstance(item, dict):
            raise EvalError(f"{where}: attribution {number} is not an object")
        attributions.append({k: _spans(item.get(k, []), f"{where} attribution {number} {k}")
                             for k in ("source", "cue", "content")})
    return GoldArticle(str(row.get("id", where)), row["text"], tuple(attributions))


def load_articles(path: Path) -> tuple[list[GoldArticle], str]:
    """The annotated articles of a PolNeAR file and the file's sha256."""
    if not path.is_file():
        raise EvalError(f"{path}: PolNeAR file missing (see ../shared/eval/polnear/README.md)")
    raw = path.read_bytes()
    lines = raw.decode("utf-8").splitlines()
    articles = [parse_article(line, f"{path}:{n}") for n, line in enumerate(lines, 1)
                if line.strip()]
    if not articles:
        raise EvalError(f"{path}: no articles")
    return articles, hashlib.sha256(raw).hexdigest()


def split(articles: Sequence[GoldArticle], fraction: float, seed: int
          ) -> tuple[list[GoldArticle], list[GoldArticle]]:
    """(training, held-out): a seeded `fraction` of the articles, at least one, held out."""
    order = sorted(articles, key=lambda a: a.id)
    random.Random(seed).shuffle(order)
    held = max(1, round(len(order) * fraction))
    return order[held:], order[:held]


def top_level(article: GoldArticle) -> list[dict[str, tuple[Span, ...]]]:
    """Attributions whose cue is not inside another attribution's content."""
    contents = [(n, s) for n, a in enumerate(article.attributions) for s in a["content"]]
    kept = []
    for number, attribution in enumerate(article.attributions):
        nested = any(other != number and c[0] <= cue[0] and cue[1] <= c[1]
                     for cue in attribution["cue"] for other, c in contents)
        if not nested:
            kept.append(attribution)
    return kept


def labels(article: GoldArticle, offsets: Sequence[Span]) -> np.ndarray:
    """BIO tag ids per word piece: contents painted first, then sources and cues."""
    owner = np.full(len(article.text) + 1, -1, dtype=np.int64)
    piece_of = np.full(len(article.text) + 1, -1, dtype=np.int64)
    attributions = top_level(article)
    pieces = [(kind, span) for kind in ("CONTENT", "SOURCE", "CUE")
              for a in attributions for span in a[kind.lower()]]
    for number, (kind, (start, end)) in enumerate(pieces):
        owner[start:end] = KINDS.index(kind)
        piece_of[start:end] = number
    tags = np.zeros(len(offsets), dtype=np.int64)
    previous = -1
    for row, (start, _) in enumerate(offsets):
        kind, piece = owner[start], piece_of[start]
        if kind >= 0:
            tags[row] = TAGS.index(f"{'I' if piece == previous else 'B'}-{KINDS[kind]}")
        previous = piece
    return tags


# --- token states, cached ------------------------------------------------------------------


def _cache_key(data_hash: str, ids: Sequence[str], model: str) -> str:
    digest = hashlib.sha256(f"{data_hash}|{model}|{WINDOW}|{STRIDE}|".encode())
    digest.update("\n".join(ids).encode())
    return digest.hexdigest()[:20]


def encode_articles(articles: Sequence[GoldArticle], embedder: Embedder, cache: Path,
                    data_hash: str, progress: Progress = None) -> list[Encoded]:
    """States (from the cache when present), features and labels of every article."""
    key = _cache_key(data_hash, [a.id for a in articles], embedder.name)
    file = cache / f"states-{key}.npy"
    pieces = [word_pieces(embedder.tokenizer, a.text) for a in articles]
    if file.is_file():
        joined = np.load(file, mmap_mode="r")
    else:
        joined = _compute_states(articles, pieces, embedder, progress)
        cache.mkdir(parents=True, exist_ok=True)
        partial = cache / f"states-{key}.partial.npy"
        np.save(partial, joined)
        partial.replace(file)
    out, begin = [], 0
    for article, piece in zip(articles, pieces, strict=True):
        end = begin + len(piece.ids)
        out.append(Encoded(article, piece, np.asarray(joined[begin:end]),
                           token_features(article.text, piece.offsets),
                           labels(article, piece.offsets)))
        begin = end
    return out


def _compute_states(articles: Sequence[GoldArticle], pieces: Sequence[Pieces],
                    embedder: Embedder, progress: Progress) -> np.ndarray:
    parts = []
    with torch_threads(TORCH_THREADS):
        for number, piece in enumerate(pieces, 1):
            parts.append(article_states(embedder, piece).astype(np.float16))
            if progress:
                progress("encode articles", number, len(articles))
    return np.concatenate(parts) if parts else np.zeros((0, 384), dtype=np.float16)


# --- training ------------------------------------------------------------------------------


def _segments(data: Sequence[Encoded], length: int, rng: random.Random
              ) -> list[tuple[int, int, int]]:
    """(article, begin, end) pieces of every article, cut at a random phase each epoch."""
    out = []
    for number, item in enumerate(data):
        count = len(item.labels)
        phase = rng.randrange(length) if count > length else 0
        cuts = [0, *range(phase or length, count, length), count]
        out.extend((number, b, e) for b, e in itertools.pairwise(cuts) if e > b)
    rng.shuffle(out)
    return out


def _batch(data: Sequence[Encoded], group: Sequence[tuple[int, int, int]]) -> tuple[Any, ...]:
    import torch

    width = max(e - b for _, b, e in group)
    dim, feats = data[0].states.shape[1], data[0].features.shape[1]
    states = torch.zeros((len(group), width, dim))
    features = torch.zeros((len(group), width, feats))
    target = torch.full((len(group), width), -100, dtype=torch.long)
    for row, (number, begin, end) in enumerate(group):
        item = data[number]
        states[row, :end - begin] = torch.from_numpy(item.states[begin:end].astype(np.float32))
        features[row, :end - begin] = torch.from_numpy(item.features[begin:end])
        target[row, :end - begin] = torch.from_numpy(item.labels[begin:end])
    return states, features, target


def train_epoch(head: Any, optimiser: Any, data: Sequence[Encoded], settings: TrainSettings,
                rng: random.Random, max_steps: int | None = None) -> float:
    """One pass over random-phase segments; returns the mean loss."""
    import torch

    head.train()
    weights = torch.tensor(settings.tag_weights())
    segments = _segments(data, settings.segment, rng)
    groups = [segments[i:i + settings.batch] for i in range(0, len(segments), settings.batch)]
    losses = []
    for group in groups[:max_steps or None]:
        states, features, target = _batch(data, group)
        logits = head_logits(head, states, features)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, len(TAGS)),
                                                 target.reshape(-1), weight=weights,
                                                 ignore_index=-100)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
        optimiser.step()
        losses.append(loss.item())
    head.eval()
    return sum(losses) / len(losses) if losses else 0.0


def predict_tags(head: Any, item: Encoded) -> list[int]:
    import torch

    with torch.inference_mode():
        logits = head_logits(head, torch.from_numpy(item.states.astype(np.float32))[None],
                             torch.from_numpy(item.features)[None])
    return [int(t) for t in logits[0].argmax(-1)]


# --- measuring (for choosing the epoch; the reported eval is qa/eval/quotes_eval.py) -------


def token_f1(gold: np.ndarray, predicted: Sequence[int]) -> dict[str, float]:
    """Per kind (B and I together): token F1 of the tags."""
    kinds = np.array([0, *[1 + KINDS.index(t[2:]) for t in TAGS[1:]]])
    g, p = kinds[gold], kinds[np.asarray(predicted, dtype=np.int64)]
    out = {}
    for number, kind in enumerate(KINDS, 1):
        tp = float(((g == number) & (p == number)).sum())
        denominator = float((g == number).sum() + (p == number).sum())
        out[kind.lower()] = 2 * tp / denominator if denominator else 1.0
    return out


def _overlap(a: Sequence[Span], b: Sequence[Span]) -> int:
    return sum(max(0, min(x[1], y[1]) - max(x[0], y[0])) for x in a for y in b)


def _length(spans: Sequence[Span]) -> int:
    return sum(e - s for s, e in spans)


def attribution_scores(gold: Sequence[dict[str, tuple[Span, ...]]],
                       predicted: Sequence[Attribution]) -> dict[str, float]:
    """Character-overlap content precision/recall sums and speaker hits of one article."""
    precision = sum(max((_overlap(p.content, g["content"]) for g in gold), default=0)
                    / max(_length(p.content), 1) for p in predicted)
    recall, speaker, matched = 0.0, 0, 0
    for g in gold:
        best = max(predicted, key=lambda p: _overlap(p.content, g["content"]), default=None)
        hit = best is not None and _overlap(best.content, g["content"]) > 0
        recall += _overlap(best.content, g["content"]) / max(_length(g["content"]), 1) \
            if hit and best else 0.0
        if hit and best:
            matched += 1
            said = list(best.source)
            speaker += (_overlap(said, g["source"]) > 0) if g["source"] else not said
    return {"precision": precision, "recall": recall, "predicted": len(predicted),
            "gold": len(gold), "speaker": speaker, "matched": matched}


def measure(head: Any, data: Sequence[Encoded]) -> dict[str, float]:
    """Held-out token F1 per kind and content overlap P/R/F1 and speaker match."""
    sums: dict[str, float] = {}
    tokens: dict[str, list[float]] = {k.lower(): [] for k in KINDS}
    for item in data:
        tags = predict_tags(head, item)
        for kind, value in token_f1(item.labels, tags).items():
            tokens[kind].append(value * len(tags))
        found = link(item.article.text, decode_tags(tags, item.pieces.offsets))
        for key, value in attribution_scores(item.article.attributions, found).items():
            sums[key] = sums.get(key, 0.0) + value
    total = sum(len(i.labels) for i in data) or 1
    precision = sums.get("precision", 0) / max(sums.get("predicted", 0), 1)
    recall = sums.get("recall", 0) / max(sums.get("gold", 0), 1)
    figures = {f"token_f1_{k}": round(sum(v) / total, 4) for k, v in tokens.items()}
    figures.update({"content_overlap_precision": round(precision, 4),
                    "content_overlap_recall": round(recall, 4),
                    "content_overlap_f1": round(2 * precision * recall
                                                / max(precision + recall, 1e-9), 4),
                    "speaker_match": round(sums.get("speaker", 0)
                                           / max(sums.get("matched", 0), 1), 4)})
    return figures


# --- the command ---------------------------------------------------------------------------


def train_head(training: Sequence[Encoded], held: Sequence[Encoded], settings: TrainSettings,
               config: TaggerConfig, max_steps: int | None = None,
               progress: Progress = None) -> tuple[Any, list[dict[str, float]], int]:
    """Train for `settings.epochs`, keep the epoch with the best `selection_score` on the
    held-out training articles."""
    import torch

    torch.manual_seed(settings.seed)
    head = build_head(config)
    optimiser = torch.optim.AdamW(head.parameters(), lr=settings.lr, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, max(settings.epochs, 1))
    rng = random.Random(settings.seed)
    history, best, best_state = [], -1.0, None
    for epoch in range(1, settings.epochs + 1):
        loss = train_epoch(head, optimiser, training, settings, rng, max_steps)
        schedule.step()
        figures = {"epoch": epoch, "loss": round(loss, 4), **measure(head, held)}
        history.append(figures)
        score = selection_score(figures)
        if score > best:
            best, best_state = score, {k: v.clone() for k, v in head.state_dict().items()}
        if progress:
            progress("train epochs", epoch, settings.epochs)
    assert best_state is not None
    head.load_state_dict(best_state)
    chosen = max(range(len(history)), key=lambda n: selection_score(history[n]))
    return head, history, chosen + 1


def selection_score(figures: Mapping[str, float]) -> float:
    """What picks the epoch: the head's own source, cue and content token F1. Not the
    post-processed spans' figures: a change to the linking rules must not move the choice
    (it did once, between two epochs 0.0001 apart, and the weights stopped reproducing)."""
    return figures["token_f1_source"] + figures["token_f1_cue"] + figures["token_f1_content"]


def train_quotes(data: Path = DEFAULT_DATA, out: Path = WEIGHTS_DIR, *,
                 limit: int | None = None, cache: Path = DEFAULT_CACHE,
                 embedder: Embedder | None = None, progress: Progress = None
                 ) -> dict[str, Any]:
    """Encode (cached), train the head, measure it on held-out articles, save it under `out`;
    returns the metadata written beside the weights."""
    import torch

    started = time.perf_counter()
    settings = TrainSettings(epochs=1 if limit else EPOCHS)
    config = TaggerConfig()
    torch.manual_seed(settings.seed)
    articles, data_hash = load_articles(data)
    if limit:
        articles = articles[:max(limit, 2)]
    training_articles, held_articles = split(articles, settings.held_out, settings.seed)
    embedder = embedder or Embedder()
    encoded = encode_articles(articles, embedder, cache, data_hash, progress)
    by_id = {e.article.id: e for e in encoded}
    training = [by_id[a.id] for a in training_articles]
    held = [by_id[a.id] for a in held_articles]
    encode_seconds = time.perf_counter() - started
    with torch_threads(settings.threads):
        head, history, chosen = train_head(training, held, settings, config,
                                           max_steps=1 if limit else None, progress=progress)
    metadata = {"data": str(data), "data_sha256": data_hash, "limit": limit,
                "model": embedder.name, "settings": settings.to_dict(),
                "training_articles": len(training), "held_out_articles": len(held),
                "held_out_ids_sha256": hashlib.sha256(
                    "\n".join(sorted(a.id for a in held_articles)).encode()).hexdigest(),
                "chosen_epoch": chosen, "held_out": history[chosen - 1], "history": history,
                "encode_seconds": round(encode_seconds, 1),
                "total_seconds": round(time.perf_counter() - started, 1)}
    sha = save_weights(Path(out), head, config, metadata)
    return {**metadata, "weights_sha256": sha}
