"""The learned reader: a cross-encoder that reads (question, span) pairs in one encoder pass.

The bundled all-MiniLM-L6-v2 reads "[CLS] question [SEP] span [SEP]"; a LoRA adapter (peft, on
query/value), a linear head over the mean-pooled tokens (which span answers) and a token-level
start/end head over the span's word pieces (the short answer inside it; of the head's best
pairs, the best that fits the question's answer type) turn it into a reader. A second LoRA
adapter with its own start/end head (the answerer, on an encoder of its own) reads only the
lead span again, for a better short answer and its margin over "no answer" (the [CLS] token).
A small logistic calibrator over the reader's scores and the question's coverage gives the
probability that the best span answers, and the refusal threshold. Only the adapter, the heads
and the calibrator are newsqa's own weights (qa/weights/reader/, loaded by path, sha256
checked); training lives in qa/eval/train_reader.py. This module is the transformers/peft
adapter of the reader.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from index.artifacts import file_sha256, record_weights, recorded_sha256
from index.dates import CALENDAR_WORDS as DAY_AND_MONTH_WORDS
from index.embedding import model_path, torch_threads
from index.settings import BUNDLED_MODEL
from index.text import ANSWER_STOPWORDS, NUMBER_WORDS, stem, wordset
from qa.errors import QAError
from qa.question import QuestionInfo
from qa.text import QUESTION_WORDS, Word, content_stems, words

WEIGHTS_DIR = Path(__file__).parent / "weights" / "reader"
WEIGHTS_FILE = "reader.pt"
SHA_FILE = "reader.pt.sha256"
METADATA_FILE = "metadata.json"
MAX_CANDIDATES = 16
MAX_LENGTH = 128
#: The longest short answer the head may pick, in word pieces (before widening to words).
MAX_ANSWER_PIECES = 12
#: How many of the head's best answers per span the typed decoding considers (held-out
#: training weeks: 5 and 20 gave the same figures; docs/reader.md).
TOP_PAIRS = 5
#: The answerer's short answer is its best pair, without the typed decoding: on the held-out
#: training weeks (67 questions, `python -m qa.eval.train_reader --held-out`, session 8) top-span
#: EM / F1 26.9 / 37.4 typed -> 31.3 / 40.0 untyped, given the span 52.2 / 69.6 -> 59.7 / 72.6.
#: (The ranker's own head keeps the typed decoding, chosen for it in session 5.)
ANSWERER_TYPED = False
#: A one-word name the head cut short ("Chris") is completed to at most this many words.
MAX_NAME_WORDS = 4
#: Answer types whose short answer is a name (capitalised words; the span text is cased).
NAME_TYPES = frozenset({"person", "name", "place"})
#: What a "when" answer may name besides digits: a day, a month, a season, a period.
CALENDAR_WORDS = DAY_AND_MONTH_WORDS | wordset("spring summer autumn winter century decade")
LORA_TARGETS = ("query", "value")
#: The calibrator's features, in order (see `confidence_features`).
FEATURES = ("top_score", "margin", "top_probability", "answer_score", "top_coverage",
            "union_coverage", "answerer_margin")
_MASKED = -1e4


class ReaderWeightsError(QAError):
    """The reader's weights are missing, corrupted or do not fit the encoder."""


@dataclass(frozen=True)
class SpanReading:
    """The reader's view of one candidate span: its relevance logit, the short answer's
    offsets in the span (None, None without one), `answer_score` = the head's best start +
    end logit in the span (a calibrator feature, whichever answer the typed decoding keeps)
    and `answer_fits` = the short answer fits the question's answer type; `answerer_margin`
    = the answerer's best answer score over its "no answer" score, on the span it read."""

    score: float
    answer_start: int | None
    answer_end: int | None
    answer_score: float = 0.0
    answer_fits: bool = False
    answerer_margin: float | None = None

    @property
    def has_answer(self) -> bool:
        return self.answer_start is not None and self.answer_end is not None


@dataclass(frozen=True)
class ReaderConfig:
    """What the weights were trained as: 'lora' (adapter + heads) or 'frozen' (span head
    only); `answer_head` says whether they carry the short-answer start/end head,
    `answer_adapter` whether a second adapter + head finds the short answer in the lead span."""

    variant: str = "lora"
    rank: int = 8
    alpha: int = 16
    max_length: int = MAX_LENGTH
    answer_head: bool = False
    answer_adapter: bool = False

    def __post_init__(self) -> None:
        if self.variant not in ("lora", "frozen"):
            raise ReaderWeightsError(f"unknown reader variant {self.variant!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"variant": self.variant, "rank": self.rank, "alpha": self.alpha,
                "max_length": self.max_length, "answer_head": self.answer_head,
                "answer_adapter": self.answer_adapter}


