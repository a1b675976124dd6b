"""Records: content-derived ids, validation, to_dict round trips."""

from __future__ import annotations

import json

import pytest

from index.records import Article, ArticleMeta, Chunk
from qa.records import Answer, Citation, Passage


def make_article(body: str = "Rome Conte said Italy is united", **kw: str) -> Article:
    return Article(title=kw.pop("title", "Italy and Libya"), body=body, **kw)


def test_article_id_comes_from_the_normalised_body() -> None:
    first = make_article("Conte  said\nItaly is united", path="/a.txt")
    same_text_other_name = make_article("Conte said Italy is united", url="https://x.test/b")
    changed = make_article("Conte said Italy is divided", path="/a.txt")
    assert first.id == same_text_other_name.id
    assert first.id != changed.id
    assert first.key == "/a.txt" and same_text_other_name.key == "https://x.test/b"


@pytest.mark.parametrize("field,value,message", [
    ("body", "   ", "body is empty"),
    ("published", "last Tuesday", "ISO 8601"),
])
def test_article_rejects_bad_fields_naming_them(field: str, value: str, message: str) -> None:
    kwargs = {"title": "t", "body": "text", field: value}
    with pytest.raises(ValueError, match=message):
        Article(**kwargs)


def test_article_rejects_wrong_types() -> None:
    with pytest.raises(TypeError, match=r"Article\.title"):
        Article(title=3, body="text")  # type: ignore[arg-type]


def test_article_is_frozen_and_round_trips() -> None:
    article = make_article(source="Xinhua", published="2019-04-13", metadata={"lang": "en"})
    with pytest.raises(AttributeError):
        article.title = "other"  # type: ignore[misc]
    data = json.loads(json.dumps(article.to_dict()))
    assert data["id"] == article.id and data["metadata"] == {"lang": "en"}
    assert Article.from_dict(data) == article


def test_chunk_offsets_and_deterministic_id() -> None:
    body = "Trenta said the option does not exist"
    chunk = Chunk(article_id="a1", ordinal=2, start=7, end=11, text=body[7:11])
    assert chunk.text == "said"
    assert chunk.id == Chunk(article_id="a1", ordinal=2, start=7, end=11, text="said").id
    assert chunk.id.startswith("a1-0002-")
    with pytest.raises(ValueError, match="length"):
        Chunk(article_id="a1", ordinal=0, start=0, end=3, text="four")
    assert Chunk.from_dict(chunk.to_dict()) == chunk


def test_answer_to_dict_has_the_keys_scripts_rely_on() -> None:
    article = make_article(source="Xinhua", published="2019-04-13", url="https://x.test/a")
    chunk = Chunk(article_id=article.id, ordinal=0, start=0, end=len(article.body),
                  text=article.body)
    citation = Citation(number=1, article=article.meta, quote="Conte said", start=5, end=15,
                        chunk_id=chunk.id)
    answer = Answer(question="What did Conte say?", text="Conte said [1]", found=True,
                    citations=(citation,), passages=(Passage(chunk, article.meta, 0.5),))
    data = json.loads(json.dumps(answer.to_dict()))
    assert {"question", "text", "found", "citations"} <= data.keys()
    assert data["found"] is True
    assert set(data["citations"][0]) >= {"number", "article_id", "title", "source", "published",
                                         "url", "quote", "start", "end"}
    assert article.body[data["citations"][0]["start"]:data["citations"][0]["end"]] == "Conte said"


def test_citation_offsets_must_match_quote() -> None:
    with pytest.raises(ValueError):
        Citation(number=1, article=ArticleMeta(id="a"), quote="abc", start=0, end=5)
    with pytest.raises(ValueError):
        Citation(number=0, article=ArticleMeta(id="a"), quote="abc", start=0, end=3)
