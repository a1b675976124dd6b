"""Frozen records that cross module boundaries: Article, ArticleMeta, Chunk.

Ids are derived from content: an article's id is the hash of its normalised body (the same
text under two names is one article), a chunk's id combines article id, ordinal and text hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from index.dates import check_iso
from index.text import normalise_text


def short_hash(text: str, length: int = 16) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def article_id(body: str) -> str:
    """The id of the article with this body: the hash of its normalised text (the ONE rule)."""
    return "a" + short_hash(normalise_text(body))


@dataclass(frozen=True)
class ArticleMeta:
    """Everything about an article except its body: what citations and filters need."""

    id: str
    title: str = ""
    source: str = ""
    author: str = ""
    published: str = ""
    url: str = ""
    path: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArticleMeta:
        return cls(**{f.name: str(data.get(f.name) or "") for f in fields(cls)})


@dataclass(frozen=True)
class Article:
    """One news article as parsed from a file, JSON record, HTML page or feed entry.

    `published` is ISO 8601 (date or datetime) or empty; missing fields stay empty.
    `id` is derived from the body; `key` (URL, else path) identifies where it came from.
    """

    title: str
    body: str
    source: str = ""
    author: str = ""
    published: str = ""
    url: str = ""
    path: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    id: str = field(init=False)

    def __post_init__(self) -> None:
        for name in ("title", "body", "source", "author", "published", "url", "path"):
            if not isinstance(getattr(self, name), str):
                raise TypeError(f"Article.{name} must be a string, "
                                f"got {type(getattr(self, name)).__name__}")
        if not self.body.strip():
            raise ValueError("Article.body is empty")
        check_iso(self.published, "Article.published")
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))
        object.__setattr__(self, "id", article_id(self.body))

    @property
    def key(self) -> str:
        """Where the article came from: its URL when it has one, else its path."""
        return self.url or self.path

    @property
    def meta(self) -> ArticleMeta:
        return ArticleMeta(id=self.id, title=self.title, source=self.source, author=self.author,
                           published=self.published, url=self.url, path=self.path)

    def to_dict(self) -> dict[str, Any]:
        return {**self.meta.to_dict(), "body": self.body, "metadata": dict(self.metadata)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Article:
        names = {f.name for f in fields(cls) if f.init}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class Chunk:
    """A span of an article body: `text == body[start:end]`, so citations can quote exactly."""

    article_id: str
    ordinal: int
    start: int
    end: int
    text: str
    id: str = field(init=False)

    def __post_init__(self) -> None:
        if self.ordinal < 0 or self.start < 0 or self.end < self.start:
            raise ValueError(f"bad chunk bounds: ordinal={self.ordinal} "
                             f"start={self.start} end={self.end}")
        if self.end - self.start != len(self.text):
            raise ValueError("Chunk.text length does not match end - start")
        object.__setattr__(self, "id", f"{self.article_id}-{self.ordinal:04d}-"
                                       f"{short_hash(self.text, 8)}")

    @staticmethod
    def article_id_of(chunk_id: str) -> str:
        """The article id a chunk id starts with (the id format set in `__post_init__`)."""
        return chunk_id.rsplit("-", 2)[0]

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Chunk:
        return cls(article_id=data["article_id"], ordinal=int(data["ordinal"]),
                   start=int(data["start"]), end=int(data["end"]), text=data["text"])
