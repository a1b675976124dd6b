"""The one exception tree of newsqa. Every error raised on purpose derives from NewsQAError;
the CLI prints its message as one line and exits 2, the web app shows it in the chat.

    NewsQAError                      index/errors.py
    ├── SettingsError                a flag, variable or argument has an invalid value
    │   └── DateError                a date that cannot be read (also a ValueError)
    ├── IndexingError                reading, chunking or storing articles failed
    │   ├── SourceError              one input file (or record) cannot become an article
    │   ├── StoreError               the vector store cannot be opened, read or written
    │   │   └── ModelMismatchError   the collection was built with another model
    │   ├── ChunkingMismatchError    the index was chunked with other chunk settings
    │   ├── ManifestError            the manifest database is corrupt, locked or unwritable
    │   └── IndexLockedError         another indexer holds the lock
    └── QAError                      qa/errors.py: answering failed
        ├── InvalidQuestionError     empty, too long or unusable question
        ├── LLMError                 the chat model cannot be set up or did not answer
        └── EvalError                qa/eval: evaluation data missing or malformed

Adapters (store, keyword index, manifest, LLM) map the library errors they know into this
tree and let anything else (a bug) propagate.
"""

from __future__ import annotations


class NewsQAError(Exception):
    """Base of every error newsqa raises on purpose; the CLI prints its message, no traceback."""


class SettingsError(NewsQAError):
    """A setting (flag, environment variable or argument) has an invalid value."""


class DateError(SettingsError, ValueError):
    """A date that cannot be read; a ValueError too, for callers validating plain values."""


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


class ChunkingMismatchError(IndexingError):
    """The index was chunked with other chunk settings than those configured (fix: rebuild)."""


class ManifestError(IndexingError):
    """The manifest (SQLite) is corrupt, locked by another program, or cannot be written."""


class IndexLockedError(IndexingError):
    """Another indexer holds the store's lock."""
