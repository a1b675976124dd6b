"""Quotes at index time from the embedding pass's token states: one encoder pass gives the
chunk vectors and the tagger's input; stripped text goes to the rules; the extractor's version
covers the tagger's weights and the rules' source. Real model, real Chroma."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index import attribution, quote_tagger
from index.build import update
from index.chunking import chunk_article, embedding_text
from index.embedding import Embedder
from index.manifest import Manifest
from index.quote_tagger import ChunkStates, QuoteTagger, assemble_states, word_pieces
from index.quotes import (
    EXTRACTOR_KEY,
    QuoteCatalog,
    QuoteExtractor,
    TaggerExtraction,
    default_extractor,
    rules_extractor,
)
from index.records import Article, Quote
from index.settings import Settings
from index.store import Store

PUNCTUATED = ("The harbour board approved the new ferry terminal on Monday. “This will carry "
              "a million passengers a year,” chair Ruth Ndlovu said. According to the port "
              "authority, building starts in May. “We listened,” she said, “and we changed "
              "the plan.” Fishermen said the noise would scare the fish.")
STRIPPED = ("Prime minister Giuseppe Conte said that Italy is against any military "
            "intervention in Libya and the defense minister Elisabetta Trenta told Corriere "
            "della Sera that the evacuation plans are operational")


def write(folder: Path, name: str, body: str, title: str = "Harbour news") -> Path:
    path = folder / name
    path.write_text(json.dumps({"title": title, "body": body, "source": "Wire",
                                "published": "2024-03-01"}), encoding="utf-8")
    return path


def stored_quotes(settings: Settings) -> dict[str, tuple[Quote, ...]]:
    catalog = QuoteCatalog.from_store(Store(settings, model_name=settings.embedding_model))
    return dict(catalog.by_article)


def test_one_pass_vectors_equal_embed_documents(embedder: Embedder) -> None:
    texts = ["Short.", "Harbour news\n" + PUNCTUATED, STRIPPED, "word " * 400]
    passed = embedder.embed_documents_with_states(texts)
    assert np.allclose(passed.vectors, embedder.embed_documents(texts), atol=1e-5)
    for text, states, offsets in zip(texts, passed.states, passed.offsets, strict=True):
        pieces = embedder.tokenizer.encode(text, add_special_tokens=False)
        assert states.shape == (len(offsets), 384)
        assert len(offsets) == min(len(pieces.ids), embedder.max_tokens - 2)  # truncated
        assert list(offsets) == [tuple(o) for o in pieces.offsets[:len(offsets)]]


class Spy:
    """Counts the encoder entry points an index run calls on the real embedder."""

    def __init__(self, embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        for name in ("embed_documents", "embed_documents_with_states", "token_states"):
            real = getattr(embedder, name)
            monkeypatch.setattr(embedder, name, self.counted(name, real))

    def counted(self, name: str, real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return real(*args, **kwargs)
        return call


def test_index_run_tags_from_the_embedding_pass_with_no_second_encoder_pass(
        tmp_path: Path, settings: Settings, embedder: Embedder,
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "news"
    folder.mkdir()
    write(folder, "harbour.json", PUNCTUATED)
    spy = Spy(embedder, monkeypatch)
    report = update([folder], settings, embedder=embedder)
    assert spy.calls == ["embed_documents_with_states"]
    (quotes,) = stored_quotes(settings).values()
    speakers = {q.speaker_name for q in quotes if "million passengers" in q.content}
    assert speakers == {"Ruth Ndlovu"} and report.quotes_extracted == len(quotes)
    with Manifest(settings.manifest_path) as manifest:
        assert manifest.get(EXTRACTOR_KEY) == default_extractor().version


def test_chunk_states_handed_to_the_extractor_cover_the_body(
        tmp_path: Path, settings: Settings, embedder: Embedder) -> None:
    """Exact control of the extractor: it receives every chunk's states, their offsets
    pointing into the body behind the title line, and they assemble to one state per piece."""
    body = " ".join([PUNCTUATED] * 6)  # several overlapping chunks
    seen: list[tuple[Article, Sequence[ChunkStates]]] = []

    def from_states(items: Sequence[tuple[Article, Sequence[ChunkStates]]]
                    ) -> list[tuple[Quote, ...]]:
        seen.extend(items)
        return [() for _ in items]

    extractor = QuoteExtractor(version="spy", extract=lambda a: (), from_states=from_states)
    folder = tmp_path / "news"
    folder.mkdir()
    write(folder, "long.json", body, title="Harbour board approves terminal")
    update([folder], settings, embedder=embedder, quotes=extractor)
    ((article, chunks),) = seen
    expected = chunk_article(article, embedder, settings)
    assert len(chunks) == len(expected) > 1
    for chunk, states in zip(expected, chunks, strict=True):
        text = embedding_text(article, chunk, embedder)
        assert states.body_start == chunk.start and text[states.prefix:] == chunk.text
        for start, end in states.offsets:
            if start >= states.prefix:
                moved = chunk.start + start - states.prefix
                assert body[moved:moved + end - start] == text[start:end]
    assembled = assemble_states(word_pieces(embedder.tokenizer, body), chunks)
    assert np.all(np.abs(assembled).sum(axis=1) > 0)  # every body piece has a state


def test_stripped_articles_take_the_rules(tmp_path: Path, settings: Settings,
                                          embedder: Embedder) -> None:
    folder = tmp_path / "news"
    folder.mkdir()
    write(folder, "seed.json", STRIPPED, title="Libya")
    update([folder], settings, embedder=embedder)
    (quotes,) = stored_quotes(settings).values()
    article = Store(settings, model_name=settings.embedding_model).get_article(quotes[0]
                                                                               .article_id)
    assert article is not None and attribution.is_stripped(article.body)
    assert quotes == tuple(sorted(rules_extractor().quotes_of(article),
                                  key=lambda q: (q.start, q.end)))
    trenta = [q for q in quotes if "evacuation plans" in q.content]
    assert [q.speaker_name for q in trenta] == ["Elisabetta Trenta"]


def test_version_change_re_extracts_with_the_taggers_own_pass(
        tmp_path: Path, settings: Settings, embedder: Embedder) -> None:
    """Re-extraction has no chunk states: the tagger runs its own encoder pass, once."""
    folder = tmp_path / "news"
    folder.mkdir()
    write(folder, "harbour.json", PUNCTUATED)
    update([folder], settings, embedder=embedder, quotes=rules_extractor())
    redone = update([folder], settings, embedder=embedder)
    assert redone.chunks_added == 0 and redone.quotes_extracted > 0
    (quotes,) = stored_quotes(settings).values()
    article = Store(settings, model_name=settings.embedding_model).get_article(quotes[0]
                                                                               .article_id)
    assert article is not None
    own = TaggerExtraction(QuoteTagger()).with_own_pass(article)
    assert quotes == tuple(sorted(own, key=lambda q: (q.start, q.end)))


def test_version_covers_weights_and_rules_and_falls_back_to_the_rules(tmp_path: Path) -> None:
    weights = quote_tagger.WEIGHTS_DIR
    version = default_extractor().version
    assert QuoteTagger().sha256[:16] in version
    assert rules_extractor().version.removeprefix("attribution-") in version
    assert default_extractor().reads_states and not rules_extractor().reads_states
    copy = tmp_path / "weights"
    shutil.copytree(weights, copy)
    assert default_extractor(folder=copy).version == version
    sha = (copy / quote_tagger.SHA_FILE).read_text(encoding="utf-8")
    (copy / quote_tagger.SHA_FILE).write_text("0" * 64 + sha[64:], encoding="utf-8")
    corrupted = default_extractor(folder=copy)  # weights no longer match their sha256
    assert corrupted.version == rules_extractor().version and not corrupted.reads_states
    other = default_extractor("some/other-model")  # states of another model: not the tagger's
    assert other.version == rules_extractor().version


def test_batched_tagging_equals_one_text_at_a_time(embedder: Embedder) -> None:
    tagger = QuoteTagger(embedder=embedder)
    texts = [PUNCTUATED, "“Short,” he said.", " ".join([PUNCTUATED] * 3)]
    items = []
    for text in texts:
        pieces = word_pieces(embedder.tokenizer, text)
        passed = embedder.embed_documents_with_states([text])
        items.append((text, pieces.offsets, passed.states[0]))
    assert tagger.tag_ids_many(items) == [tagger.tag_ids(*item) for item in items]
