"""Errors raised by the question-answering layer."""

from __future__ import annotations

from index.errors import NewsQAError


class QAError(NewsQAError):
    """Something went wrong while answering a question."""


class InvalidQuestionError(QAError):
    """The question is empty, too long or otherwise unusable."""


class LLMError(QAError):
    """The configured chat model cannot be set up or did not answer."""