@dataclass(frozen=True)
class Calibrator:
    """Logistic regression over standardised `FEATURES`: P(the top span answers)."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float
    features: tuple[str, ...] = FEATURES

    def __post_init__(self) -> None:
        sizes = {len(self.features), len(self.mean), len(self.scale), len(self.weights)}
        if sizes != {len(self.features)} or self.features != FEATURES:
            raise ReaderWeightsError(f"calibrator does not fit the features {FEATURES}")
        if not 0.0 <= self.threshold <= 1.0 or min(self.scale) <= 0.0:
            raise ReaderWeightsError("calibrator threshold or scales out of range")

    def probability(self, values: Sequence[float]) -> float:
        z = self.bias + sum(w * (v - m) / s for w, v, m, s in
                            zip(self.weights, values, self.mean, self.scale, strict=True))
        return 1.0 / (1.0 + math.exp(-max(min(z, 60.0), -60.0)))

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(self.features), "mean": list(self.mean),
                "scale": list(self.scale), "weights": list(self.weights), "bias": self.bias,
                "threshold": self.threshold}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibrator:
        return cls(mean=tuple(map(float, data["mean"])), scale=tuple(map(float, data["scale"])),
                   weights=tuple(map(float, data["weights"])), bias=float(data["bias"]),
                   threshold=float(data["threshold"]), features=tuple(data["features"]))


# --- the encoder pass ----------------------------------------------------------------------


def build_encoder(config: ReaderConfig, model: str = BUNDLED_MODEL) -> tuple[Any, Any, Any]:
    """(tokenizer, encoder, span head) from the local encoder; the encoder carries a fresh
    LoRA adapter for the 'lora' variant. Used by training and by `Reader` alike."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = model_path(model)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    encoder = AutoModel.from_pretrained(path, local_files_only=True)
    if config.variant == "lora":
        from peft import get_peft_model

        encoder = get_peft_model(encoder, lora_config(config))
    head = torch.nn.Linear(encoder.config.hidden_size, 1)
    return tokenizer, encoder, head


def lora_config(config: ReaderConfig) -> Any:
    """The peft LoRA settings of both adapters (the ranker's and the answerer's)."""
    from peft import LoraConfig

    return LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=0.0,
                      target_modules=list(LORA_TARGETS))


def build_answer_head(encoder: Any) -> Any:
    """The short-answer head: start and end logits per token."""
    import torch

    return torch.nn.Linear(encoder.config.hidden_size, 2)


@dataclass(frozen=True)
class PairPass:
    """One encoder pass over the (question, span) pairs: token states and where spans lie."""

    hidden: Any            # [pairs, tokens, hidden]
    attention: Any         # [pairs, tokens] 0/1
    span_tokens: Any       # [pairs, tokens] bool: a word piece of the span's words
    offsets: np.ndarray    # [pairs, tokens, 2] char offsets into the span text


def encode_pairs(tokenizer: Any, encoder: Any, question: str, spans: Sequence[str],
                 max_length: int = MAX_LENGTH) -> PairPass:
    """"[CLS] question [SEP] span [SEP]" per span through the encoder, in one batch."""
    import torch

    batch = tokenizer([question] * len(spans), list(spans), truncation="only_second",
                      max_length=max_length, padding=True, return_tensors="pt",
                      return_offsets_mapping=True)
    offsets = batch.pop("offset_mapping").numpy()
    inside = np.zeros(offsets.shape[:2], dtype=bool)
    for row, span in enumerate(spans):
        inside[row] = _span_word_pieces(batch.sequence_ids(row), offsets[row], span)
    hidden = encoder(**batch).last_hidden_state
    return PairPass(hidden, batch["attention_mask"], torch.from_numpy(inside), offsets)


