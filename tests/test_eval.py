"""Evaluation: metric functions on hand-made rankings, data validation, and a quick real run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from qa.baselines import distinct_in_order
from qa.evaluation import (
    CorpusDoc,
    EvalError,
    EvalQuestion,
    contains_answer,
    gold_rank,
    hit_at_k,
    load_corpus,
    load_queries,
    normalise_answer,
    percentile,
    random_ranker,
    reciprocal_rank,
    render_table,
    run_eval,
    select,
    write_report,
)
from tests.conftest import SHARED_EVAL

# --- metrics -----------------------------------------------------------------------------


def test_normalise_answer_strips_case_punctuation_quotes_and_articles() -> None:
    assert normalise_answer("“Squid Game”") == "squid game"
    assert normalise_answer("The U.S. Supreme Court!") == "us supreme court"
    assert normalise_answer("an   Apple, a day") == "apple day"
    assert normalise_answer("‘Top Gun: Maverick’") == "top gun maverick"
    assert normalise_answer("COVID-19") == "covid 19"
    assert normalise_answer("") == ""


def test_contains_answer_matches_whole_words_only() -> None:
    assert contains_answer("“Squid Game”", "Netflix said \"Squid Game\" returns.")
    assert contains_answer("Europe", "European rules... and Europe, too")
    assert not contains_answer("Europe", "European regulators")
    assert not contains_answer("us", "the bus stopped")
    assert not contains_answer("the", "the end")  # normalises to nothing: never a match


def test_rank_metrics_on_hand_made_rankings() -> None:
    ranking = ["d3", "d7", "d1", "d9"]
    assert gold_rank(ranking, {"d1"}) == 3
    assert gold_rank(ranking, {"d9", "d7"}) == 2
    assert gold_rank(ranking, {"d0"}) is None
    assert hit_at_k(ranking, {"d1"}, 1) == 0.0
    assert hit_at_k(ranking, {"d1"}, 3) == 1.0
    assert hit_at_k(ranking, {"d0"}, 10) == 0.0
    assert reciprocal_rank(ranking, {"d3"}) == 1.0
    assert reciprocal_rank(ranking, {"d1"}) == pytest.approx(1 / 3)
    assert reciprocal_rank(ranking, {"d9"}, k=3) == 0.0
    assert reciprocal_rank([], {"d1"}) == 0.0


def test_passages_become_a_distinct_article_ranking() -> None:
    assert distinct_in_order(["a", "a", "b", "a", "c", "b"]) == ["a", "b", "c"]


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile([5.0], 95) == 5.0
    assert percentile([10.0, 20.0], 100) == 20.0
    assert math.isnan(percentile([], 50))


# --- data ----------------------------------------------------------------------------------


def _doc(doc_id: str, body: str = "Some body text about things.") -> CorpusDoc:
    return CorpusDoc(id=doc_id, title=doc_id, source="S", published="2022-01-01",
                     url=f"https://example.org/{doc_id}", authors=(), body=body)


def test_select_sample_keeps_gold_plus_seeded_distractors() -> None:
    docs = [_doc(f"d{i:02d}") for i in range(40)]
    questions = [EvalQuestion(id=f"q{i}", query=f"question {i}?", answer="x",
                              question_date="2022-01-02", gold=(f"d{i:02d}",))
                 for i in range(10)]
    chosen, subset = select(questions, docs, sample=3, seed=7, distractors=2)
    again, subset_again = select(questions, docs, sample=3, seed=7, distractors=2)
    assert [q.id for q in chosen] == [q.id for q in again]
    assert [d.id for d in subset] == [d.id for d in subset_again]
    assert len(chosen) == 3 and len(subset) == 3 + 3 * 2
    assert {g for q in chosen for g in q.gold} <= {d.id for d in subset}
    limited, everything = select(questions, docs, limit=4)
    assert [q.id for q in limited] == ["q0", "q1", "q2", "q3"] and len(everything) == 40


def test_bad_data_is_reported_with_file_line_and_field(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"id": "d1", "body": "text"}) + "\n{not json\n")
    with pytest.raises(EvalError, match=r"corpus.jsonl:2: not valid JSON"):
        load_corpus(corpus)
    corpus.write_text(json.dumps({"id": "d1", "title": "t"}) + "\n")
    with pytest.raises(EvalError, match=r"corpus.jsonl:1: field 'body'"):
        load_corpus(corpus)
    queries = tmp_path / "queries.jsonl"
    queries.write_text(json.dumps({"id": "q1", "query": "Who?", "answer": "x",
                                   "evidence": [{"doc_id": "d9"}]}) + "\n")
    with pytest.raises(EvalError, match=r"queries.jsonl:1: evidence doc_id 'd9'"):
        load_queries(queries, {"d1"})
    with pytest.raises(EvalError, match="cannot read"):
        load_corpus(tmp_path / "missing.jsonl")


# --- a quick real run ------------------------------------------------------------------------

#: Sanity floors: the real system must clear them and a random ranker must not.
HIT1_FLOOR = 0.5
MRR_FLOOR = 0.6


@pytest.mark.skipif(not (SHARED_EVAL / "corpus.jsonl").is_file(),
                    reason="shared eval set not present")
def test_quick_sample_eval_real_system_beats_random(settings, embedder, tmp_path: Path) -> None:
    """6 sampled questions on their gold articles + 2 distractors each, every system."""
    broken = random_ranker(seed=1)
    report = run_eval(SHARED_EVAL / "corpus.jsonl", SHARED_EVAL / "queries_dev.jsonl",
                      settings, sample=6, seed=3, distractors=2,
                      systems=("newsqa", "textbook", "bm25", broken))
    data = report.to_dict()
    ours, rnd = data["systems"]["newsqa"], data["systems"]["random"]
    counts = data["counts"]
    assert counts["questions"] == 6 and counts["articles"] == counts["gold_articles"] + 6 * 2
    for name in ("newsqa", "textbook", "bm25", "random"):
        for key in ("hit@1", "hit@5", "hit@10", "mrr@10"):
            assert 0.0 <= data["systems"][name][key] <= 1.0
    # ~19 articles: a random ranking puts a gold article first ~5% of the time (MRR ~0.15)
    assert ours["hit@1"] >= HIT1_FLOOR > rnd["hit@1"]
    assert ours["mrr@10"] >= MRR_FLOOR > rnd["mrr@10"]
    assert ours["hit@5"] >= rnd["hit@5"]
    assert 0.0 < ours["answer_support"] <= 1.0
    assert 0.0 <= data["refusal"]["refusal_rate"] <= 1.0
    assert 0.0 <= data["refusal"]["false_refusal_rate"] <= 1.0
    assert data["latency"]["newsqa"]["answer_p50_ms"] > 0
    assert "newsqa vs textbook" in render_table(report)

    out = write_report(report, tmp_path / "report")
    text = out.read_text()
    assert "| newsqa |" in text and "| textbook |" in text and "eval-hitk.png" in text
    assert (tmp_path / "report" / "eval-hitk.png").stat().st_size > 1000
    assert json.loads((tmp_path / "report" / "eval.json").read_text())["counts"]["questions"] == 6

    # second run: both stores come from the cache (nothing re-embedded), same scores
    again = run_eval(SHARED_EVAL / "corpus.jsonl", SHARED_EVAL / "queries_dev.jsonl",
                     settings, sample=6, seed=3, distractors=2, systems=("newsqa", "textbook"),
                     refusal=False)
    assert again.cache["newsqa_reused"] and again.cache["textbook_reused"]
    assert again.systems["newsqa"].hits == report.systems["newsqa"].hits
    assert again.systems["textbook"].hits == report.systems["textbook"].hits


# --- benchmarks ------------------------------------------------------------------------------


@pytest.mark.slow
def test_scale_benchmark_measures_the_store_and_writes_markdown(settings, tmp_path: Path
                                                                 ) -> None:
    from qa.evaluation import benchmarks_markdown, machine_info, run_scale_benchmark

    scale = run_scale_benchmark(settings, sizes=(200, 600))
    rows = scale["rows"]
    assert [r["chunks"] for r in rows] == [200, 600]
    assert [r["stored_chunks"] for r in rows] == [200, 600]
    assert all(r["disk_bytes"] > 0 and r["serve_rss"] > 0 and r["query_p50_ms"] > 0
               for r in rows)
    assert rows[1]["disk_bytes"] > rows[0]["disk_bytes"]
    assert scale["product_path"]["chunks"] == 200
    assert scale["capacity"]["chunks_in_budget"] > 0
    text = benchmarks_markdown({"machine": machine_info(settings), "scale": scale})
    assert "| 600 |" in text and "NEWSQA_CHROMA_URL" in text
    assert not (settings.data_dir / "bench" / "scale").exists()
