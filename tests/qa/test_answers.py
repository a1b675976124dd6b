"""End-to-end answers over the shared indexed test corpus (real model, real Chroma)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from langchain_core.runnables import RunnableLambda

from qa.api import NewsQA
from qa.errors import InvalidQuestionError, QAError
from qa.records import Answer
from qa.retriever import Filters, format_docs


def assert_citations_verbatim(qa, answer: Answer) -> None:  # type: ignore[no-untyped-def]
    for citation in answer.citations:
        body = qa.article(citation.article.id).body
        assert body[citation.start:citation.end] == citation.quote
        assert f"[{citation.number}]" in answer.text


def test_trenta_question_cites_the_armed_intervention_span(qa, seed_id) -> None:
    answer = qa.ask("What did Trenta say about armed intervention in Libya?")
    assert answer.found
    first = answer.citations[0]
    assert first.article.id == seed_id
    assert "the option does not exist" in first.quote
    assert "armed intervention" in first.quote
    assert first.quote in answer.text
    assert_citations_verbatim(qa, answer)
    assert answer.warnings == ()


@pytest.mark.parametrize(("question", "expected"), [
    ("Who did Conte meet in Benghazi?", "Haftar"),
    ("What did Conte say about France?", "no reason to think that France"),
    ("Which newspaper interviewed Trenta?", "Corriere della Sera"),
    ("Which newspaper did Conte talk to?", "Il Fatto Quotidiano"),
    ("What did the defense minister say about France?", "France is our partner and friend"),
    ("Which German leader did Conte speak with?", "Angela Merkel"),
    ("How much money did Italy allocate for migrant detention camps?", "six million euros"),
    ("Who leads the forces that launched the offensive on Tripoli?", "Khalifa Haftar"),
    ("What did Mogherini say about Libya?", "There is no military solution"),
    ("How much will the Springfield bike lanes cost?", "$12 million"),
])
def test_journalist_questions_cite_a_span_holding_the_answer(qa, question: str,
                                                             expected: str) -> None:
    answer = qa.ask(question)
    assert answer.found, answer.text
    assert any(expected in c.quote for c in answer.citations[:2]), answer.text
    assert_citations_verbatim(qa, answer)


def test_person_absent_from_the_articles_is_not_found(qa) -> None:
    answer = qa.ask("What did Macron say about Libya?")
    assert not answer.found
    assert answer.citations == ()
    assert "do not cover" in answer.text and "Macron" in answer.text
    assert answer.passages, "closest passages are offered as 'see also'"
    assert "See also" in answer.text


def test_unrelated_question_is_not_found(qa) -> None:
    answer = qa.ask("What is the boiling point of mercury at sea level?")
    assert not answer.found


def test_source_filter(qa) -> None:
    answer = qa.ask("What was said about military intervention in Libya?", sources=["Reuters"])
    assert answer.passages
    assert {p.article.source for p in answer.passages} == {"Reuters"}
    assert all(c.article.source == "Reuters" for c in answer.citations)
    assert not qa.ask("What did Trenta say?", sources="No Such Source").found


def test_date_filters(qa) -> None:
    passages = qa.retriever_engine.retrieve("Libya", k=10,
                                            filters=_filters(since="2019-04-11",
                                                             until="2019-12-31"))
    assert passages and {p.article.published[:10] for p in passages} == {"2019-04-13"}
    answer = qa.ask("Libya ceasefire", until="2019-04-10")
    assert {p.article.source for p in answer.passages} == {"Reuters"}
    with pytest.raises(QAError):
        qa.ask("Libya", since="2020-01-01", until="2019-01-01")
    with pytest.raises(QAError):
        qa.ask("Libya", since="last week")


def test_article_filter_allows_more_passages_of_one_article(qa, seed_id) -> None:
    answer = qa.ask("Libya", article_ids=[seed_id], k=5)
    assert len(answer.passages) >= 4, "no per-article cap when one article is targeted"
    assert {p.article.id for p in answer.passages} == {seed_id}
    unfiltered = qa.retriever_engine.retrieve("Libya Italy France Conte", k=8)
    per_article: dict[str, int] = {}
    for passage in unfiltered:
        per_article[passage.article.id] = per_article.get(passage.article.id, 0) + 1
    assert max(per_article.values()) <= qa.retriever_engine.config.per_article


def test_retriever_works_in_a_plain_lcel_chain(qa, seed_id) -> None:
    retriever = qa.retriever(k=3, sources=["Xinhua"])
    documents = retriever.invoke("Trenta military intervention")
    assert documents and all(d.metadata["article_id"] == seed_id for d in documents)
    body = qa.article(seed_id).body
    for doc in documents:
        meta = doc.metadata
        assert body[meta["start"]:meta["end"]] == doc.page_content
        assert meta["chunk_id"] and meta["title"] and meta["source"] == "Xinhua"
        assert meta["score"] > 0
    chain = retriever | RunnableLambda(format_docs)
    text = chain.invoke("Trenta military intervention")
    assert text.startswith("[1] ") and "Xinhua" in text


def test_stream_ends_with_the_same_answer_as_ask(qa) -> None:
    question = "What did Conte say about France?"
    items = list(qa.stream(question))
    final = items[-1]
    assert isinstance(final, Answer)
    assert all(isinstance(piece, str) for piece in items[:-1])
    assert "".join(items[:-1]) == final.text
    assert final == qa.ask(question)  # timings are not compared


def test_answer_to_dict_carries_the_citation_fields(qa) -> None:
    data = qa.ask("Which newspaper interviewed Trenta?").to_dict()
    assert data["found"] is True and data["question"] and data["text"]
    for citation in data["citations"]:
        for key in ("number", "article_id", "title", "source", "published", "url", "quote",
                    "start", "end"):
            assert key in citation


def test_follow_up_question_carries_the_person(qa) -> None:
    history = [("What did Conte say about Libya?", "...")]
    answer = qa.ask("What did he say about France?", history=history)
    assert "Conte" in answer.standalone_question
    assert answer.found
    assert any("no reason to think that France" in c.quote for c in answer.citations[:2])


@pytest.mark.parametrize("bad", ["", "   \n\t ", "\x00\x01", "x" * 2001])
def test_invalid_questions_are_rejected(qa, bad: str) -> None:
    with pytest.raises(InvalidQuestionError):
        qa.ask(bad)


def test_control_characters_are_stripped(qa) -> None:
    answer = qa.ask("Which newspaper\x00 interviewed\x07 Trenta?")
    assert answer.question == "Which newspaper interviewed Trenta?"
    assert answer.found


def test_collection_helpers(qa, seed_id) -> None:
    assert not qa.is_empty()
    assert set(qa.sources()) >= {"Xinhua", "Reuters", "BBC", "AP"}
    assert [meta.id for meta, _ in qa.articles("xinhua")] == [seed_id]
    assert [meta.source for meta, _ in qa.articles("squid")] == ["BBC"]
    assert qa.article(seed_id).body.startswith("ROME April Xinhua")
    assert qa.article("a0000000000000000") is None
    assert qa.stats()["articles"] == 5


def test_concurrent_asks_agree(qa) -> None:
    questions = ["Who did Conte meet in Benghazi?", "Which newspaper interviewed Trenta?"] * 3
    with ThreadPoolExecutor(max_workers=3) as pool:
        answers = list(pool.map(qa.ask, questions))
    assert [replace(a, timings={}) for a in answers[:2]] * 3 == [
        replace(a, timings={}) for a in answers]


def _filters(**kwargs):  # type: ignore[no-untyped-def]
    return Filters.make(**kwargs)


def test_reindex_defaults_to_the_seeds_folder(settings, embedder) -> None:  # type: ignore[no-untyped-def]
    engine = NewsQA(settings, embedder=embedder)
    assert engine.is_empty()
    assert not engine.ask("What did Trenta say about armed intervention?").found
    report = engine.reindex()
    assert report.indexed == 1 and not engine.is_empty()
    answer = engine.ask("What did Trenta say about armed intervention in Libya?")
    assert answer.found and "the option does not exist" in answer.citations[0].quote


def test_reindex_keeps_other_articles_and_rebuild_drops_them(  # type: ignore[no-untyped-def]
        settings, embedder, tmp_path) -> None:
    engine = NewsQA(settings, embedder=embedder)
    extra = tmp_path / "desk"
    extra.mkdir()
    (extra / "port.txt").write_text("Harbour vote\n\nThe Zorblax harbour council voted to "
                                    "rebuild the lighthouse, said councillor Mirela Okonjo.\n")
    engine.reindex()
    assert engine.add([extra]).indexed == 1
    assert engine.reindex().unchanged == 1
    assert engine.stats()["articles"] == 2
    assert engine.ask("Who said the council voted to rebuild the lighthouse?").found
    engine.rebuild()
    assert engine.stats()["articles"] == 1
    assert not engine.ask("Who said the council voted to rebuild the lighthouse?").found
