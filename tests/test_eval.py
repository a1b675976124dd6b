"""Evaluation: metrics against hand-computed values, data validation, the id mapping, a run
on a tiny hand-made corpus with exact counts, and a quick run on the shared dev set."""

from __future__ import annotations

import dataclasses
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
    coverage_at,
    distinct_in_order,
    expected_calibration_error,
    gold_rank,
    hit_at_k,
    hit_rate,
    holders_of_answer,
    mean_reciprocal_rank,
    normalise_answer,
    padded,
    percentile,
    reciprocal_rank,
    risk_coverage,
    squad_em,
    squad_f1,
)
from qa.eval.peers import RandomRanker
from qa.eval.report import (
    AblationRow,
    Calibration,
    EvalReport,
    QuestionResult,
    RefusalScores,
    ShortAnswerScores,
    SystemScores,
    hand_check_summary,
    load_hand_check,
    render_table,
    report_markdown,
    write_report,
)
from qa.eval.run import DocMapping, judge_answer, judge_short_answer, run_eval
from qa.records import Answer, Citation
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
    assert squad_em("The Buffalo Bills!", "buffalo bills") == 1.0
    assert squad_em("Bills", "Buffalo Bills") == 0.0
    # prediction "buffalo bills team" vs gold "buffalo bills": P = 2/3, R = 1, F1 = 0.8
    assert squad_f1("the Buffalo Bills team", "Buffalo Bills") == pytest.approx(0.8)
    # repeated tokens count once per occurrence: P = 1/3, R = 1/2, F1 = 0.4
    assert squad_f1("new new york", "new jersey") == pytest.approx(0.4)
    assert squad_f1("Pittsburgh", "Buffalo Bills") == 0.0
    assert squad_f1("", "") == 1.0 and squad_f1("a", "Bills") == 0.0


def test_expected_calibration_error_over_ten_bins_matches_hand_computation() -> None:
    # bin 0.9-1.0: {0.95 right, 0.95 wrong} -> |0.95 - 0.5| * 2; bin 0.1-0.2: {0.15 wrong}
    # -> 0.15; bin 0.5-0.6: {0.5 right} -> 0.5. ECE = (0.9 + 0.15 + 0.5) / 4
    confidences = [0.95, 0.95, 0.15, 0.5]
    outcomes = [True, False, False, True]
    assert expected_calibration_error(confidences, outcomes) == pytest.approx(1.55 / 4)
    assert expected_calibration_error([1.0, 0.0], [True, False]) == 0.0  # 1.0: the top bin
    assert expected_calibration_error([0.3, 0.3, 0.3], [True, False, False], bins=1) == \
        pytest.approx(abs(0.3 - 1 / 3))
    assert math.isnan(expected_calibration_error([], []))
    with pytest.raises(ValueError):
        expected_calibration_error([1.2], [True])


def test_risk_coverage_sweeps_the_threshold() -> None:
    confidences = [0.9, 0.8, 0.8, 0.4, 0.1]
    outcomes = [True, False, True, True, False]
    curve = risk_coverage(confidences, outcomes)
    assert [p.threshold for p in curve] == [0.9, 0.8, 0.4, 0.1]
    assert [p.answered for p in curve] == [1, 3, 4, 5]
    assert [p.coverage for p in curve] == pytest.approx([0.2, 0.6, 0.8, 1.0])
    assert [p.accuracy for p in curve] == pytest.approx([1.0, 2 / 3, 0.75, 0.6])
    nobody = coverage_at(0.95, confidences, outcomes)
    assert nobody.answered == 0 and nobody.coverage == 0.0 and math.isnan(nobody.accuracy)
    # a level of -inf never answers, +inf always does
    edge = coverage_at(0.5, [math.inf, -math.inf, 0.6], [False, True, True])
    assert (edge.answered, edge.accuracy) == (2, 0.5)


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


# --- judging short answers ----------------------------------------------------------------

BODY = "Harbour chief Marta Vidal said the trial would ease congestion."


def _answer(*, found: bool = True, short: tuple[int, int] | None = (14, 25),
            article: str = "a-gold", confidence: float | None = 0.8) -> Answer:
    start, end = 0, len(BODY)
    citation = Citation(number=1, article=ArticleMeta(id=article), quote=BODY, start=start,
                        end=end, answer_start=short[0] if short else None,
                        answer_end=short[1] if short else None)
    return Answer(question="Who is the harbour chief?", text=BODY, found=found,
                  citations=(citation,) if found else (), confidence=confidence)


