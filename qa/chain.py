"""The question pipeline as a LangChain `Runnable`, for users' own LCEL chains.

`NewsQA.chain()` returns it. Input: a question, or a mapping with `question` and any of
`history`, `k`, `sources`, `since`, `until`, `article_ids`, `question_date`, `time_words`.
`invoke` gives the checked `Answer`; `stream` gives its text pieces, then the same `Answer`. It
adds no step of its own: both go through `qa.pipeline`, exactly as `NewsQA.ask` and
`NewsQA.stream` do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from langchain_core.runnables import Runnable, RunnableConfig

from qa.errors import InvalidQuestionError
from qa.records import Answer

ARGUMENTS = ("history", "k", "sources", "since", "until", "article_ids", "question_date",
             "time_words")

Question = str | Mapping[str, Any]


def request_arguments(value: Question) -> tuple[Any, dict[str, Any]]:
    """(question, keyword arguments of ask/stream) from a Runnable input."""
    if isinstance(value, str):
        return value, {}
    if not isinstance(value, Mapping) or "question" not in value:
        raise InvalidQuestionError("the chain takes a question, or a mapping with 'question'")
    unknown = sorted(set(value) - {"question", *ARGUMENTS})
    if unknown:
        raise InvalidQuestionError(f"unknown chain input field(s): {', '.join(unknown)}; "
                                   f"expected question, {', '.join(ARGUMENTS)}")
    return value["question"], {k: value[k] for k in ARGUMENTS if k in value}


class QuestionChain(Runnable[Question, Answer]):
    """question -> Answer through the one pipeline (`ask` and `stream` of a NewsQA)."""

    def __init__(self, ask: Callable[..., Answer],
                 stream: Callable[..., Iterator[str | Answer]]) -> None:
        self._ask = ask
        self._stream = stream

    def invoke(self, input: Question, config: RunnableConfig | None = None,
               **kwargs: Any) -> Answer:
        question, arguments = request_arguments(input)
        return self._ask(question, **arguments)

    def stream(self, input: Question, config: RunnableConfig | None = None,
               **kwargs: Any) -> Iterator[Any]:
        question, arguments = request_arguments(input)
        yield from self._stream(question, **arguments)
