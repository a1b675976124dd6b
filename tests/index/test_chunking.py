"""Chunking invariants: exact body spans, within the model limit, overlapping, word-aligned."""

from __future__ import annotations

import itertools

import pytest

from index.chunking import chunk_article, embedding_text
from index.embedding import Embedder
from index.records import Article
from index.settings import Settings
from tests.conftest import SEED_ARTICLE

PUNCTUATED = "\n\n".join(
    f"Paragraph {p}. " + " ".join(
        f"The minister said on Tuesday that talks number {p}-{s} would resume in Geneva, "
        f"according to officials! Is that \"final\"? Nobody knows." for s in range(6))
    for p in range(8))


@pytest.fixture(scope="module")
def tokenizer_only() -> Embedder:
    """An embedder whose tokenizer is used without loading the model weights."""
    return Embedder()


def check_invariants(article: Article, embedder: Embedder, settings: Settings) -> list:
    chunks = chunk_article(article, embedder, settings)
    assert chunks, "a non-empty body gives at least one chunk"
    limit = embedder.max_tokens - 2
    for ordinal, chunk in enumerate(chunks):
        assert chunk.ordinal == ordinal and chunk.article_id == article.id
        assert chunk.text == article.body[chunk.start:chunk.end]
        assert chunk.text == chunk.text.strip()
        assert embedder.count_tokens(chunk.text) <= min(settings.chunk_tokens, limit)
        # never inside a word: a chunk starts and ends at white space or the body's ends
        assert chunk.start == 0 or article.body[chunk.start - 1].isspace()
        assert chunk.end == len(article.body) or article.body[chunk.end].isspace()
    for before, after in itertools.pairwise(chunks):
        assert before.start < after.start < before.end < after.end, "consecutive overlap"
    assert chunks[0].start == len(article.body) - len(article.body.lstrip())
    assert chunks[-1].end == len(article.body.rstrip())
    return chunks


def test_seed_without_punctuation(tokenizer_only: Embedder, settings: Settings) -> None:
    body = SEED_ARTICLE.read_text(encoding="utf-8")
    article = Article(title="Seed", body=body)
    chunks = check_invariants(article, tokenizer_only, settings)
    assert len(chunks) > 3
    overlap = chunks[0].end - chunks[1].start
    assert tokenizer_only.count_tokens(body[chunks[1].start:chunks[0].end]) >= \
        settings.chunk_overlap // 2, overlap
    key = "If anyone is thinking about military intervention in Libya I can say the option"
    assert any(key in c.text for c in chunks)


def test_punctuated_text_breaks_at_sentences(tokenizer_only: Embedder,
                                             settings: Settings) -> None:
    article = Article(title="Talks", body=PUNCTUATED)
    chunks = check_invariants(article, tokenizer_only, settings)
    assert len(chunks) > 3
    for chunk in chunks[:-1]:
        assert chunk.text[-1] in ".!?\"", chunk.text[-30:]
    # chunks after the first start at a sentence start
    for chunk in chunks[1:]:
        assert chunk.text[0].isupper() or chunk.text[0] == '"', chunk.text[:30]


@pytest.mark.parametrize(("tokens", "overlap"), [(16, 0), (64, 8), (254, 60), (400, 40)])
def test_sizes_never_exceed_the_model(tokenizer_only: Embedder, tmp_path, tokens: int,
                                      overlap: int) -> None:
    settings = Settings(data_dir=tmp_path, chunk_tokens=tokens, chunk_overlap=overlap)
    body = PUNCTUATED + "\n\n" + SEED_ARTICLE.read_text(encoding="utf-8")
    chunks = chunk_article(Article(title="", body=body), tokenizer_only, settings)
    for chunk in chunks:
        assert chunk.text == body[chunk.start:chunk.end]
        assert tokenizer_only.count_tokens(chunk.text) <= min(tokens, 254)


def test_a_word_longer_than_a_chunk_is_split(tokenizer_only: Embedder, tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, chunk_tokens=32, chunk_overlap=4)
    body = "Link follows " + "https://example.com/" + "abc/" * 120 + " end of story."
    chunks = chunk_article(Article(title="", body=body), tokenizer_only, settings)
    assert chunks[-1].text.endswith("end of story.")
    covered = set()
    for chunk in chunks:
        assert chunk.text == body[chunk.start:chunk.end]
        assert tokenizer_only.count_tokens(chunk.text) <= 32
        covered.update(range(chunk.start, chunk.end))
    assert covered >= {i for i, ch in enumerate(body) if not ch.isspace()}


def test_short_body_is_one_chunk(tokenizer_only: Embedder, settings: Settings) -> None:
    article = Article(title="Brief", body="  One short line.\n")
    [chunk] = chunk_article(article, tokenizer_only, settings)
    assert (chunk.start, chunk.end, chunk.text) == (2, 17, "One short line.")


def test_embedding_text_prefixes_the_title_but_chunk_stays_exact(
        tokenizer_only: Embedder, settings: Settings) -> None:
    article = Article(title="Talks resume", body=PUNCTUATED)
    chunk = chunk_article(article, tokenizer_only, settings)[1]
    text = embedding_text(article, chunk, tokenizer_only)
    assert text == "Talks resume\n" + chunk.text
    assert chunk.text == article.body[chunk.start:chunk.end]
    assert embedding_text(Article(title="", body=PUNCTUATED), chunk) == chunk.text


def test_a_long_title_is_shortened_to_fit_the_model(tokenizer_only: Embedder,
                                                    tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, chunk_tokens=250, chunk_overlap=10)
    article = Article(title="Zyxwvut qwertyuiop " * 20, body=PUNCTUATED)
    for chunk in chunk_article(article, tokenizer_only, settings):
        text = embedding_text(article, chunk, tokenizer_only)
        assert text.endswith(chunk.text)
        assert tokenizer_only.count_tokens(text) + 2 <= tokenizer_only.max_tokens
