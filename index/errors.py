"""Errors raised by the indexing layer; every newsqa error derives from NewsQAError."""

from __future__ import annotations


class NewsQAError(Exception):
    """Base of every error newsqa raises on purpose; the CLI prints its message, no traceback."""


class SettingsError(NewsQAError):
    """A setting (flag, environment variable or argument) has an invalid value."""


class IndexingError(NewsQAError):
    """Something went wrong while reading, chunking or storing articles."""


class SourceError(IndexingError):
    """One input file (or one record in it) cannot be turned into an article."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class StoreError(IndexingError):
    """The vector store cannot be opened, read or written."""


class ModelMismatchError(StoreError):
    """The collection was built with another embedding model than the one configured."""


class IndexLockedError(IndexingError):
    """Another indexer holds the store's lock."""
