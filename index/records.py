"""Frozen records that cross module boundaries: Article, ArticleMeta, Chunk, Quote.

Ids are derived from content: an article's id is the hash of its normalised body (the same
text under two names is one article), a chunk's id combines article id, ordinal and text hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from itertools import pairwise
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


Span = tuple[int, int]
QUOTE_KINDS = ("direct", "indirect")


def _check_span(span: Span | None, name: str) -> None:
    if span is not None and not (0 <= span[0] <= span[1]):
        raise ValueError(f"Quote.{name} is not a span: {span!r}")


@dataclass(frozen=True)
class Quote:
    """One attribution in an article: who said it, the cue, to whom or where, and what.

    Every span is (start, end) into the article body, so `body[start:end]` is verbatim.
    `speaker` is the mention as written ("he", "the defense minister", "" when the text names
    no source); `speaker_name` the fullest name the article gives for it, or the description
    as written when the article names no one for it ("voters", "a federal judge"; "" when
    there is no source).
    `content_spans` may be several (a quote broken by "he said"); `content` is their texts
    joined by " ... ". `kind` is "direct" (inside quotation marks), "indirect", or None when
    the text has no quotation marks to tell (punctuation stripped). `venue` is the outlet or
    addressee ("told Corriere della Sera"). `published` and `source` are the article's.
    """

    article_id: str
    content_spans: tuple[Span, ...]
    content: str
    speaker: str = ""
    speaker_span: Span | None = None
    speaker_name: str = ""
    cue: str = ""
    cue_span: Span | None = None
    venue: str = ""
    venue_span: Span | None = None
    kind: str | None = None
    published: str = ""
    source: str = ""
    id: str = field(init=False)

    def __post_init__(self) -> None:
        spans = tuple((int(a), int(b)) for a, b in self.content_spans)
        if not spans:
            raise ValueError("Quote.content_spans is empty")
        for span in spans:
            _check_span(span, "content_spans")
        if any(b[0] < a[1] for a, b in pairwise(spans)):
            raise ValueError("Quote.content_spans overlap or are out of order")
        for name in ("speaker_span", "cue_span", "venue_span"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, (int(value[0]), int(value[1])))
            _check_span(getattr(self, name), name)
        if self.kind is not None and self.kind not in QUOTE_KINDS:
            raise ValueError(f"Quote.kind must be one of {QUOTE_KINDS} or None, "
                             f"got {self.kind!r}")
        check_iso(self.published, "Quote.published")
        object.__setattr__(self, "content_spans", spans)
        key = json.dumps([self.article_id, spans, self.speaker_span, self.cue_span])
        object.__setattr__(self, "id", "q" + short_hash(key))

    @property
    def start(self) -> int:
        return self.content_spans[0][0]

    @property
    def end(self) -> int:
        return self.content_spans[-1][1]

    @property
    def name(self) -> str:
        """Who said it, as best the article tells: the resolved name, else the mention."""
        return self.speaker_name or self.speaker

    def matches(self, body: str) -> bool:
        """Whether every span is verbatim in `body` (the article the quote was taken from)."""
        def same(span: Span | None, text: str) -> bool:
            return span is None or body[span[0]:span[1]] == text
        return (" ... ".join(body[a:b] for a, b in self.content_spans) == self.content
                and same(self.speaker_span, self.speaker) and same(self.cue_span, self.cue)
                and same(self.venue_span, self.venue))

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["content_spans"] = [list(span) for span in self.content_spans]
        for name in ("speaker_span", "cue_span", "venue_span"):
            out[name] = list(out[name]) if out[name] is not None else None
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Quote:
        names = {f.name for f in fields(cls) if f.init}
        values = {k: v for k, v in data.items() if k in names}
        values["content_spans"] = tuple(tuple(span) for span in values["content_spans"])
        for name in ("speaker_span", "cue_span", "venue_span"):
            if values.get(name) is not None:
                values[name] = tuple(values[name])
        return cls(**values)
