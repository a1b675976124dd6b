"""Evaluation: metrics against hand-computed values, data validation, the id mapping, a run
on a tiny hand-made corpus with exact counts, and a quick run on the shared dev set."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from index.records import Article, ArticleMeta
from qa.errors import EvalError
from qa.eval.data import (
    HELD_OUT_WEEKS,
    CorpusDoc,
    EvalQuestion,
    held_out_weeks,
    load_corpus,
    load_queries,
    select,
)
from qa.eval.machine import in_child
from qa.eval.metrics import (
    contains_answer,
    distinct_in_order,
    exact_match,
    gold_rank,
    hit_at_k,
    hit_rate,
    holders_of_answer,
    mean_reciprocal_rank,
    normalise_answer,
    padded,
    percentile,
    reciprocal_rank,
    token_f1,
)
from qa.eval.peers import RandomRanker
from qa.eval.report import render_table, write_report
from qa.eval.run import DocMapping, run_eval
from tests import eval_children
from tests.conftest import SHARED_EVAL, require

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


def test_holders_of_answer_finds_whole_word_occurrences() -> None:
    bodies = {"d1": padded("The Buffalo Bills won."), "d2": padded("Buffalo wings."),
              "d3": padded("BUFFALO BILLS, again")}
    assert holders_of_answer("Buffalo Bills", bodies) == {"d1", "d3"}
    assert holders_of_answer("the", bodies) == set()


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


def test_hit_rate_and_mrr_over_questions_match_hand_computation() -> None:
    ranks = [1, 3, None, 2, 11]
    assert hit_rate(ranks, 1) == pytest.approx(1 / 5)
    assert hit_rate(ranks, 3) == pytest.approx(3 / 5)
    assert hit_rate(ranks, 10) == pytest.approx(3 / 5)
    assert mean_reciprocal_rank(ranks, 10) == pytest.approx((1 + 1 / 3 + 1 / 2) / 5)
    assert mean_reciprocal_rank(ranks, 2) == pytest.approx((1 + 1 / 2) / 5)
    assert math.isnan(hit_rate([], 5)) and math.isnan(mean_reciprocal_rank([]))


def test_token_f1_and_exact_match_follow_squad() -> None:
    assert exact_match("The Buffalo Bills!", "buffalo bills") == 1.0
    assert exact_match("Bills", "Buffalo Bills") == 0.0
    # prediction "buffalo bills team" vs gold "buffalo bills": P = 2/3, R = 1, F1 = 0.8
    assert token_f1("the Buffalo Bills team", "Buffalo Bills") == pytest.approx(0.8)
    # repeated tokens count once per occurrence: P = 1/3, R = 1/2, F1 = 0.4
    assert token_f1("new new york", "new jersey") == pytest.approx(0.4)
    assert token_f1("Pittsburgh", "Buffalo Bills") == 0.0
    assert token_f1("", "") == 1.0 and token_f1("a", "Bills") == 0.0


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
    corpus.write_text(json.dumps({"id": "d1", "body": "b", "published_at": "last week"}) + "\n")
    with pytest.raises(EvalError, match=r"corpus.jsonl:1: field 'published_at' is not an ISO"):
        load_corpus(corpus)
    queries = tmp_path / "queries.jsonl"
    queries.write_text(json.dumps({"id": "q1", "query": "Who?", "answer": "x",
                                   "evidence": [{"doc_id": "d9"}]}) + "\n")
    with pytest.raises(EvalError, match=r"queries.jsonl:1: evidence doc_id 'd9'"):
        load_queries(queries, {"d1"})
    with pytest.raises(EvalError, match="cannot read"):
        load_corpus(tmp_path / "missing.jsonl")


def test_corpus_doc_article_id_is_the_store_rule() -> None:
    body = "  Harbour news.\r\n\r\nThe  authority met. "
    assert _doc("d1", body).article_id == Article(title="x", body=body).id


def test_held_out_weeks_follow_their_rule() -> None:
    weeks = ["20230113", "20230106", "20230331", "20230407", "20230414", "20241227"]
    assert held_out_weeks(weeks) == ("20230106", "20230407", "20241227")
    train = SHARED_EVAL.parent / "realtimeqa-train" / "queries_train.jsonl"
    require(train.is_file(), f"the RealTime QA training set ({train})")
    ids = [json.loads(line)["id"] for line in train.read_text(encoding="utf-8").splitlines()]
    assert held_out_weeks(i.split("_")[0] for i in ids) == HELD_OUT_WEEKS


def test_doc_mapping_joins_by_url_then_body_and_names_duplicates_once() -> None:
    same = "The same wire story, syndicated twice."
    docs = [_doc("d1", "First story."), _doc("d2", same), _doc("d3", same),
            CorpusDoc(id="d4", title="", source="", published="", url="", authors=(),
                      body="Only known by its body.")]
    stored = [ArticleMeta(id="a-url-1", url="https://example.org/d1"),
              ArticleMeta(id=Article(title="", body=same).id, url="https://example.org/d2"),
              ArticleMeta(id=Article(title="", body="Only known by its body.").id)]
    mapping = DocMapping.build(docs, stored)
    assert mapping.to_article["d1"] == "a-url-1"
    assert mapping.to_article["d2"] == mapping.to_article["d3"] == stored[1].id
    assert mapping.canon == {"d1": "d1", "d2": "d2", "d3": "d2", "d4": "d4"}
    assert mapping.unmapped == []
    assert mapping.gold(EvalQuestion("q", "?", "x", "", ("d3",))) == {"d2"}
    assert DocMapping.build([_doc("d9")], stored).unmapped == ["d9"]


# --- child processes -------------------------------------------------------------------------


def test_in_child_returns_the_result_and_fails_fast_on_a_dead_child() -> None:
    assert in_child(eval_children.report_answer, 21) == {"answer": 42}
    with pytest.raises(EvalError, match=r"die_silently died \(exit code 3\)"):
        in_child(eval_children.die_silently, poll_seconds=0.2)


# --- a tiny hand-made corpus: exact counts ----------------------------------------------------

TINY_DOCS = [
    {"id": "harbour", "title": "Port Vell harbour approves night shipping", "source": "Wire",
     "published_at": "2022-03-01", "url": "https://example.org/harbour", "authors": [],
     "body": "The Port Vell harbour authority approved night-time container traffic on "
             "Monday. Harbour chief Marta Vidal said the six-month trial would ease "
             "congestion after the dock strike.\n\nResidents said they would appeal."},
    {"id": "harbour-copy", "title": "Syndicated: harbour", "source": "Daily",
     "published_at": "2022-03-01", "url": "https://example.org/harbour-copy", "authors": [],
     "body": "The Port Vell harbour authority approved night-time container traffic on "
             "Monday. Harbour chief Marta Vidal said the six-month trial would ease "
             "congestion after the dock strike.\n\nResidents said they would appeal."},
    {"id": "orchard", "title": "Frost ruins the cherry harvest in Valdoria", "source": "Wire",
     "published_at": "2022-04-02", "url": "https://example.org/orchard", "authors": [],
     "body": "A late frost destroyed most of the cherry harvest in the Valdoria valley. "
             "Farmers' union leader Tomas Brenner asked the government for emergency aid."
             "\n\nThe frost hit on the night of April 1."},
    {"id": "chess", "title": "Teenager wins the Ostrava chess open", "source": "Sport",
     "published_at": "2022-05-03", "url": "https://example.org/chess", "authors": [],
     "body": "Fifteen-year-old Lena Kowalczyk won the Ostrava chess open on Sunday, beating "
             "three grandmasters. Her coach said she trains six hours a day.\n\nThe "
             "tournament drew 300 players from 20 countries."},
    {"id": "later", "title": "Chess prodigy signs sponsorship deal", "source": "Sport",
     "published_at": "2022-09-01", "url": "https://example.org/later", "authors": [],
     "body": "Chess champion Lena Kowalczyk, who won the Ostrava chess open, signed a "
             "sponsorship deal with a bank in September."},
]
TINY_QUESTIONS = [
    {"id": "t1", "query": "Who is the harbour chief of Port Vell?", "answer": "Marta Vidal",
     "question_date": "2022-03-05", "evidence": [{"doc_id": "harbour-copy"}]},
    {"id": "t2", "query": "Which union leader asked for emergency aid after the frost in "
                          "Valdoria?", "answer": "Tomas Brenner",
     "question_date": "2022-04-10", "evidence": [{"doc_id": "orchard"}]},
    {"id": "t3", "query": "Who won the Ostrava chess open?", "answer": "Lena Kowalczyk",
     "question_date": "2022-05-10", "evidence": [{"doc_id": "chess"}]},
]


class FixedRanker:
    """A ranking system with a hand-written answer per question: exact expected scores."""

    name = "fixed"

    def __init__(self, rankings: dict[str, list[str]]) -> None:
        self.rankings = rankings

    def rank(self, query: str, depth: int, until: str | None) -> list[str]:
        return self.rankings.get(query, [])[:depth]


def _write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_tiny_corpus_eval_gives_exact_counts(settings, embedder, tmp_path: Path) -> None:
    corpus = _write_jsonl(tmp_path / "corpus.jsonl", TINY_DOCS)
    queries = _write_jsonl(tmp_path / "queries.jsonl", TINY_QUESTIONS)
    q1, q2, q3 = (q["query"] for q in TINY_QUESTIONS)
    # t1: the copy is the same article as "harbour", so "harbour" first is a hit at rank 1;
    # t2: gold third; t3: gold absent. hit@1 = 1/3, hit@3 = 2/3, MRR = (1 + 1/3) / 3.
    fixed = FixedRanker({q1: ["harbour", "chess"], q2: ["chess", "harbour", "orchard"],
                         q3: ["orchard", "harbour"]})
    report = run_eval(corpus, queries, settings, systems=("newsqa", "bm25", fixed))
    data = report.to_dict()
    assert data["counts"]["questions"] == 3 and data["counts"]["articles"] == 5
    assert data["counts"]["stored_articles"] == 4  # the syndicated copy is stored once
    assert [q.ranks["fixed"] for q in report.questions] == [1, 3, None]
    assert report.systems["fixed"].hit(1) == pytest.approx(1 / 3)
    assert report.systems["fixed"].hit(3) == pytest.approx(2 / 3)
    assert report.systems["fixed"].mrr10 == pytest.approx((1 + 1 / 3) / 3)
    # the product must beat the fixed ranker: every gold article first
    assert [q.ranks["newsqa"] for q in report.questions] == [1, 1, 1]
    assert [q.ranks["bm25"] for q in report.questions] == [1, 1, 1]
    assert [q.supported for q in report.questions] == [True, True, True]
    assert [q.first_citation for q in report.questions] == ["harbour", "orchard", "chess"]
    assert report.systems["newsqa"].answer_support == 1.0
    # unanswerable variants: t1 leaves out both harbour docs (one article), t3 the two chess
    # articles (gold + the later one naming the winner); all three must be refused
    assert [q.excluded for q in report.questions] == [1, 1, 2]
    refusal = report.refusal
    assert refusal is not None
    assert (refusal.unanswerable, refusal.refused, refusal.false_refusals) == (3, 3, 0)
    assert "newsqa vs fixed" in render_table(report)


# --- a quick real run ------------------------------------------------------------------------

#: Sanity floors: the real system must clear them and a random ranker must not.
HIT1_FLOOR = 0.5
MRR_FLOOR = 0.6


def test_quick_sample_eval_real_system_beats_random(settings, embedder, tmp_path: Path) -> None:
    """6 sampled questions on their gold articles + 2 distractors each, every system."""
    require((SHARED_EVAL / "corpus.jsonl").is_file(), f"the shared eval set ({SHARED_EVAL})")
    broken = RandomRanker(seed=1)
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
    from qa.eval.bench import benchmarks_markdown
    from qa.eval.machine import machine_info
    from qa.eval.scale import run_scale_benchmark

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