def _mapping() -> DocMapping:
    return DocMapping(to_doc={"a-gold": "gold", "a-other": "other"},
                      canon={"gold": "gold", "other": "other"},
                      to_article={"gold": "a-gold", "other": "a-other"}, unmapped=[])


QUESTION = EvalQuestion(id="q1", query="Who is the harbour chief?", answer="Marta Vidal",
                        question_date="2022-03-05", gold=("gold",))


def test_short_answer_scores_em_f1_and_support_on_its_own_span() -> None:
    exact = judge_short_answer(_answer(), QUESTION, _mapping())
    assert exact["short_answer"] == "Marta Vidal"
    assert (exact["short_em"], exact["short_f1"], exact["short_supported"]) == (1.0, 1.0, True)
    # first quote "harbour chief marta vidal said trial would ease congestion": 9 tokens,
    # 2 in common with the gold's 2: P = 2/9, R = 1, F1 = 4/11
    assert exact["first_quote_f1"] == pytest.approx(4 / 11)
    assert exact["confidence"] == 0.8
    # "chief Marta": EM 0, F1 = 2 * (1/2 * 1/2) / 1 = 0.5, the gold not inside: unsupported
    partial = judge_short_answer(_answer(short=(8, 19)), QUESTION, _mapping())
    assert partial["short_answer"] == "chief Marta"
    assert (partial["short_em"], partial["short_f1"]) == (0.0, pytest.approx(0.5))
    assert partial["short_supported"] is False
    # the right words from a non-gold article: scored, but not supported
    elsewhere = judge_short_answer(_answer(article="a-other"), QUESTION, _mapping())
    assert elsewhere["short_f1"] == 1.0 and elsewhere["short_supported"] is False


def test_no_short_answer_or_a_refusal_scores_zero() -> None:
    quote_only = judge_short_answer(_answer(short=None), QUESTION, _mapping())
    assert (quote_only["short_answer"], quote_only["short_em"], quote_only["short_f1"]) == \
        ("", 0.0, 0.0)
    assert quote_only["first_quote_f1"] == pytest.approx(4 / 11)
    assert quote_only["short_supported"] is False
    refused = judge_short_answer(_answer(found=False), QUESTION, _mapping())
    assert (refused["short_f1"], refused["first_quote_f1"], refused["short_supported"]) == \
        (0.0, 0.0, False)


def test_span_support_leaves_the_refusal_out() -> None:
    answered = judge_answer(_answer(), QUESTION, _mapping())
    assert answered["supported"] and answered["span_supported"]
    other = judge_answer(_answer(article="a-other"), QUESTION, _mapping())
    assert not other["supported"] and not other["span_supported"]
    refused_with_quotes = Answer(question="q", text="", found=False,
                                 citations=_answer().citations)
    judged = judge_answer(refused_with_quotes, QUESTION, _mapping())
    assert judged["span_supported"] and not judged["supported"]


# --- the report's new sections -----------------------------------------------------------------


def _report(tmp_path: Path, *, ablation: bool = True) -> EvalReport:
    newsqa = SystemScores(name="newsqa", questions=4, hits=(0.5,) * 5 + (0.9,) * 5,
                          mrr10=0.7, latency_p50_ms=30.0, latency_p95_ms=50.0,
                          answer_support=0.65, answer_contained=0.8, answer_p50_ms=420.0,
                          answer_p95_ms=700.0)
    calibration = Calibration(
        source="the 'no refusal' variant", threshold=0.5,
        answerable=((0.9, True), (0.7, True), (0.3, False), (-math.inf, False)),
        unanswerable=((0.6, False), (0.2, False), (math.inf, False), (-math.inf, False)))
    rows = (AblationRow("extractive", "before the reader", 0.28, 0.0, 0.23, 0.01, 160.0),
            AblationRow("full", "the product", 0.65, 0.41, 0.72, 0.08, 420.0)) \
        if ablation else ()
    return EvalReport(
        corpus="c.jsonl", queries="q.jsonl", selection={"answerer": "reader", "reader": "ab12"},
        counts={"questions": 4, "articles": 9}, systems={"newsqa": newsqa},
        refusal=RefusalScores(unanswerable=4, refused=3, answerable=4, false_refusals=0,
                              excluded_articles_mean=2.0),
        timings={"total_s": 60.0}, cache={}, settings={}, environment={}, started_at="now",
        short_answers=ShortAnswerScores(questions=4, exact_match=0.25, f1=0.4,
                                        first_quote_f1=0.1, support=0.5,
                                        with_short_answer=0.75),
        calibration=calibration, ablation=rows,
        hand_check={"checked": 2, "right": 1, "judged": "as of 16:15", "listed": 3})


