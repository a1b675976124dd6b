"""The one pipeline behind ask and stream (real model and store; fake chat models only to
control the model's words exactly)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from pydantic import Field

from qa.api import NewsQA
from qa.gate import Gate
from qa.pipeline import Pipeline, Request, assemble
from qa.question import FollowupRule, QuestionKind
from qa.records import Answer, Passage

ANSWERABLE = "What did Trenta say about armed intervention in Libya?"
REPLY = 'Trenta said "the option does not exist" [1]. She called France a partner [2].'


class CountingChat(FakeListChatModel):
    """A fake chat model that counts how often it was invoked or streamed."""

    calls: list[str] = Field(default_factory=list)

    def _call(self, *args: Any, **kwargs: Any) -> str:
        self.calls.append("invoke")
        return super()._call(*args, **kwargs)

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        self.calls.append("stream")
        yield from super()._stream(*args, **kwargs)


def llm_pipeline(qa: NewsQA, *replies: str) -> tuple[Pipeline, CountingChat]:
    model = CountingChat(responses=list(replies) or [REPLY], calls=[])
    return assemble(retriever=qa.retriever_engine, embedder=qa.embedder,
                    extractive=qa.extractive, chat_model=model), model


def drain(items: Iterator[str | Answer]) -> tuple[str, Answer]:
    pieces = list(items)
    final = pieces[-1]
    assert isinstance(final, Answer)
    assert all(isinstance(piece, str) for piece in pieces[:-1])
    return "".join(pieces[:-1]), final  # type: ignore[arg-type]


def test_offline_stream_ends_with_the_answer_ask_gives(qa: NewsQA) -> None:
    for question in (ANSWERABLE, "What did Macron say about Libya?"):
        request = Request.make(question)
        text, final = drain(qa.pipeline.stream(request))
        asked = qa.pipeline.ask(request)
        assert final == asked and text == asked.text
        assert final.answerer == "quotes"  # "what did X say": the quote index (issue 13)


def test_llm_stream_ends_with_the_answer_ask_gives(qa: NewsQA) -> None:
    pipeline, model = llm_pipeline(qa, REPLY, REPLY)
    request = Request.make(ANSWERABLE)
    asked = pipeline.ask(request)
    text, final = drain(pipeline.stream(request))
    assert model.calls == ["invoke", "stream"]
    # issue 14: only checked sentences are streamed (passage [2] does not call France a partner)
    assert text == final.text == 'Trenta said "the option does not exist" [1].'
    assert asked.found and asked.answerer == "llm"
    assert final == asked


def test_the_gate_refuses_before_the_model_is_called(qa: NewsQA) -> None:
    pipeline, model = llm_pipeline(qa)
    request = Request.make("What did Macron say about Libya?")
    refused = pipeline.ask(request)
    text, streamed = drain(pipeline.stream(request))
    assert not refused.found and not streamed.found
    assert refused.answerer == "llm" and "Macron" in refused.text
    assert text == streamed.text == refused.text
    assert model.calls == [], "a question the passages do not cover never reaches the model"
    assert pipeline.ask(Request.make(ANSWERABLE)).found
    assert model.calls == ["invoke"]


def test_follow_up_is_rewritten_once_by_the_chosen_rewriter(qa: NewsQA) -> None:
    pipeline, model = llm_pipeline(qa, "What did Trenta say about France?", REPLY)
    answer = pipeline.ask(Request.make("And about France?",
                                       history=["What did Trenta say about Libya?"]))
    assert model.calls == ["invoke", "invoke"], "one rewrite, one answer"
    assert answer.question == "And about France?"
    assert answer.standalone_question == "What did Trenta say about France?"
    offline = qa.pipeline.ask(Request.make("What did he say about France?",
                                           history=["What did Conte say about Libya?"]))
    assert offline.standalone_question == "What did Conte say about France?"


class RecordingAnswerer:
    """Answers like the extractive answerer and remembers the questions it was given."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = "said-reader"
        self.questions: list[str] = []

    def answer(self, question: str, passages: Sequence[Passage], **kwargs: Any) -> Answer:
        self.questions.append(question)
        return replace(self.inner.answer(question, passages, **kwargs), answerer=self.name)

    def stream(self, question: str, passages: Sequence[Passage],
               **kwargs: Any) -> Iterator[str | Answer]:
        answer = self.answer(question, passages, **kwargs)
        yield answer.text
        yield answer


def test_questions_are_routed_by_kind(qa: NewsQA) -> None:
    said = RecordingAnswerer(qa.extractive)
    pipeline = Pipeline(retriever=qa.retriever_engine, embedder=qa.embedder,
                        gate=Gate(qa.extractive), answerer=qa.extractive,
                        rewriter=FollowupRule(), routes={QuestionKind.SAID: said})
    quoted = pipeline.ask(Request.make(ANSWERABLE))
    short = pipeline.ask(Request.make("Which newspaper interviewed Trenta?"))
    assert said.questions == [ANSWERABLE]
    assert quoted.answerer == "said-reader" and short.answerer == "extractive"
    assert quoted.found and "the option does not exist" in quoted.citations[0].quote


def test_facade_asks_through_its_pipeline(qa: NewsQA) -> None:
    question = "Which newspaper interviewed Trenta?"
    assert qa.ask(question) == qa.pipeline.ask(Request.make(question))
    assert qa.standalone_question("What did he say about France?",
                                  ["What did Conte say about Libya?"]) == (
        "What did Conte say about France?")


def test_chain_is_the_pipeline_as_a_langchain_runnable(qa: NewsQA) -> None:
    from langchain_core.runnables import RunnableLambda

    from qa.errors import InvalidQuestionError

    chain = qa.chain()
    answer = chain.invoke(ANSWERABLE)
    assert answer == qa.ask(ANSWERABLE) and answer.found
    filtered = chain.invoke({"question": ANSWERABLE, "sources": ["BBC"]})
    assert filtered == qa.ask(ANSWERABLE, sources=["BBC"])
    assert {p.article.source for p in filtered.passages} <= {"BBC"}
    *pieces, final = list(chain.stream(ANSWERABLE))
    assert "".join(pieces) == final.text == answer.text
    composed = chain | RunnableLambda(lambda a: [c.quote for c in a.citations])
    assert composed.invoke(ANSWERABLE) == [c.quote for c in answer.citations]
    with pytest.raises(InvalidQuestionError, match="unknown chain input"):
        chain.invoke({"question": ANSWERABLE, "top_k": 3})
