"""Passages built by hand from the seed article, for tests that need no index."""

from __future__ import annotations

from index.records import Article, Chunk
from qa.records import Passage
from tests.conftest import SEED_ARTICLE


def seed_article() -> Article:
    return Article(title="Italy's Conte, Trenta seek to defuse reports of disarray over Libya",
                   body=SEED_ARTICLE.read_text(encoding="utf-8"), source="Xinhua",
                   published="2019-04-13")


def passage_of(article: Article, needle: str, before: int = 0, after: int = 200) -> Passage:
    """A passage (chunk) of `article` around the first occurrence of `needle`."""
    at = article.body.index(needle)
    start, end = max(0, at - before), min(len(article.body), at + after)
    chunk = Chunk(article_id=article.id, ordinal=0 if start == 0 else start, start=start,
                  end=end, text=article.body[start:end])
    return Passage(chunk=chunk, article=article.meta, score=1.0)


def seed_passages() -> list[Passage]:
    article = seed_article()
    return [passage_of(article, "Trenta also categorically"),
            passage_of(article, "I have no reason to think"),
            passage_of(article, "Haftar has always played")]
