"""Questions without a model: parsing, routing by kind, follow-ups, the coverage gate."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from index.text import stem
from qa.errors import InvalidQuestionError
from qa.gate import RefusalBars, judge_coverage
from qa.question import (
    MAX_QUESTION_CHARS,
    OUTLET_NOUNS,
    QuestionInfo,
    QuestionKind,
    VenueQuestion,
    clean_question,
    previous_questions,
    rewrite_followup,
    route,
)
from tests.qa.helpers import seed_passages


@pytest.mark.parametrize(("question", "kind"), [
    ("What did Trenta say about armed intervention in Libya?", QuestionKind.SAID),
    ("What did Conte say about France?", QuestionKind.SAID),
    ("What did the defense minister say about France?", QuestionKind.SAID),
    ("What was Trenta's position on the evacuation plans?", QuestionKind.SAID),
    ("Who said the council voted to rebuild the lighthouse?", QuestionKind.WHO_SAID),
    ("Who criticised the plan?", QuestionKind.WHO_SAID),
    ("Who did Conte meet in Benghazi?", QuestionKind.SHORT),
    ("Which newspaper interviewed Trenta?", QuestionKind.SHORT),
    ("Which German leader did Conte speak with?", QuestionKind.SHORT),
    ("How much money did Italy allocate for migrant detention camps?", QuestionKind.SHORT),
    ("Where did the EU ministers meet?", QuestionKind.SHORT),
    ("When will Squid Game return?", QuestionKind.SHORT),
    ("What was said about military intervention in Libya?", QuestionKind.GENERAL),
    ("Libya ceasefire", QuestionKind.GENERAL),
])
def test_route_sorts_questions_by_kind(question: str, kind: QuestionKind) -> None:
    assert route(QuestionInfo.parse(question)) is kind


def test_parse_reads_speaker_topic_names_and_answer_type() -> None:
    info = QuestionInfo.parse("  What did Trenta say about armed intervention in Libya? ")
    assert info.text == "What did Trenta say about armed intervention in Libya?"
    assert (info.speaker, info.topic, info.qtype) == ("Trenta", "armed intervention in Libya",
                                                      "say")
    assert info.names == ("Trenta", "Libya")
    short = QuestionInfo.parse('How many people signed the "open letter"?')
    assert short.qtype == "number" and short.quoted == ("open letter",) and not short.speaker


@pytest.mark.parametrize(("question", "qtype"), [
    ("Which actress made history this week when she became the first to win?", "name"),
    ("Who was in charge when the dam broke?", "person"),
    ("When did the minister say where the talks would be held?", "time"),
    ("In what year did the port open?", "time"),
    ("The council met where, and who chaired it?", "place"),
    ("Tell me about the strike", "other")])
def test_the_first_question_word_sets_the_answer_type(question: str, qtype: str) -> None:
    assert QuestionInfo.parse(question).qtype == qtype


@pytest.mark.parametrize(("question", "venue"), [
    ("Which newspaper interviewed Trenta?", VenueQuestion("Trenta")),
    ("Which newspaper did Conte talk to?", VenueQuestion("Conte")),
    ("What TV network did Lena Vok give an interview to?", VenueQuestion("Lena Vok")),
    ("Which radio station was Brandt interviewed on?", VenueQuestion("Brandt")),
    ("Which UK dailies quoted Brandt about the budget?", VenueQuestion("Brandt", "the budget")),
    ("In which paper did Trenta say that France is a partner?",
     VenueQuestion("Trenta", "France is a partner")),
    ("Where did Trenta say the evacuation plans are operational?",
     VenueQuestion("Trenta", "the evacuation plans are operational")),
    ("Who interviewed Brandt?", VenueQuestion("Brandt")),
    ("Who did Mogherini tell?", VenueQuestion("Mogherini", outlet=False)),
    ("Whom did Vok tell about the ferries?", VenueQuestion("Vok", "the ferries", outlet=False)),
    ("To whom did Brandt speak?", VenueQuestion("Brandt", outlet=False)),
    ("Who did Conte meet in Benghazi?", None),
    ("Which German leader did Conte speak with?", None),
    ("What did the paper say?", None),
    ("What did Trenta tell Corriere?", None),
    ("Journalists at which UK newspaper went on strike?", None),
    ("Which networking site grew this year?", None),
])
def test_parse_reads_venue_questions(question: str, venue: VenueQuestion | None) -> None:
    assert QuestionInfo.parse(question).venue == venue


def test_outlet_nouns_are_stems() -> None:
    assert {stem("newspapers"), stem("agencies"), stem("television")} <= OUTLET_NOUNS
    assert stem("reporters") not in OUTLET_NOUNS


def test_clean_question_strips_control_characters_and_checks_length() -> None:
    assert clean_question(" Which newspaper\x00 interviewed\x07 Trenta? ") == (
        "Which newspaper interviewed Trenta?")
    for bad in ("", " \x00 ", "x" * (MAX_QUESTION_CHARS + 1), 42):
        with pytest.raises(InvalidQuestionError):
            clean_question(bad)


def test_previous_questions_from_every_history_shape() -> None:
    history = ["first?", ("second?", "answer"), {"role": "user", "content": "third?"},
               {"role": "assistant", "content": "not a question"}, HumanMessage("fourth?"),
               AIMessage("an answer"), "  "]
    assert previous_questions(history) == ["first?", "second?", "third?", "fourth?"]
    assert previous_questions(None) == []


@pytest.mark.parametrize(("previous", "follow_up", "standalone"), [
    ("What did Conte say about Libya?", "What did he say about France?",
     "What did Conte say about France?"),
    ("What did Conte say about Libya?", "Did his minister agree?",
     "Did Conte's minister agree?"),
    ("What did Trenta say about Libya?", "And what about France?",
     "What did Trenta say about France?"),
    ("What did Trenta say about Libya?", "what about the economy?",
     "What did Trenta say about the economy?"),
    ("Who met Haftar?", "what about Salvini?", "Who met Haftar - and Salvini?"),
    ("Who did Conte meet in Benghazi?", "What did they discuss?",
     "What did they discuss? (about Benghazi)"),
    ("How much will the Springfield bike lanes cost?", "When?", "When? (Springfield)"),
])
def test_rewrite_followup_without_a_model(previous: str, follow_up: str,
                                          standalone: str) -> None:
    assert rewrite_followup(follow_up, [previous]) == standalone
    assert rewrite_followup(follow_up, []) == follow_up


def test_gate_refuses_names_and_quoted_terms_the_passages_lack() -> None:
    passages = seed_passages()
    bars = RefusalBars()
    macron = judge_coverage(QuestionInfo.parse("What did Macron say about Libya?"), passages,
                            best_semantic=0.9, top_keyword=0.9, bars=bars)
    assert not macron.found and macron.reason == (
        "Macron is not mentioned in the passages found")
    quoted = judge_coverage(QuestionInfo.parse('Who said "green hydrogen"?'), passages,
                            best_semantic=0.9, top_keyword=0.9, bars=bars)
    assert not quoted.found and "green hydrogen" in quoted.reason
    trenta = QuestionInfo.parse("What did Trenta say about armed intervention in Libya?")
    assert judge_coverage(trenta, passages, best_semantic=0.6, top_keyword=0.0,
                          bars=bars).found
    far = judge_coverage(trenta, passages, best_semantic=0.2, top_keyword=0.1, bars=bars)
    assert not far.found and far.reason == "no passage is close enough to the question"
    assert judge_coverage(trenta, passages, best_semantic=0.2, top_keyword=0.5,
                          bars=bars).found, "enough key words make up for low similarity"