def _span_word_pieces(sequence_ids: Sequence[int | None], offsets: np.ndarray,
                      span: str) -> np.ndarray:
    """Which tokens are pieces of the span's words (not the question, padding or bare
    punctuation): the only places a short answer may start or end."""
    covered = np.zeros(len(span) + 1, dtype=bool)
    for word in words(span):
        covered[word.start:word.end] = True
    inside = np.zeros(len(sequence_ids), dtype=bool)
    for index, (sequence, (start, end)) in enumerate(zip(sequence_ids, offsets, strict=True)):
        inside[index] = sequence == 1 and end > start and bool(covered[start:end].any())
    return inside


def span_logits(head: Any, encoded: PairPass) -> Any:
    """The span head over the mean-pooled tokens: one relevance logit per pair."""
    mask = encoded.attention.unsqueeze(-1).to(encoded.hidden.dtype)
    pooled = (encoded.hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    return head(pooled).squeeze(-1)


def answer_logits(answer_head: Any, encoded: PairPass, *, null: bool = False
                  ) -> tuple[Any, Any]:
    """(start, end) logits per token, masked outside the span's word pieces; with `null` the
    first token ([CLS]) stays too: start = end = 0 is the answerer's "no answer here"."""
    logits = answer_head(encoded.hidden)
    outside = ~encoded.span_tokens
    if null:
        outside = outside.clone()
        outside[:, 0] = False
    start = logits[..., 0].masked_fill(outside, _MASKED)
    end = logits[..., 1].masked_fill(outside, _MASKED)
    return start, end


def pair_logits(tokenizer: Any, encoder: Any, head: Any, question: str, spans: Sequence[str],
                max_length: int = MAX_LENGTH) -> Any:
    """One encoder pass over "[CLS] question [SEP] span [SEP]" per span -> a logit per span."""
    return span_logits(head, encode_pairs(tokenizer, encoder, question, spans, max_length))


def answer_pairs(start: np.ndarray, end: np.ndarray, inside: np.ndarray, offsets: np.ndarray,
                 span: str, max_pieces: int = MAX_ANSWER_PIECES, limit: int = TOP_PAIRS
                 ) -> list[tuple[int, int, float]]:
    """The head's best `limit` distinct answers (start <= end, at most `max_pieces` pieces
    apart) as char offsets into `span` widened to whole words, with their start + end
    logits, best first; empty when no piece is valid."""
    firsts, lengths = [], []
    for length in range(min(max_pieces, len(start))):
        valid = np.flatnonzero(inside[:len(start) - length] & inside[length:])
        firsts.append(valid)
        lengths.append(np.full(len(valid), length))
    if not firsts:
        return []
    first, length = np.concatenate(firsts), np.concatenate(lengths)
    totals = start[first] + end[first + length]
    found: dict[tuple[int, int], float] = {}
    for pick in np.lexsort((first, length, -totals)):  # best first; ties: shorter, earlier
        a, b = int(first[pick]), int(first[pick] + length[pick])
        found.setdefault(widen_to_words(span, int(offsets[a][0]), int(offsets[b][1])),
                         float(totals[pick]))
        if len(found) >= limit:
            break
    return [(a, b, score) for (a, b), score in found.items()]


def decode_answer(start: np.ndarray, end: np.ndarray, inside: np.ndarray, offsets: np.ndarray,
                  span: str, max_pieces: int = MAX_ANSWER_PIECES
                  ) -> tuple[int, int, float] | None:
    """The best (start <= end, at most `max_pieces` pieces) answer as char offsets into
    `span`, widened to whole words, with its start + end logit; None when no piece is valid."""
    pairs = answer_pairs(start, end, inside, offsets, span, max_pieces, limit=1)
    return pairs[0] if pairs else None


def widen_to_words(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) widened so that it never cuts a word of `text` in half."""
    for word in words(text):
        if word.start < end and word.end > start:
            start, end = min(start, word.start), max(end, word.end)
    return start, end


# --- typed decoding ------------------------------------------------------------------------


@dataclass(frozen=True)
class AnswerFrame:
    """What a question's short answer should look like: its answer type ("number", "time",
    "person", ... from `qa.question`) and the question's own content stems."""

    qtype: str
    stems: frozenset[str]

    @classmethod
    def of(cls, question: str) -> AnswerFrame:
        info = QuestionInfo.parse(question)
        return cls(info.qtype, frozenset(info.stems))


def _content_words(text: str) -> list[Word]:
    return [w for w in words(text)
            if w.lower not in ANSWER_STOPWORDS and w.lower not in QUESTION_WORDS]


