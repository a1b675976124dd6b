"""Errors raised by the question-answering layer (the whole tree: index/errors.py)."""

from __future__ import annotations

from index.errors import NewsQAError


class QAError(NewsQAError):
    """Something went wrong while answering a question."""


class InvalidQuestionError(QAError):
    """The question is empty, too long or otherwise unusable."""


class LLMError(QAError):
    """The configured chat model cannot be set up or did not answer."""


class EvalError(QAError):
    """Evaluation or training data is missing or malformed (the message names file and line)."""
