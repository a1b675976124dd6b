"""Time words in questions (issue 12): "this week", "since Monday" become the days searched,
counted from the question's date; the answer says which days it searched, and the LLM prompt's
"Today is" is the question's date (a recording fake chat model, to see the exact prompt)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from pydantic import Field

import index
from index.dates import DateRange, relative_range, time_phrase
from index.settings import Settings
from qa.api import NewsQA
from qa.errors import QAError
from qa.eval.data import EvalQuestion
from qa.eval.run import EvalRun
from qa.pipeline import Request, assemble, dated_filters, question_day
from qa.question import QuestionInfo
from qa.retriever import Filters
from ui.render import describe_searched, render_sources_html

THURSDAY = date(2022, 6, 16)
NEW_YEAR_MONDAY = date(2023, 1, 2)
TRENTA = "What did Trenta say about armed intervention in Libya"
SEED_DAY = date(2019, 4, 13)  # the seed article's publication day, a Saturday


def days(text: str, today: date) -> tuple[str, str] | None:
    found = relative_range(text, today)
    return (found.since, found.until) if found else None


@pytest.mark.parametrize(("text", "expected"), [
    ("What happened today?", ("2022-06-16", "2022-06-16")),
    ("Who resigned yesterday?", ("2022-06-15", "2022-06-15")),
    ("Which show was renewed this week?", ("2022-06-13", "2022-06-16")),
    ("Who won last week?", ("2022-06-06", "2022-06-12")),
    ("What did Conte say in the past week?", ("2022-06-10", "2022-06-16")),
    ("What changed this past week?", ("2022-06-10", "2022-06-16")),
    ("Which bill passed this month?", ("2022-06-01", "2022-06-16")),
    ("Which bill passed last month?", ("2022-05-01", "2022-05-31")),
    ("Who has led this year?", ("2022-01-01", "2022-06-16")),
    ("Who led last year?", ("2021-01-01", "2021-12-31")),
    ("What happened since Monday?", ("2022-06-13", "2022-06-16")),
    ("What happened since Friday?", ("2022-06-10", "2022-06-16")),
    ("What happened since Thursday?", ("2022-06-09", "2022-06-16")),
    ("What happened since last Tuesday?", ("2022-06-14", "2022-06-16")),
    ("Who spoke since March 5?", ("2022-03-05", "2022-06-16")),
    ("Who spoke since Jan. 5th?", ("2022-01-05", "2022-06-16")),
    ("Who spoke since the 5th of March?", ("2022-03-05", "2022-06-16")),
    ("Who spoke since June?", ("2022-06-01", "2022-06-16")),
    ("Who spoke since December?", ("2021-12-01", "2022-06-16")),
    ("Who spoke since July 4?", ("2021-07-04", "2022-06-16")),
    ("What happened in the past 3 days?", ("2022-06-14", "2022-06-16")),
    ("What happened in the last ten days?", ("2022-06-07", "2022-06-16")),
    ("What happened over the past two weeks?", ("2022-06-03", "2022-06-16")),
])
def test_time_words_become_days_relative_to_the_question_date(
        text: str, expected: tuple[str, str]) -> None:
    assert days(text, THURSDAY) == expected


def test_weeks_months_and_years_roll_over_at_their_edges() -> None:
    assert days("this week", NEW_YEAR_MONDAY) == ("2023-01-02", "2023-01-02")
    assert days("last week", NEW_YEAR_MONDAY) == ("2022-12-26", "2023-01-01")
    assert days("past week", NEW_YEAR_MONDAY) == ("2022-12-27", "2023-01-02")
    assert days("last month", NEW_YEAR_MONDAY) == ("2022-12-01", "2022-12-31")
    assert days("since Monday", NEW_YEAR_MONDAY) == ("2022-12-26", "2023-01-02")
    assert days("since December 24", NEW_YEAR_MONDAY) == ("2022-12-24", "2023-01-02")
    assert days("last month", date(2024, 3, 31)) == ("2024-02-01", "2024-02-29")


def test_punctuation_stripped_and_lower_case_text_is_read_the_same() -> None:
    for text in ("what did conte say this week", "WHAT DID CONTE SAY THIS WEEK",
                 "this week, what did Conte say?", "what did conte say this week?!"):
        assert days(text, THURSDAY) == ("2022-06-13", "2022-06-16"), text
    assert days("who spoke since jan 5", THURSDAY) == ("2022-01-05", "2022-06-16")
    assert days("what happened since monday", THURSDAY) == ("2022-06-13", "2022-06-16")


def test_the_phrase_and_its_offsets_are_given() -> None:
    text = "Who did Conte meet, since Monday, in Rome?"
    found = relative_range(text, THURSDAY)
    assert found == DateRange("2022-06-13", "2022-06-16", "since Monday", 20, 32)
    assert text[found.start:found.end] == found.phrase
    assert time_phrase(text) == "since Monday"


@pytest.mark.parametrize("text", [
    "What did Conte say about Libya?", "What did USA Today report?", "Is it a weekly show?",
    "Why did prices rise since the war?", "It has been quiet since may be the reason",
    "Who spoke since February 30?", "What happened in the past 0 days?", "Yesterdays",
])
def test_no_time_words_no_range(text: str) -> None:
    assert relative_range(text, THURSDAY) is None
    assert time_phrase(text) == ""


def test_question_info_carries_the_time_phrase() -> None:
    assert QuestionInfo.parse("Which show was renewed this week?").time_phrase == "this week"
    assert QuestionInfo.parse("What did Trenta say since Monday?").time_phrase == "since Monday"
    assert QuestionInfo.parse("What did Trenta say?").time_phrase == ""


# --- the filters -----------------------------------------------------------------------------

def this_week() -> DateRange | None:
    return relative_range("this week", THURSDAY)


def test_time_words_narrow_the_filters_and_narrower_explicit_bounds_win() -> None:
    assert dated_filters(Filters(), None) == Filters()
    assert dated_filters(Filters.make(sources="AP"), this_week()) == Filters(
        sources=("AP",), since="2022-06-13", until="2022-06-16")
    narrower = Filters.make(since="2022-06-14", until="2022-06-15")
    assert dated_filters(narrower, this_week()) == narrower
    wider = Filters.make(since="2022-01-01", until="2022-12-31")
    assert dated_filters(wider, this_week()) == Filters(since="2022-06-13", until="2022-06-16")
    assert dated_filters(Filters.make(until="2022-06-14"), this_week()) == Filters(
        since="2022-06-13", until="2022-06-14")


def test_time_words_outside_the_date_filter_are_a_clear_error() -> None:
    with pytest.raises(QAError, match=r'"this week" in the question means 2022-06-13 to '
                                      r"2022-06-16, which the date filter \(until 2022-06-01\)"):
        dated_filters(Filters.make(until="2022-06-01"), this_week())


def test_the_request_counts_time_words_from_its_question_date() -> None:
    assert Request.make("q").question_date == date.today()
    request = Request.make("Who won this week?", question_date="2022-06-16")
    assert request.question_date == THURSDAY
    assert request.filters_for(request.question)[0] == Filters(since="2022-06-13",
                                                               until="2022-06-16")
    literal = Request.make("Who won this week?", question_date=THURSDAY, time_words=False)
    assert literal.filters_for(literal.question) == (Filters(), None)
    assert question_day(None) == date.today() and question_day("2022-06-16") == THURSDAY
    with pytest.raises(QAError, match="question_date"):
        Request.make("q", question_date="16/06/2022")


# --- the answer says which days it searched ----------------------------------------------------

def test_the_answer_searches_the_days_of_its_time_words(qa: NewsQA,
                                                        qa_settings: Settings) -> None:
    answer = qa.ask(f"{TRENTA} this week?", question_date=SEED_DAY)
    assert answer.found and answer.citations[0].article.published == "2019-04-13"
    assert answer.searched == ("2019-04-08", "2019-04-13")
    record = answer.to_dict()
    assert record["searched"] == ["2019-04-08", "2019-04-13"]
    assert record["generation"] == answer.generation == index.generation(qa_settings) != ""
    assert record["model"] == answer.model == ""
    later = qa.ask(f"{TRENTA} this week?", question_date="2019-05-01")
    assert later.searched == ("2019-04-29", "2019-05-01") and not later.found
    assert all(p.article.published >= "2019-04-29" for p in later.passages)


def test_explicit_filters_and_time_words_meet(qa: NewsQA) -> None:
    narrowed = qa.ask(f"{TRENTA} this week?", question_date=SEED_DAY, since="2019-04-12")
    assert narrowed.searched == ("2019-04-12", "2019-04-13") and narrowed.found
    plain = qa.ask(f"{TRENTA}?", question_date=SEED_DAY)
    assert plain.searched is None and plain.to_dict()["searched"] is None
    literal = qa.ask(f"{TRENTA} this week?", question_date="2019-05-01", time_words=False)
    assert literal.searched is None and literal.found
    with pytest.raises(QAError, match="this week"):
        qa.ask(f"{TRENTA} this week?", question_date=SEED_DAY, until="2019-01-01")
    streamed = list(qa.stream(f"{TRENTA} this week?", question_date=SEED_DAY))[-1]
    assert streamed == qa.ask(f"{TRENTA} this week?", question_date=SEED_DAY)


def test_the_searched_days_are_shown(qa: NewsQA) -> None:
    answer = qa.ask(f"{TRENTA} this week?", question_date=SEED_DAY)
    assert describe_searched(answer) == "Searched articles from 2019-04-08 to 2019-04-13"
    assert "Searched articles from 2019-04-08 to 2019-04-13" in render_sources_html(answer)
    assert describe_searched(qa.ask(f"{TRENTA}?", since="2019-04-01")) == (
        "Searched articles from 2019-04-01 on")
    assert describe_searched(qa.ask(f"{TRENTA}?", until="2019-04-30")) == (
        "Searched articles up to 2019-04-30")
    plain = qa.ask(f"{TRENTA}?")
    assert describe_searched(plain) == "" and "Searched articles" not in render_sources_html(
        plain)


# --- the LLM prompt carries the question's date ------------------------------------------------

class RecordingChat(FakeListChatModel):
    """A fake chat model with a name that remembers the messages it was sent."""

    model: str = "recording-chat"
    seen: list[Any] = Field(default_factory=list)

    def _call(self, messages: list[Any], stop: Any = None, run_manager: Any = None,
              **kwargs: Any) -> str:
        self.seen.append(messages)
        return super()._call(messages, stop, run_manager, **kwargs)

    def _stream(self, messages: list[Any], stop: Any = None, run_manager: Any = None,
                **kwargs: Any) -> Any:
        self.seen.append(messages)
        yield from super()._stream(messages, stop, run_manager, **kwargs)


REPLY = 'Trenta said "the option does not exist" [1].'


def test_the_llm_prompt_gives_the_question_date_and_the_answer_names_the_model(
        qa: NewsQA) -> None:
    model = RecordingChat(responses=[REPLY, REPLY], seen=[])
    pipeline = assemble(retriever=qa.retriever_engine, embedder=qa.embedder,
                        extractive=qa.extractive, chat_model=model, generation=qa.generation)
    request = Request.make(f"{TRENTA} this week?", question_date=SEED_DAY)
    asked = pipeline.ask(request)
    *_, streamed = pipeline.stream(request)
    assert len(model.seen) == 2
    for messages in model.seen:
        assert "Today is 2019-04-13." in messages[-1].content
        assert f"Today is {date.today().isoformat()}." not in messages[-1].content
    assert asked.answerer == "llm" and asked.found
    assert asked.model == streamed.model == "recording-chat"
    assert asked.searched == ("2019-04-08", "2019-04-13") and asked.generation == qa.generation()
    refused = pipeline.ask(Request.make("What did Macron say about Libya?"))
    assert not refused.found and refused.model == "", "the gate refused: no model consulted"


# --- the eval passes each question's date ----------------------------------------------------

def test_the_eval_asks_with_each_questions_date(tmp_path: Any) -> None:
    question = EvalQuestion(id="20220617_0", query="Which show was renewed this week?",
                            answer="Squid Game", question_date="2022-06-16", gold=("d1",))
    on = EvalRun(Settings(data_dir=tmp_path), [question], [], progress=None, time_words=True)
    assert on.dates(question) == {"until": "2022-06-16", "question_date": "2022-06-16",
                                  "time_words": True}
    default = EvalRun(Settings(data_dir=tmp_path), [question], [], progress=None)
    assert default.dates(question) == {"until": "2022-06-16", "question_date": "2022-06-16",
                                       "time_words": False}, "the floor measures without them"
    undated = EvalQuestion(id="x_1", query="q", answer="a", question_date="", gold=())
    assert on.dates(undated)["question_date"] is None and on.dates(undated)["until"] is None
