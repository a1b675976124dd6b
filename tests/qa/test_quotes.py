"""Who said what: the quote index, merged speakers, answers from quotes, `newsqa quotes`.

On the shared seed index (real model, real store, quotes extracted at index time) and, for
the merge rule, on quotes under exact control written to a real store.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from index.records import Article, Chunk, Quote
from index.settings import Settings
from index.store import Store
from qa.api import NewsQA
from qa.pipeline import Pipeline, Request
from qa.question import FollowupRule, QuestionKind
from qa.quote_answer import QuoteAnswerer
from qa.quotes import QuoteIndex, SpeakerMerge, name_key
from qa.records import Answer

TRENTA_QUESTION = "What did Trenta say about intervention?"


def assert_cited_verbatim(qa: NewsQA, answer: Answer) -> None:
    assert answer.citations
    for citation in answer.citations:
        article = qa.article(citation.article.id)
        assert article is not None
        assert article.body[citation.start:citation.end] == citation.quote
        assert any(p.chunk.id == citation.chunk_id for p in answer.passages)


# --- on the seed index ----------------------------------------------------------------------

def test_trenta_on_intervention_is_answered_from_her_quotes(qa: NewsQA) -> None:
    answer = qa.ask(TRENTA_QUESTION)
    assert answer.found and answer.answerer == "quotes", answer.text
    assert answer.text.startswith("Elisabetta Trenta said")
    assert_cited_verbatim(qa, answer)
    assert any("the option does not exist" in c.quote for c in answer.citations)
    trenta = qa.quotes(speaker="Elisabetta Trenta")
    spans = {(q.article_id, a, b) for q in trenta for a, b in q.content_spans}
    for citation in answer.citations:  # every cited word is a word of one of her quotes
        for offset, char in enumerate(citation.quote, start=citation.start):
            assert char.isspace() or any(aid == citation.article.id and a <= offset < b
                                         for aid, a, b in spans), citation


def test_streaming_a_quote_answer_ends_with_the_same_answer(qa: NewsQA) -> None:
    pieces = list(qa.stream(TRENTA_QUESTION))
    final = pieces[-1]
    assert isinstance(final, Answer) and final.answerer == "quotes"
    assert "".join(p for p in pieces[:-1] if isinstance(p, str)) == final.text
    assert final.text == qa.ask(TRENTA_QUESTION).text


def test_conte_and_trenta_are_merged_speakers(qa: NewsQA) -> None:
    speakers = {s.name: s for s in qa.speakers()}
    assert {"Giuseppe Conte", "Elisabetta Trenta"} <= set(speakers)
    assert "Conte" in speakers["Giuseppe Conte"].aliases
    assert "Trenta" in speakers["Elisabetta Trenta"].aliases
    assert "Conte" not in speakers and "Trenta" not in speakers
    assert speakers["Elisabetta Trenta"].first == speakers["Elisabetta Trenta"].last == (
        "2019-04-13")
    conte = qa.quotes(speaker="Conte")
    assert conte and conte == qa.quotes(speaker="Giuseppe Conte")
    assert {qa.speaker_of(q) for q in conte} == {"Giuseppe Conte"}
    assert any("personally coordinating the Libya dossier" in q.content for q in conte)
    assert speakers["Giuseppe Conte"].quote_count == len(conte)


def test_seed_attributions_the_issue_names(qa: NewsQA) -> None:
    trenta = " | ".join(q.content for q in qa.quotes(speaker="Trenta"))
    conte = " | ".join(q.content for q in qa.quotes(speaker="Conte"))
    for words in ("intervention", "France is our partner", "evacuation plans are operational"):
        assert words in trenta and words not in conte
    evacuation = next(q for q in qa.quotes(speaker="Trenta")
                      if "evacuation plans" in q.content)
    assert evacuation.venue.startswith("Corriere della Sera")


def test_topic_ranks_a_speakers_quotes(qa: NewsQA) -> None:
    ranked = qa.quotes(speaker="Trenta", topic="evacuation plans for Italian staff")
    assert "evacuation plans" in ranked[0].content
    assert len(qa.quotes(speaker="Trenta", limit=2)) == 2
    newest_first = qa.quotes()
    assert [q.published for q in newest_first] == sorted(
        (q.published for q in newest_first), reverse=True)


def test_filters_follow_the_retriever_rules(qa: NewsQA) -> None:
    assert qa.quotes(speaker="Trenta", since="2020-01-01") == []
    assert qa.quotes(speaker="Trenta", until="2019-04-13")
    assert {q.source for q in qa.quotes(sources=["Reuters"])} == {"Reuters"}
    names = {s.name for s in qa.speakers(sources="AP")}
    assert "Jane Alvarez" in names and "Giuseppe Conte" not in names
    from qa.errors import QAError

    with pytest.raises(QAError):
        qa.quotes(since="2019-13-01")


def test_who_said_names_the_speaker(qa: NewsQA) -> None:
    answer = qa.ask("Who said the evacuation plans are operational?")
    assert answer.found and answer.answerer == "quotes", answer.text
    assert "Elisabetta Trenta" in answer.text and "Giuseppe Conte" not in answer.text
    assert_cited_verbatim(qa, answer)
    other = qa.ask("Who said there is no military solution to the crisis in Libya?")
    assert "Federica Mogherini" in other.text.splitlines()[3]


def test_a_speaker_without_quotes_falls_back_to_the_extractive_answer(qa: NewsQA) -> None:
    question = "What did Sarraj say about Libya?"  # named, never quoted
    answer = qa.ask(question)
    assert answer.found and answer.answerer == "extractive"
    unrouted = Pipeline(retriever=qa.retriever_engine, embedder=qa.embedder,
                        gate=qa.pipeline.gate, answerer=qa.extractive, rewriter=FollowupRule())
    before = unrouted.ask(Request.make(question))  # the answer without the quote index
    assert (answer.text, answer.citations) == (before.text, before.citations)
    assert QuoteAnswerer(qa.quote_index, qa.extractive).choose(question) == []
    assert qa.pipeline.answerer_for(QuestionKind.SAID).name == "quotes"
    assert qa.pipeline.answerer_for(QuestionKind.SHORT).name == "reader"


# --- the merge rule, on quotes under exact control ------------------------------------------

def said(article: str, speaker: str, name: str = "", *, at: int = 0,
         published: str = "2024-01-02") -> Quote:
    return Quote(article_id=article, content_spans=((at, at + 4),), content="word",
                 speaker=speaker, speaker_name=name, published=published, source="Wire")


def test_name_key_reads_the_name_words() -> None:
    assert name_key("Defense Minister Elisabetta Trenta") == ("elisabetta", "trenta")
    assert name_key("his defense minister Trenta") == ("trenta",)
    assert name_key("Prime Minister Fayez al Sarraj") == ("fayez", "al", "sarraj")
    assert name_key("Trenta's") == ("trenta",)
    assert name_key("he") == name_key("He") == name_key("the ministry") == ()
    assert name_key("Tesla CEO Elon Musk") == ("elon", "musk")  # after the last title
    assert name_key("Secretary of State Antony Blinken") == ("antony", "blinken")
    assert name_key("Jake Sullivan, adviser to President Joe Biden") == ("jake", "sullivan")
    assert name_key("The State Department") == ("state", "department")  # kept whole
    assert name_key("President") == ()
    full_mention = said("a1", "Jake Sullivan, adviser to Joe Biden", "Joe Biden")
    assert SpeakerMerge.of([full_mention]).key_of[full_mention.id] == ("jake", "sullivan")


def test_within_an_article_a_surname_joins_the_one_full_name() -> None:
    quotes = [said("a1", "Defense Minister Elisabetta Trenta", at=0),
              said("a1", "Trenta", at=10), said("a1", "his defense minister Trenta", at=20)]
    merge = SpeakerMerge.of(quotes)
    assert {merge.key_of[q.id] for q in quotes} == {("elisabetta", "trenta")}
    assert merge.display[("elisabetta", "trenta")] == "Elisabetta Trenta"


def test_two_people_sharing_a_surname_in_one_article_stay_apart() -> None:
    quotes = [said("a1", "Boris Johnson", at=0), said("a1", "Lyndon Johnson", at=10),
              said("a1", "Johnson", at=20)]
    merge = SpeakerMerge.of(quotes)
    assert [merge.key_of[q.id] for q in quotes] == [("boris", "johnson"),
                                                    ("lyndon", "johnson"), ("johnson",)]
    assert merge.matching("Johnson") == {("johnson",)}  # the surname as its own speaker
    assert merge.matching("Boris Johnson") == {("boris", "johnson")}


def test_across_articles_a_surname_merges_only_with_a_unique_full_name() -> None:
    unique = [said("a1", "Jane Alvarez", at=0), said("a2", "Alvarez", at=0)]
    merge = SpeakerMerge.of(unique)
    assert {merge.key_of[q.id] for q in unique} == {("jane", "alvarez")}
    shared = [*unique, said("a3", "Maria Alvarez", at=0)]
    merge = SpeakerMerge.of(shared)
    assert [merge.key_of[q.id] for q in shared] == [("jane", "alvarez"), ("alvarez",),
                                                    ("maria", "alvarez")]
    assert merge.matching("Alvarez") == {("alvarez",)}
    resolved = said("a4", "he", "Jane Alvarez", at=0)  # a pronoun the extractor resolved
    unresolved = said("a5", "he", at=0)
    merge = SpeakerMerge.of([*unique, resolved, unresolved])
    assert merge.key_of[resolved.id] == ("jane", "alvarez")
    assert unresolved.id not in merge.key_of


def test_speakers_count_quotes_articles_and_dates_in_a_real_store(settings: Settings,
                                                                  embedder) -> None:  # type: ignore[no-untyped-def]
    store = Store(settings, model_name=embedder.name)
    quotes_by_article = {}
    for number, (speaker, published) in enumerate([("Mayor Jane Alvarez", "2024-01-02"),
                                                   ("Alvarez", "2024-02-03"),
                                                   ("Sam Okafor", "")]):
        article = Article(title=f"t{number}", body=f"Article {number} says a word here.",
                          published=published, source="Wire")
        quote = Quote(article_id=article.id, content_spans=((12, 16),),
                      content=article.body[12:16], speaker=speaker,
                      published=published, source="Wire")
        chunk = Chunk(article.id, 0, 0, len(article.body), article.body)
        store.upsert_article(article, [chunk], np.ones((1, 384), dtype=np.float32) / 20,
                             quotes=[quote])
        quotes_by_article[article.id] = quote
    index = QuoteIndex(store, embedder)
    speakers = {s.name: s for s in index.speakers()}
    assert set(speakers) == {"Jane Alvarez", "Sam Okafor"}
    alvarez = speakers["Jane Alvarez"]
    assert (alvarez.quote_count, alvarez.article_count) == (2, 2)
    assert (alvarez.first, alvarez.last) == ("2024-01-02", "2024-02-03")
    assert set(alvarez.aliases) == {"Alvarez", "Mayor Jane Alvarez"}
    assert speakers["Sam Okafor"].first == ""
    assert [s.name for s in index.speakers(since="2024-02-01")] == ["Jane Alvarez"]
    assert index.quotes(speaker="Alvarez", since="2024-02-01")[0].published == "2024-02-03"


# --- the command line -----------------------------------------------------------------------

def test_cli_lists_speakers_and_quotes(qa: NewsQA, qa_settings: Settings,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from ui.cli import cli

    monkeypatch.setenv("NEWSQA_DATA_DIR", str(qa_settings.data_dir))
    runner = CliRunner()
    listed = runner.invoke(cli, ["quotes", "--json"])
    assert listed.exit_code == 0, listed.output
    names = [s["name"] for s in json.loads(listed.stdout)["speakers"]]
    assert "Elisabetta Trenta" in names and "Giuseppe Conte" in names
    found = runner.invoke(cli, ["quotes", "--speaker", "Trenta", "--topic", "intervention",
                                "--json"])
    assert found.exit_code == 0, found.output
    rows = json.loads(found.stdout)["quotes"]
    assert rows and {r["speaker_merged"] for r in rows} == {"Elisabetta Trenta"}
    assert rows[0]["article"]["source"] == "Xinhua"
    text = runner.invoke(cli, ["quotes", "--speaker", "Conte", "--limit", "1"])
    assert text.exit_code == 0 and "Giuseppe Conte" in text.output and "[chars " in text.output
    people = runner.invoke(cli, ["quotes", "--speakers"])
    assert "Elisabetta Trenta: " in people.output
    bad = runner.invoke(cli, ["quotes", "--speaker", "Conte", "--since", "2019-13-01"])
    assert bad.exit_code == 2 and "since" in bad.output and "Traceback" not in bad.output


def test_quote_spans_are_verbatim_in_the_stored_bodies(qa: NewsQA) -> None:
    for quote in qa.quotes():
        article = qa.article(quote.article_id)
        assert article is not None and quote.matches(article.body)
