"""The int8 encoder measurement (qa/eval/quantise.py) and its place in `newsqa bench`."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from index.settings import Settings
from qa.eval.bench import BENCHMARKS, benchmarks_markdown
from qa.eval.quantise import (
    corpus_chunk_texts,
    cosine_figures,
    dense_hits,
    encode,
    quantised_copy,
    run_int8_benchmark,
)

ARTICLES = [
    {"id": "a", "title": "Harbour strike ends", "source": "x", "published_at": "2022-05-02",
     "url": "", "authors": [], "body": "Dock workers returned on Monday after a ten-day strike "
     "over night shifts. The harbour authority agreed to new rotas."},
    {"id": "b", "title": "Wheat harvest", "source": "x", "published_at": "2022-06-01",
     "url": "", "authors": [], "body": "Farmers expect a record wheat harvest this summer, "
     "helped by a wet spring and cheaper fertiliser."},
]


@pytest.fixture(scope="module")
def eval_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("realtimeqa")
    (folder / "corpus.jsonl").write_text("".join(json.dumps(a) + "\n" for a in ARTICLES))
    return folder


def test_cosine_figures_of_unit_rows() -> None:
    a = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    b = np.array([[1.0, 0.0], [0.6, 0.8]], dtype=np.float32)
    assert cosine_figures(a, b) == {"mean": 0.9, "min": 0.8}


def test_quantised_copy_runs_int8_linears_and_leaves_fp32(embedder) -> None:  # type: ignore[no-untyped-def]
    import torch

    int8 = quantised_copy(embedder.model)
    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in int8.modules())
    assert not any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear)
                   for m in embedder.model.modules())
    texts = ["Dock workers returned after the strike.", "A record wheat harvest."]
    fp32_vectors, int8_vectors = encode(embedder.model, texts), encode(int8, texts)
    assert np.allclose(fp32_vectors, embedder.embed_documents(texts), atol=1e-5)
    assert not np.allclose(fp32_vectors, int8_vectors, atol=1e-5)
    assert cosine_figures(fp32_vectors, int8_vectors)["min"] > 0.8


def test_corpus_chunk_texts_carry_the_title_and_stop_at_the_limit(
        eval_dir: Path, embedder) -> None:  # type: ignore[no-untyped-def]
    texts = corpus_chunk_texts(eval_dir / "corpus.jsonl", Settings(), embedder, 1)
    assert texts == ["Harbour strike ends\n" + ARTICLES[0]["body"]]


def test_dense_hits_apply_the_question_date_and_the_doc_mapping() -> None:
    chunks = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]], dtype=np.float32)
    articles, days = ["late", "gold", "other"], np.array([20220701, 20220501, 20220501])
    mapping = SimpleNamespace(to_doc={"gold": "doc-g"}, gold=lambda q: {"doc-g"})
    asked = [SimpleNamespace(question_date="2022-06-01"),
             SimpleNamespace(question_date="2022-08-01")]
    query = np.array([[1.0, 0.0], [1.0, 0.0]], dtype=np.float32)
    assert dense_hits(asked, query, chunks, articles, days, mapping, k=1) == [True, False]
    assert dense_hits(asked, query, chunks, articles, days, mapping, k=2) == [True, True]


def test_int8_benchmark_reports_both_speeds_ratio_and_cosine(eval_dir: Path) -> None:
    figures = run_int8_benchmark(Settings(), eval_dir=eval_dir, chunks=2, rounds=2)
    assert figures["chunks"] == 2
    assert len(figures["fp32"]["seconds"]) == len(figures["int8"]["seconds"]) == 2
    assert figures["speedup_int8_over_fp32"] == pytest.approx(
        figures["fp32"]["median_s"] / figures["int8"]["median_s"], rel=1e-2)
    assert 0.8 < figures["cosine_fp32_int8"]["min"] <= figures["cosine_fp32_int8"]["mean"] < 1


def test_bench_offers_int8_and_renders_it() -> None:
    assert "int8" in BENCHMARKS
    page = benchmarks_markdown({"machine": {}, "int8": {
        "chunks": 300, "speedup_int8_over_fp32": 1.5, "cosine_fp32_int8": {"mean": 0.94}}})
    assert "## int8 encoder" in page and "| speedup_int8_over_fp32 | 1.500 |" in page
    assert "| cosine_fp32_int8.mean | 0.940 |" in page


def test_int8_setting_joins_the_store_signature(tmp_path: Path, settings: Settings,
                                                embedder) -> None:  # type: ignore[no-untyped-def]
    from index.build import update
    from index.embedding import get_embedder
    from index.errors import ModelMismatchError
    from index.store import Store

    corpus = tmp_path / "news.jsonl"
    corpus.write_text("".join(json.dumps(a) + "\n" for a in ARTICLES))
    int8_settings = settings.replace(encoder_int8=True)
    assert settings.encoder_signature == settings.embedding_model
    assert int8_settings.encoder_signature == settings.embedding_model + "+int8"
    assert Settings.from_env({"NEWSQA_ENCODER_INT8": "yes"}).encoder_int8 is True
    update([corpus], int8_settings)
    stored = Store(int8_settings, model_name=int8_settings.encoder_signature)
    assert stored.count()[0] == len(ARTICLES)
    with pytest.raises(ModelMismatchError):
        Store(settings, model_name=settings.encoder_signature).count()  # fp32 reader
    corpus.write_text(corpus.read_text() + json.dumps({**ARTICLES[0], "id": "c", "body": "New."})
                      + "\n")
    with pytest.raises(ModelMismatchError):
        update([corpus], settings)  # fp32 writer on an int8 store: needs --rebuild
    int8 = get_embedder(settings.embedding_model, int8=True)
    assert int8 is not embedder and int8.signature == int8_settings.encoder_signature
    texts = [ARTICLES[0]["body"]]
    assert np.allclose(int8.embed_documents(texts), encode(quantised_copy(embedder.model), texts),
                       atol=1e-5)
    assert not np.allclose(int8.embed_documents(texts), embedder.embed_documents(texts),
                           atol=1e-4)