def test_calibration_pools_variants_and_skips_infinite_levels(tmp_path: Path) -> None:
    calibration = _report(tmp_path).calibration
    assert calibration is not None
    assert calibration.rated() == 5 and calibration.rated(pooled=False) == 3
    # answerable alone: bins 0.9 (right), 0.7 (right), 0.3 (wrong): (0.1 + 0.3 + 0.3) / 3
    assert calibration.ece(pooled=False) == pytest.approx(0.7 / 3)
    # pooled adds 0.6 and 0.2, both wrong: (0.1 + 0.3 + 0.3 + 0.6 + 0.2) / 5
    assert calibration.ece() == pytest.approx(1.5 / 5)
    assert [p.threshold for p in calibration.curve()] == [0.9, 0.7, 0.3]
    rows = {a.threshold: (a, v) for a, v in calibration.coverage_rows()}
    assert 0.5 in rows and len(rows) == 10  # the product's threshold joins 0.0 .. 0.9
    answerable, variants = rows[0.5]
    assert (answerable.answered, answerable.accuracy) == (2, 1.0)
    assert (variants.answered, variants.coverage) == (2, 0.5)  # 0.6 and the +inf one
    assert rows[0.0][0].answered == 3  # the gate's refusal (-inf) never answers


def test_report_shows_the_issue_targets_short_answers_confidence_and_ablation(
        tmp_path: Path) -> None:
    report = _report(tmp_path)
    checks = report.checks()
    assert checks["answer support >= 60%"]["met"]
    assert checks["support on the short answer's span >= 60%"] == {
        "value": 0.5, "shown": "50.0%", "met": False}
    assert checks["short-answer F1 >= 0.35"]["met"]
    assert not checks["short-answer F1 >= 0.45 (stretch)"]["met"]
    assert checks["refusal rate >= 70%"]["met"] and checks["false refusals <= 10%"]["met"]
    assert not checks["hit@5 >= 85.3%"]["met"] and checks["MRR@10 >= 69.5"]["met"]
    assert checks["answer latency p50 <= 500 ms"]["met"]
    text = report_markdown(report, coverage_name="eval-coverage.png")
    assert "## Answers (newsqa, reader answerer)" in text and "`ab12`" in text
    assert "exact match **0.250**, token F1 **0.400**" in text
    assert "## Confidence" in text and "ECE over 10 equal-width bins: **0.300**" in text
    assert "| 0.500 (reader threshold) | 50.0% (2) | 100.0% | 50.0% (2) |" in text
    assert "![risk-coverage](eval-coverage.png)" in text
    assert "| full | 65.0% | 0.410 | 72.0% | 8.0% | 420 ms |" in text
    assert "of 2 answered unanswerable variants, 1 were right" in text
    assert "| short-answer F1 >= 0.35 | 0.400 | yes |" in text
    table = render_table(report)
    assert "short answers: EM 0.250, F1 0.400" in table and "ablation full:" in table
    assert "hand check: of 2 answered variants, 1 were right" in table
    bare = report_markdown(_report(tmp_path, ablation=False))
    assert "## Ablation" not in bare


def test_write_report_draws_the_risk_coverage_chart_and_keeps_texts_out(tmp_path: Path
                                                                      ) -> None:
    report = dataclasses.replace(_report(tmp_path), questions=(QuestionResult(
        id="q1", query="Who?", answer="Vidal", gold=("g",), ranks={}, short_answer="Vidal",
        variant_reply="Someone", variant_quotes=("a quote",)),))
    write_report(report, tmp_path / "out")
    assert (tmp_path / "out" / "eval-coverage.png").stat().st_size > 1000
    data = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert data["calibration"]["ece_10_bins"] == pytest.approx(0.3)
    assert data["short_answers"]["f1"] == 0.4 and data["ablation"][1]["name"] == "full"
    row = data["questions"][0]
    assert not {"query", "answer", "short_answer", "variant_reply", "variant_quotes"} & set(row)


