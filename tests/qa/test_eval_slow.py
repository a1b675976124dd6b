"""Benchmark-style checks over a small RealTime QA subset (run with -m slow)."""

from __future__ import annotations

import pytest

from tests.conftest import SHARED_EVAL, require

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def eval_qa(tmp_path_factory: pytest.TempPathFactory, embedder):  # type: ignore[no-untyped-def]
    from index.settings import Settings
    from qa.api import NewsQA
    from qa.eval.qa_bench import index_subset, load_subset

    require((SHARED_EVAL / "corpus.jsonl").is_file(), f"the shared eval set ({SHARED_EVAL})")
    settings = Settings(data_dir=tmp_path_factory.mktemp("eval-data"))
    engine = NewsQA(settings, embedder=embedder)
    subset = load_subset(SHARED_EVAL, questions=15, distractors=40)
    index_subset(subset, settings, embedder, engine.store)
    engine.retriever_engine.refresh_keyword()
    engine.warm_up()
    return engine, subset


def test_hybrid_retrieval_finds_gold_articles(eval_qa) -> None:  # type: ignore[no-untyped-def]
    from qa.eval.qa_bench import evaluate_retrieval
    from qa.retriever import RetrievalConfig

    engine, subset = eval_qa
    results = evaluate_retrieval(engine.retriever_engine, subset,
                                 {"hybrid": RetrievalConfig(), "dense": RetrievalConfig(
                                     mode="dense")})
    assert results["hybrid"]["hit@5"] >= 0.8
    assert results["hybrid"]["mrr@10"] >= results["dense"]["mrr@10"] - 0.05


def test_refusal_gate_on_answerable_and_unanswerable(eval_qa) -> None:  # type: ignore[no-untyped-def]
    from qa.eval.qa_bench import calibrate_refusal

    engine, subset = eval_qa
    report = calibrate_refusal(engine, subset)
    assert report["default_gate"]["false_refusal"] <= 0.2
    assert report["default_gate"]["refusal_unanswerable"] >= 0.2


def test_latency_benchmark_reports_percentiles(eval_qa) -> None:  # type: ignore[no-untyped-def]
    from qa.eval.qa_bench import run_qa_benchmark

    engine, subset = eval_qa
    report = run_qa_benchmark(engine, subset)
    for key in ("retrieval_p50_ms", "retrieval_p95_ms", "answer_p50_ms", "answer_p95_ms"):
        assert report[key] > 0
    assert report["retrieval_p95_ms"] >= report["retrieval_p50_ms"]
    assert report["articles"] == len(subset.articles)
