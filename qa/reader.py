"""The learned reader: a cross-encoder that scores (question, span) pairs in one encoder pass.

The bundled all-MiniLM-L6-v2 reads "[CLS] question [SEP] span [SEP]"; a LoRA adapter (peft, on
query/value) and a linear head over the mean-pooled tokens turn it into a span scorer. Only the
adapter and the head are newsqa's own weights (qa/weights/reader/, loaded by path, sha256
checked); training lives in qa/eval/train_reader.py. This module is the transformers/peft
adapter of the reader.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from index.artifacts import file_sha256, record_weights, recorded_sha256
from index.embedding import model_path, torch_threads
from index.settings import BUNDLED_MODEL
from qa.errors import QAError

WEIGHTS_DIR = Path(__file__).parent / "weights" / "reader"
WEIGHTS_FILE = "reader.pt"
SHA_FILE = "reader.pt.sha256"
METADATA_FILE = "metadata.json"
MAX_CANDIDATES = 16
MAX_LENGTH = 128
LORA_TARGETS = ("query", "value")


class ReaderWeightsError(QAError):
    """The reader's weights are missing, corrupted or do not fit the encoder."""


@dataclass(frozen=True)
class ReaderConfig:
    """What the weights were trained as: 'lora' (adapter + head) or 'frozen' (head only)."""

    variant: str = "lora"
    rank: int = 8
    alpha: int = 16
    max_length: int = MAX_LENGTH

    def __post_init__(self) -> None:
        if self.variant not in ("lora", "frozen"):
            raise ReaderWeightsError(f"unknown reader variant {self.variant!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"variant": self.variant, "rank": self.rank, "alpha": self.alpha,
                "max_length": self.max_length}


def build_encoder(config: ReaderConfig, model: str = BUNDLED_MODEL) -> tuple[Any, Any, Any]:
    """(tokenizer, encoder, head) from the local encoder; the encoder carries a fresh LoRA
    adapter for the 'lora' variant. Used by training and by `Reader` alike."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    path = model_path(model)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    encoder = AutoModel.from_pretrained(path, local_files_only=True)
    if config.variant == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=0.0,
                          target_modules=list(LORA_TARGETS))
        encoder = get_peft_model(encoder, lora)
    head = torch.nn.Linear(encoder.config.hidden_size, 1)
    return tokenizer, encoder, head


def pair_logits(tokenizer: Any, encoder: Any, head: Any, question: str, spans: Sequence[str],
                max_length: int = MAX_LENGTH) -> Any:
    """One encoder pass over "[CLS] question [SEP] span [SEP]" per span -> a logit per span."""
    batch = tokenizer([question] * len(spans), list(spans), truncation="only_second",
                      max_length=max_length, padding=True, return_tensors="pt")
    hidden = encoder(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
    return head(pooled).squeeze(-1)


def trained_state(encoder: Any, head: Any, config: ReaderConfig) -> dict[str, Any]:
    """The newsqa-owned tensors: the LoRA adapter (if any) and the head."""
    state: dict[str, Any] = {f"head.{k}": v.detach().clone() for k, v in head.state_dict().items()}
    if config.variant == "lora":
        from peft import get_peft_model_state_dict

        for key, value in get_peft_model_state_dict(encoder).items():
            state[f"lora.{key}"] = value.detach().clone()
    return state


def save_weights(folder: Path, encoder: Any, head: Any, config: ReaderConfig,
                 metadata: dict[str, Any]) -> str:
    """Write reader.pt, its sha256 file and metadata.json; returns the sha256."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / WEIGHTS_FILE
    torch.save(trained_state(encoder, head, config), target)
    return record_weights(folder, WEIGHTS_FILE, SHA_FILE, METADATA_FILE,
                          {**metadata, "config": config.to_dict()})


class Reader:
    """Scores candidate spans for a question; adapter and head load lazily, once, by path."""

    def __init__(self, folder: Path = WEIGHTS_DIR, *, model: str = BUNDLED_MODEL,
                 max_candidates: int = MAX_CANDIDATES) -> None:
        if max_candidates < 1:
            raise ReaderWeightsError("max_candidates must be at least 1")
        self.folder = Path(folder)
        self.model = model
        self.max_candidates = max_candidates
        self._loaded: tuple[Any, Any, Any, ReaderConfig] | None = None
        self._lock = threading.Lock()

    @property
    def sha256(self) -> str:
        """The recorded sha256 of the weights file (what an answer cites for audit)."""
        return recorded_sha256(self.folder / SHA_FILE, ReaderWeightsError, "reader weights")

    @property
    def config(self) -> ReaderConfig:
        return self._load()[3]

    def _read_config(self) -> ReaderConfig:
        path = self.folder / METADATA_FILE
        try:
            settings = json.loads(path.read_text(encoding="utf-8"))["config"]
            return ReaderConfig(**settings)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ReaderWeightsError(f"reader metadata unreadable: {path}: {exc}") from exc

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

    def _load(self) -> tuple[Any, Any, Any, ReaderConfig]:
        with self._lock:
            if self._loaded is None:
                config = self._read_config()
                state = self._verified_state()
                tokenizer, encoder, head = build_encoder(config, self.model)
                head.load_state_dict({k[5:]: v for k, v in state.items()
                                      if k.startswith("head.")})
                if config.variant == "lora":
                    _apply_adapter(encoder, state)
                encoder.eval()
                head.eval()
                self._loaded = (tokenizer, encoder, head, config)
            return self._loaded

    def warm_up(self) -> None:
        self._load()

    def score(self, question: str, spans: Sequence[str]) -> np.ndarray:
        """One logit per span (higher = more likely to answer), in one batch on one thread."""
        if not spans:
            return np.zeros(0, dtype=np.float32)
        if len(spans) > self.max_candidates:
            raise ReaderWeightsError(f"at most {self.max_candidates} spans per call, "
                                     f"got {len(spans)}")
        import torch

        tokenizer, encoder, head, config = self._load()
        with torch_threads(1), torch.inference_mode():
            logits = pair_logits(tokenizer, encoder, head, question, spans, config.max_length)
        return logits.float().numpy()


def _apply_adapter(encoder: Any, state: dict[str, Any]) -> None:
    from peft import set_peft_model_state_dict

    adapter = {k[5:]: v for k, v in state.items() if k.startswith("lora.")}
    if not adapter:
        raise ReaderWeightsError("reader weights hold no LoRA adapter for a 'lora' variant")
    result = set_peft_model_state_dict(encoder, adapter)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ReaderWeightsError(f"reader adapter keys do not fit the encoder: {unexpected[:3]}")
