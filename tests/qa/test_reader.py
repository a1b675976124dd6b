"""The learned reader: weights from package data, the sha256 check, the real training path."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from index.settings import OFFLINE_ENV
from qa.errors import EvalError
from qa.reader import (
    METADATA_FILE,
    SHA_FILE,
    WEIGHTS_DIR,
    WEIGHTS_FILE,
    Reader,
    ReaderConfig,
    ReaderWeightsError,
    build_encoder,
    file_sha256,
    pair_logits,
)

ROOT = Path(__file__).resolve().parents[2]
TRAIN_DIR = ROOT.parent / "shared" / "eval" / "realtimeqa-train"
QUESTION = "Which newspaper interviewed Trenta?"
SPANS = ["Trenta told the Corriere della Sera newspaper that Italy opposed intervention.",
         "Tomatoes need sun and regular watering in the summer months.",
         "The ministers agreed to meet again next month."]


def _bare_scores(reader: Reader) -> np.ndarray:
    """The same head on the encoder WITHOUT the adapter."""
    import torch

    state = torch.load(reader.folder / WEIGHTS_FILE, weights_only=True)
    tokenizer, encoder, head = build_encoder(ReaderConfig(variant="frozen"))
    head.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")})
    encoder.eval()
    with torch.inference_mode():
        return pair_logits(tokenizer, encoder, head, QUESTION, SPANS).numpy()


def test_packaged_weights_load_by_path_and_match_their_sha256() -> None:
    reader = Reader()
    assert reader.folder == WEIGHTS_DIR
    assert reader.sha256 == file_sha256(WEIGHTS_DIR / WEIGHTS_FILE)
    assert (WEIGHTS_DIR / WEIGHTS_FILE).stat().st_size <= 10 * 1024 * 1024
    metadata = json.loads((WEIGHTS_DIR / METADATA_FILE).read_text(encoding="utf-8"))
    assert metadata["weights_sha256"] == reader.sha256
    assert {"data_sha256", "settings", "seed", "held_out"} <= set(metadata)
    scores = reader.score(QUESTION, SPANS)
    assert scores.shape == (len(SPANS),) and np.isfinite(scores).all()


def test_packaged_adapter_changes_scores_against_the_bare_encoder() -> None:
    reader = Reader()
    if reader.config.variant != "lora":
        pytest.skip("the packaged reader is the frozen variant: it has no adapter")
    adapted = reader.score(QUESTION, SPANS)
    assert not np.allclose(adapted, _bare_scores(reader), atol=1e-4)


def test_a_corrupted_copy_fails_the_sha256_check(tmp_path: Path) -> None:
    copy = tmp_path / "reader"
    shutil.copytree(WEIGHTS_DIR, copy)
    data = bytearray((copy / WEIGHTS_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(ReaderWeightsError, match="sha256"):
        Reader(copy).score(QUESTION, SPANS)


def test_missing_sha_file_is_a_clear_error(tmp_path: Path) -> None:
    copy = tmp_path / "reader"
    shutil.copytree(WEIGHTS_DIR, copy)
    (copy / SHA_FILE).unlink()
    with pytest.raises(ReaderWeightsError, match="sha256 missing"):
        Reader(copy).score(QUESTION, SPANS)


def test_too_many_candidates_are_refused() -> None:
    with pytest.raises(ReaderWeightsError, match="at most 2"):
        Reader(max_candidates=2).score(QUESTION, SPANS)


def test_malformed_training_data_names_file_and_line(tmp_path: Path) -> None:
    from qa.eval.train_reader import train_reader

    (tmp_path / "corpus.jsonl").write_text('{"id": "a"}\nnot json\n', encoding="utf-8")
    (tmp_path / "queries_train.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(EvalError, match=r"corpus\.jsonl:"):
        train_reader(tmp_path, tmp_path / "out", limit=1)
    (tmp_path / "corpus.jsonl").unlink()
    with pytest.raises(EvalError, match=r"corpus\.jsonl: training data file missing"):
        train_reader(tmp_path, tmp_path / "out", limit=1)


@pytest.mark.skipif(not TRAIN_DIR.is_dir(), reason="the RealTime QA training set is absent")
def test_tiny_training_run_through_the_cli_produces_loadable_weights(tmp_path: Path) -> None:
    out = tmp_path / "reader"
    env = {**os.environ, **OFFLINE_ENV, "NEWSQA_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        [sys.executable, "-m", "ui.cli", "train", "reader", "--limit", "2", "--out", str(out),
         "--train-dir", str(TRAIN_DIR), "--variant", "lora", "--quiet", "--json"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert result.returncode == 0, result.stderr
    metadata = json.loads(result.stdout)
    assert metadata["chosen"] == "lora" and metadata["settings"]["max_steps"] == 1
    assert metadata["training_questions"] <= 2 and "lora" in metadata["held_out"]
    reader = Reader(out)
    assert reader.sha256 == metadata["weights_sha256"] == file_sha256(out / WEIGHTS_FILE)
    assert reader.config.variant == "lora"
    assert reader.score(QUESTION, SPANS).shape == (len(SPANS),)