def plausible_answer(text: str, frame: AnswerFrame) -> bool:
    """Not only question or stop words, and not only the question's own words (an answer
    that echoes the question is wrong by construction)."""
    content = _content_words(text)
    return bool(content) and not all(stem(w.lower) in frame.stems for w in content)


def fits_type(text: str, frame: AnswerFrame) -> bool:
    """A plausible answer of the question's type: a number (digits or a number word) for
    how many / how much, a date word or digits for when, a capitalised word for a name."""
    if not plausible_answer(text, frame):
        return False
    if frame.qtype == "number":
        return any(_has_digit(w) or w.lower in NUMBER_WORDS for w in words(text))
    if frame.qtype == "time":
        return any(_has_digit(w) or w.lower in CALENDAR_WORDS for w in words(text))
    if frame.qtype in NAME_TYPES:
        return any(w.capitalised for w in _content_words(text))
    return True


def _has_digit(word: Word) -> bool:
    return any(ch.isdigit() for ch in word.text)


def choose_answer(span: str, pairs: Sequence[tuple[int, int, float]], frame: AnswerFrame
                  ) -> tuple[int, int, bool] | None:
    """The best-scoring pair that fits the type, else the best plausible one (with False),
    else None; a name is completed (`complete_name`)."""
    fitting = [(a, b, True) for a, b, _ in pairs if fits_type(span[a:b], frame)]
    plausible = [(a, b, False) for a, b, _ in pairs if plausible_answer(span[a:b], frame)]
    chosen = (fitting or plausible or [None])[0]
    if chosen is None or frame.qtype not in NAME_TYPES:
        return chosen
    return (*complete_name(span, chosen[0], chosen[1], frame), chosen[2])


def complete_name(span: str, start: int, end: int, frame: AnswerFrame) -> tuple[int, int]:
    """A one-word name the head cut short ("Chris" of "Chris Pratt") widened over the
    capitalised words right beside it (never a question word or a sentence's first word, at
    most MAX_NAME_WORDS); a trailing possessive 's is dropped."""
    found = words(span)
    inside = [n for n, w in enumerate(found) if w.start < end and w.end > start]
    if len(inside) == 1 and found[inside[0]].capitalised:
        first = last = inside[0]
        while (last - first + 1 < MAX_NAME_WORDS and not _possessive(found[last])
               and _joins(span, found, last, last + 1, found[last + 1:last + 2], frame)):
            last += 1
        while (last - first + 1 < MAX_NAME_WORDS and first > 0
               and _joins(span, found, first - 1, first, found[first - 1:first], frame)
               and not _sentence_initial(span, found[first - 1])):
            first -= 1
        start, end = found[first].start, found[last].end
    if span[start:end].endswith(("'s", "’s")) and end - start > 2:
        end -= 2
    return start, end


def _joins(span: str, found: Sequence[Word], left: int, right: int, added: Sequence[Word],
           frame: AnswerFrame) -> bool:
    """Words `left` and `right` are one space apart and the word `added` (one, or none past
    either end) is a name word that is not one of the question's."""
    if not added or span[found[left].end:found[right].start] != " ":
        return False
    word = added[0]
    return (word.capitalised and word.lower not in ANSWER_STOPWORDS
            and stem(word.lower) not in frame.stems)


def _possessive(word: Word) -> bool:
    return word.text.endswith(("'s", "’s"))


def _sentence_initial(span: str, word: Word) -> bool:
    before = span[:word.start].rstrip()
    return not before or before[-1] in ".!?:;\"“”"


def read_pairs(model: tuple[Any, Any, Any, Any], question: str, spans: Sequence[str],
               max_length: int = MAX_LENGTH, *, typed: bool = True) -> list[SpanReading]:
    """(tokenizer, encoder, span head, answer head or None) -> a reading per span, in one
    encoder pass; call it under torch.inference_mode(). `typed`: the short answer is the best
    of the head's TOP_PAIRS that fits the question (`choose_answer`), else the head's best."""
    tokenizer, encoder, head, answer_head = model
    encoded = encode_pairs(tokenizer, encoder, question, spans, max_length)
    scores = span_logits(head, encoded).float().numpy()
    if answer_head is None:
        return [SpanReading(float(s), None, None) for s in scores]
    start, end = (t.float().numpy() for t in answer_logits(answer_head, encoded))
    inside = encoded.span_tokens.numpy()
    frame = AnswerFrame.of(question) if typed else None
    readings = []
    for row, span in enumerate(spans):
        pairs = answer_pairs(start[row], end[row], inside[row], encoded.offsets[row], span,
                             limit=TOP_PAIRS if typed else 1)
        readings.append(span_reading(float(scores[row]), span, pairs, frame))
    return readings