def test_hand_check_counts_only_variants_this_run_answered(tmp_path: Path) -> None:
    path = tmp_path / "check.json"
    path.write_text(json.dumps({"judged": "qa/reading.py at 16:15", "checks": [
        {"id": "q1", "verdict": "right", "answerable": True,
         "reason": "a paraphrase names the winner"},
        {"id": "q2", "verdict": "wrong", "reason": "a different match"},
        {"id": "q3", "verdict": "right", "reason": "now refused"}]}))
    results = [QuestionResult(id=i, query="", answer="", gold=(), ranks={},
                              refused_unanswerable=refused)
               for i, refused in (("q1", False), ("q2", False), ("q3", True))]
    summary = hand_check_summary(load_hand_check(path), results)
    assert summary == {"checked": 2, "right": 1, "answerable": 1,
                       "judged": "qa/reading.py at 16:15", "listed": 3}
    assert load_hand_check(tmp_path / "missing.json") == {}
    path.write_text(json.dumps({"checks": [{"id": "q1", "verdict": "maybe"}]}))
    with pytest.raises(ValueError, match="right or wrong"):
        load_hand_check(path)


def test_committed_hand_check_is_well_formed() -> None:
    from qa.eval.report import REFUSAL_CHECK

    require(REFUSAL_CHECK.is_file(), f"the hand check ({REFUSAL_CHECK})")
    record = load_hand_check(REFUSAL_CHECK)
    checks = record["checks"]
    assert 0 < len(checks) <= 30 and record["judged"]
    assert len({c["id"] for c in checks}) == len(checks)
    assert all(c["reason"] and len(c["reason"]) <= 200 for c in checks)
    assert all(isinstance(c["answerable"], bool) for c in checks)
    assert all(c["answerable"] for c in checks if c["verdict"] == "right")


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


def test_tiny_corpus_ablation_runs_every_variant_through_the_one_loop(settings, embedder,
                                                                       tmp_path: Path) -> None:
    from qa.eval.ablation import ablation_variants

    corpus = _write_jsonl(tmp_path / "corpus.jsonl", TINY_DOCS)
    queries = _write_jsonl(tmp_path / "queries.jsonl", TINY_QUESTIONS)
    report = run_eval(corpus, queries, settings, systems=("newsqa",),
                      ablation=ablation_variants())
    rows = {row.name: row for row in report.ablation}
    assert list(rows) == ["extractive", "no refusal", "no gate", "calibrated refusal",
                          "calibrated refusal, no gate", "no answerer", "no short lead",
                          "full"]
    full, refusal, short = rows["full"], report.refusal, report.short_answers
    assert refusal is not None and short is not None
    assert (full.answer_support, full.refusal_rate, full.false_refusal_rate,
            full.short_answer_f1) == (report.systems["newsqa"].answer_support,
                                      refusal.refusal_rate, refusal.false_refusal_rate,
                                      short.f1)
    # the per-question results stay the product's, not the last variant's
    assert sum(not q.found for q in report.questions) / 3 == full.false_refusal_rate
    # today's extractive answerer: every answer supported, every variant refused (above)
    assert (rows["extractive"].answer_support, rows["extractive"].refusal_rate) == (1.0, 1.0)
    assert rows["extractive"].short_answer_f1 == 0.0  # it has no short answers
    # leaving a refusal reason out can only refuse less, adding one only more
    for name in ("no refusal", "no gate"):
        assert rows[name].refusal_rate <= full.refusal_rate
        assert rows[name].false_refusal_rate <= full.false_refusal_rate
    assert rows["calibrated refusal"].refusal_rate >= full.refusal_rate
    calibration = report.calibration
    assert calibration is not None and "no refusal" in calibration.source
    assert len(calibration.answerable) == 3 and len(calibration.unanswerable) == 3
    assert {k for k in report.timings if k.startswith("ablation")} == {
        "ablation extractive_s", "ablation no refusal_s", "ablation no gate_s",
        "ablation calibrated refusal_s", "ablation calibrated refusal, no gate_s",
        "ablation no answerer_s", "ablation no short lead_s"}


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