def span_reading(score: float, span: str, pairs: Sequence[tuple[int, int, float]],
                 frame: AnswerFrame | None) -> SpanReading:
    """A span's reading from its score and the head's best pairs: typed by `frame`, or the
    head's best pair when `frame` is None."""
    if not pairs:
        return SpanReading(score, None, None)
    best = pairs[0][2]
    if frame is None:
        return SpanReading(score, pairs[0][0], pairs[0][1], best)
    chosen = choose_answer(span, pairs, frame)
    if chosen is None:
        return SpanReading(score, None, None, best)
    return SpanReading(score, chosen[0], chosen[1], best, chosen[2])


def refine_answer(answerer: tuple[Any, Any, Any], question: str, span: str,
                  reading: SpanReading, max_length: int = MAX_LENGTH, *,
                  typed: bool = ANSWERER_TYPED) -> SpanReading:
    """`reading` with its short answer found by the answerer ((tokenizer, encoder, answer
    head)) in one pass over this span; its score and answer_score (the ranking's and the
    calibrator's inputs) stay the ranker's."""
    tokenizer, encoder, answer_head = answerer
    encoded = encode_pairs(tokenizer, encoder, question, [span], max_length)
    start, end = (t.float().numpy() for t in answer_logits(answer_head, encoded, null=True))
    pairs = answer_pairs(start[0], end[0], encoded.span_tokens.numpy()[0], encoded.offsets[0],
                         span, limit=TOP_PAIRS if typed else 1)
    found = span_reading(reading.score, span, pairs, AnswerFrame.of(question) if typed else None)
    best = pairs[0][2] if pairs else float(start[0][0] + end[0][0])
    return replace(found, answer_score=reading.answer_score,
                   answerer_margin=best - float(start[0][0] + end[0][0]))


# --- confidence ----------------------------------------------------------------------------


def confidence_features(question: str, spans: Sequence[str],
                        readings: Sequence[SpanReading]) -> tuple[float, ...]:
    """`FEATURES` of a reading: the top score, its margin over the runner-up, its softmax
    share among the spans, the top span's short-answer score, and the share of the question's
    stems in the top span / in all spans, and the answerer's margin on the span it read (0
    when it read none)."""
    if not readings or len(readings) != len(spans):
        raise ReaderWeightsError("confidence needs one reading per span, at least one")
    order = sorted(range(len(readings)), key=lambda i: -readings[i].score)
    top = readings[order[0]]
    margin = top.score - readings[order[1]].score if len(order) > 1 else 0.0
    share = 1.0 / sum(math.exp(max(r.score - top.score, -60.0)) for r in readings)
    answerer = next((r.answerer_margin for r in readings if r.answerer_margin is not None), 0.0)
    wanted = set(content_stems(question))
    if not wanted:
        return (top.score, margin, share, top.answer_score, 0.0, 0.0, answerer)
    top_stems = set(content_stems(spans[order[0]]))
    union = set().union(*(set(content_stems(s)) for s in spans))
    return (top.score, margin, share, top.answer_score, len(wanted & top_stems) / len(wanted),
            len(wanted & union) / len(wanted), answerer)


# --- weights on disk -----------------------------------------------------------------------


def trained_state(encoder: Any, head: Any, config: ReaderConfig, answer_head: Any = None,
                  answerer: tuple[Any, Any] | None = None) -> dict[str, Any]:
    """The newsqa-owned tensors: the LoRA adapter (if any), the span head, the answer head,
    and the answerer's (encoder, answer head) adapter and head under "answerer."."""
    state: dict[str, Any] = {f"head.{k}": v.detach().clone() for k, v in head.state_dict().items()}
    if answer_head is not None:
        state.update({f"answer.{k}": v.detach().clone()
                      for k, v in answer_head.state_dict().items()})
    if config.variant == "lora":
        state.update(_adapter_state(encoder, "lora."))
    if answerer is not None:
        state.update(answerer_state(*answerer))
    return state


def answerer_state(encoder: Any, answer_head: Any) -> dict[str, Any]:
    """The answerer's tensors as the weights file holds them: its adapter under
    "answerer.lora.", its head under "answerer.answer." (`load_answerer` reads them back)."""
    state = _adapter_state(encoder, "answerer.lora.")
    state.update({f"answerer.answer.{k}": v.detach().clone()
                  for k, v in answer_head.state_dict().items()})
    return state


def _adapter_state(encoder: Any, prefix: str) -> dict[str, Any]:
    from peft import get_peft_model_state_dict

    return {f"{prefix}{key}": value.detach().clone()
            for key, value in get_peft_model_state_dict(encoder).items()}


def save_weights(folder: Path, encoder: Any, head: Any, config: ReaderConfig,
                 metadata: dict[str, Any], answer_head: Any = None,
                 answerer: tuple[Any, Any] | None = None) -> str:
    """Write reader.pt, its sha256 file and metadata.json; returns the sha256."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / WEIGHTS_FILE
    torch.save(trained_state(encoder, head, config, answer_head, answerer), target)
    return record_weights(folder, WEIGHTS_FILE, SHA_FILE, METADATA_FILE,
                          {**metadata, "config": config.to_dict()})


@dataclass(frozen=True)
class _Loaded:
    tokenizer: Any
    encoder: Any
    head: Any
    answer_head: Any
    config: ReaderConfig
    answerer: tuple[Any, Any] | None = None  # (encoder, answer head)


class Reader:
    """Reads candidate spans for a question; weights load lazily, once, by path.
    `typed_answers`: the ranker head's short answers by typed decoding (`read_pairs`), off =
    the head's best; `typed_answerer`: the same for the answerer's (`short_answer`)."""

    def __init__(self, folder: Path = WEIGHTS_DIR, *, model: str = BUNDLED_MODEL,
                 max_candidates: int = MAX_CANDIDATES, typed_answers: bool = True,
                 typed_answerer: bool = ANSWERER_TYPED) -> None:
        if max_candidates < 1:
            raise ReaderWeightsError("max_candidates must be at least 1")
        self.folder = Path(folder)
        self.model = model
        self.max_candidates = max_candidates
        self.typed_answers = typed_answers
        self.typed_answerer = typed_answerer
        self._loaded: _Loaded | None = None
        self._metadata: dict[str, Any] | None = None
        self._lock = threading.Lock()

    @property
    def sha256(self) -> str:
        """The recorded sha256 of the weights file (what an answer cites for audit)."""
        return recorded_sha256(self.folder / SHA_FILE, ReaderWeightsError, "reader weights")

    @property
    def config(self) -> ReaderConfig:
        return self._load().config

    @property
    def calibrator(self) -> Calibrator:
        """The confidence calibrator recorded in metadata.json."""
        data = self._read_metadata().get("calibration")
        if not isinstance(data, dict):
            raise ReaderWeightsError(f"reader metadata has no calibration: {self.folder}")
        try:
            return Calibrator.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise ReaderWeightsError(f"reader calibration unreadable: {exc}") from exc

    @property
    def threshold(self) -> float:
        """Refuse when `confidence` is below this (chosen on held-out training weeks)."""
        return self.calibrator.threshold

    def _read_metadata(self) -> dict[str, Any]:
        if self._metadata is None:
            path = self.folder / METADATA_FILE
            try:
                document = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ReaderWeightsError(f"reader metadata unreadable: {path}: {exc}") from exc
            if not isinstance(document, dict):
                raise ReaderWeightsError(f"reader metadata is not an object: {path}")
            self._metadata = document
        return self._metadata

    def _read_config(self) -> ReaderConfig:
        try:
            return ReaderConfig(**self._read_metadata()["config"])
        except (KeyError, TypeError) as exc:
            raise ReaderWeightsError(f"reader metadata has no valid config: {exc}") from exc

    def _verified_state(self) -> dict[str, Any]:
        import torch

        target = self.folder / WEIGHTS_FILE
        if not target.is_file():
            raise ReaderWeightsError(f"reader weights missing: {target}")
        expected, actual = self.sha256, file_sha256(target)
        if actual != expected:
            raise ReaderWeightsError(f"reader weights {target} do not match their sha256 "
                                     f"(recorded {expected[:12]}…, file {actual[:12]}…)")
        return torch.load(target, map_location="cpu", weights_only=True)

    def _load(self) -> _Loaded:
        with self._lock:
            if self._loaded is None:
                config = self._read_config()
                state = self._verified_state()
                tokenizer, encoder, head = build_encoder(config, self.model)
                head.load_state_dict(_prefixed(state, "head."))
                answer_head = None
                if _prefixed(state, "answer."):
                    answer_head = build_answer_head(encoder)
                    answer_head.load_state_dict(_prefixed(state, "answer."))
                    answer_head.eval()
                if config.variant == "lora":
                    _apply_adapter(encoder, state)
                answerer = load_answerer(config, state, self.model)
                encoder.eval()
                head.eval()
                self._loaded = _Loaded(tokenizer, encoder, head, answer_head, config, answerer)
            return self._loaded

    def warm_up(self) -> None:
        """Load the weights (and the calibrator) now rather than on the first question."""
        self._load()
        if "calibration" in self._read_metadata():
            self.calibrator  # noqa: B018 - validates the calibrator at start-up

    def _check(self, spans: Sequence[str]) -> None:
        if len(spans) > self.max_candidates:
            raise ReaderWeightsError(f"at most {self.max_candidates} spans per call, "
                                     f"got {len(spans)}")

    def read(self, question: str, spans: Sequence[str]) -> list[SpanReading]:
        """A reading per span (relevance score, short answer in span offsets), one pass."""
        if not spans:
            return []
        self._check(spans)
        import torch

        loaded = self._load()
        model = (loaded.tokenizer, loaded.encoder, loaded.head, loaded.answer_head)
        with torch_threads(1), torch.inference_mode():
            return read_pairs(model, question, spans, loaded.config.max_length,
                              typed=self.typed_answers)

    def short_answer(self, question: str, span: str, reading: SpanReading) -> SpanReading:
        """`reading` (of `span`) with its short answer from the answerer adapter when the
        weights carry one (one pass over this span); otherwise `reading` as it is."""
        loaded = self._load()
        if loaded.answerer is None:
            return reading
        import torch

        answerer = (loaded.tokenizer, *loaded.answerer)
        with torch_threads(1), torch.inference_mode():
            return refine_answer(answerer, question, span, reading, loaded.config.max_length,
                                 typed=self.typed_answerer)

    def confidence(self, question: str, spans: Sequence[str],
                   readings: Sequence[SpanReading]) -> float:
        """Calibrated probability that the top-scored span answers the question."""
        return self.calibrator.probability(confidence_features(question, spans, readings))

    def score(self, question: str, spans: Sequence[str]) -> np.ndarray:
        """One logit per span (higher = more likely to answer), in one batch on one thread."""
        if not spans:
            return np.zeros(0, dtype=np.float32)
        self._check(spans)
        import torch

        loaded = self._load()
        with torch_threads(1), torch.inference_mode():
            logits = pair_logits(loaded.tokenizer, loaded.encoder, loaded.head, question,
                                 spans, loaded.config.max_length)
        return logits.float().numpy()


def _prefixed(state: dict[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def load_answerer(config: ReaderConfig, state: dict[str, Any], model: str = BUNDLED_MODEL
                  ) -> tuple[Any, Any] | None:
    """(encoder with the answerer's adapter, its answer head), or None when the weights carry
    no answerer. An encoder of its own, not a second adapter on the ranker's: peft routes a
    named adapter through hooks on shared modules, which concurrent questions would cross."""
    head_state = _prefixed(state, "answerer.answer.")
    if not head_state:
        return None
    if config.variant != "lora":
        raise ReaderWeightsError("an answerer adapter needs the 'lora' variant")
    _, encoder, _ = build_encoder(config, model)
    _apply_adapter(encoder, state, "answerer.lora.")
    answer_head = build_answer_head(encoder)
    answer_head.load_state_dict(head_state)
    encoder.eval()
    answer_head.eval()
    return encoder, answer_head


def _apply_adapter(encoder: Any, state: dict[str, Any], prefix: str = "lora.") -> None:
    from peft import set_peft_model_state_dict

    adapter = _prefixed(state, prefix)
    if not adapter:
        raise ReaderWeightsError("reader weights hold no LoRA adapter for a 'lora' variant")
    result = set_peft_model_state_dict(encoder, adapter)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ReaderWeightsError(f"reader adapter keys do not fit the encoder: {unexpected[:3]}")
