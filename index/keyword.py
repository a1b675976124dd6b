"""BM25 keyword index (bm25s, English stemming and stop words) over the same chunks as Chroma.

Saved under `settings.keyword_dir` as generations: each save writes a new `g-*` folder and then
atomically replaces the `CURRENT` pointer, so readers never see a half-written index and a
long-running server picks up a new one with `refresh_if_stale()`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from index.records import Chunk
from index.text import keyword_words, stem_words

if TYPE_CHECKING:
    from index.settings import Settings
    from index.store import Store

FORMAT_VERSION = 1
_POINTER = "CURRENT"
_KEEP_GENERATIONS = 2


class Analyzer:
    """Lower-case word tokens, English stop words removed, Snowball-stemmed (cached)."""

    def __init__(self) -> None:
        self._cache: dict[str, str] = {}

    def __call__(self, text: str) -> list[str]:
        words = keyword_words(text)
        cache = self._cache
        missing = list({w for w in words if w not in cache})
        if missing:
            if len(cache) > 500_000:
                cache.clear()
            cache.update(zip(missing, stem_words(missing), strict=True))
        return [cache[w] for w in words]


_ANALYZER: Analyzer | None = None
_ANALYZER_LOCK = threading.Lock()


def analyzer() -> Analyzer:
    global _ANALYZER
    with _ANALYZER_LOCK:
        if _ANALYZER is None:
            _ANALYZER = Analyzer()
        return _ANALYZER


def keyword_text(title: str, chunk: Chunk) -> str:
    """What the keyword index sees for a chunk: its article title and its text."""
    return f"{title}\n{chunk.text}" if title else chunk.text


def current_generation(directory: str | os.PathLike[str]) -> str:
    """The generation currently published in `directory` ("" when there is none)."""
    try:
        return (Path(directory) / _POINTER).read_text(encoding="utf-8").strip()
    except (OSError, ValueError):  # missing, unreadable or not text
        return ""


def is_published(directory: str | os.PathLike[str], chunks: int) -> bool:
    """Whether `directory` publishes an index of exactly `chunks` chunks (cheap: no bm25s).

    The indexer's check that the keyword index is in step with the store without loading it.
    """
    generation = current_generation(directory)
    if not generation:
        return False
    folder = Path(directory) / generation
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        published = int(meta.get("chunks", -1))
    except (OSError, ValueError, TypeError, AttributeError):  # missing, truncated, foreign
        return False
    if published != chunks:
        return False
    return chunks == 0 or (folder / "bm25").is_dir()


class KeywordIndex:
    """BM25 over chunks; search returns (chunk_id, score) best first."""

    def __init__(self, chunk_ids: list[str], article_ids: list[str], retriever: Any) -> None:
        if len(chunk_ids) != len(article_ids):
            raise ValueError("chunk_ids and article_ids differ in length")
        self._lock = threading.RLock()
        self._directory: Path | None = None
        self._generation = ""
        self._set(chunk_ids, article_ids, retriever)

    def _set(self, chunk_ids: list[str], article_ids: list[str], retriever: Any) -> None:
        with self._lock:
            self.chunk_ids = list(chunk_ids)
            self.article_ids = list(article_ids)
            self._retriever = retriever
            names = sorted(set(article_ids))
            self._article_number = {a: i for i, a in enumerate(names)}
            self._doc_article = np.asarray([self._article_number[a] for a in article_ids],
                                           dtype=np.int64)

    def __len__(self) -> int:
        return len(self.chunk_ids)

    @property
    def generation(self) -> str:
        return self._generation

    # --- building ------------------------------------------------------------------------

    @classmethod
    def build(cls, chunks: Iterable[Chunk], titles: Mapping[str, str]) -> KeywordIndex:
        """Index chunks (title + text); `titles` maps article id -> title."""
        analyze = analyzer()
        chunk_ids: list[str] = []
        article_ids: list[str] = []
        corpus: list[list[str]] = []
        for chunk in chunks:
            chunk_ids.append(chunk.id)
            article_ids.append(chunk.article_id)
            corpus.append(analyze(keyword_text(titles.get(chunk.article_id, ""), chunk)))
        return cls(chunk_ids, article_ids, _bm25(corpus) if corpus else None)

    # --- persistence ---------------------------------------------------------------------

    def save(self, directory: str | os.PathLike[str]) -> str:
        """Publish this index as a new generation of `directory`; returns its name."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        generation = f"g-{time.time_ns():020d}-{os.getpid()}"
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=directory))
        try:
            with self._lock:
                if self._retriever is not None:
                    self._retriever.save(str(staging / "bm25"), show_progress=False)
                meta = {"format": FORMAT_VERSION, "chunks": len(self.chunk_ids),
                        "created": time.time()}
                (staging / "chunks.json").write_text(json.dumps(
                    {"chunk_ids": self.chunk_ids, "article_ids": self.article_ids}),
                    encoding="utf-8")
                (staging / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
            os.replace(staging, directory / generation)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        pointer = directory / f".{_POINTER}.{os.getpid()}.tmp"
        pointer.write_text(generation, encoding="utf-8")
        os.replace(pointer, directory / _POINTER)
        self._directory, self._generation = directory, generation
        _collect_garbage(directory, generation)
        return generation

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> KeywordIndex | None:
        """The published index in `directory`, or None when it is missing or unreadable."""
        directory = Path(directory)
        generation = current_generation(directory)
        if not generation:
            return None
        loaded = _load_generation(directory / generation)
        if loaded is None:
            return None
        index = cls(*loaded)
        index._directory, index._generation = directory, generation
        return index

    def refresh_if_stale(self) -> bool:
        """Reload when another process published a newer generation; True if reloaded."""
        if self._directory is None:
            return False
        generation = current_generation(self._directory)
        if not generation or generation == self._generation:
            return False
        loaded = _load_generation(self._directory / generation)
        if loaded is None:
            return False
        with self._lock:
            self._set(*loaded)
            self._generation = generation
        return True

    # --- searching -----------------------------------------------------------------------

    def search(self, query: str, k: int,
               allowed_article_ids: set[str] | None = None) -> list[tuple[str, float]]:
        """(chunk_id, BM25 score) of the k best chunks with a positive score, best first.

        `allowed_article_ids` restricts the candidates before the top k are taken.
        """
        if k < 1 or not query.strip():
            return []
        with self._lock:
            retriever, chunk_ids = self._retriever, self.chunk_ids
            if retriever is None:
                return []
            token_ids = retriever.get_tokens_ids(analyzer()(query))
            if not token_ids:
                return []
            scores = retriever.get_scores_from_ids(token_ids)
            if allowed_article_ids is not None:
                allowed = [self._article_number[a] for a in allowed_article_ids
                           if a in self._article_number]
                scores = np.where(np.isin(self._doc_article, allowed), scores, 0.0)
        candidates = np.flatnonzero(scores > 0)
        if candidates.size == 0:
            return []
        if candidates.size > k:
            top = np.argpartition(-scores[candidates], k - 1)[:k]
            candidates = candidates[top]
        order = sorted(candidates.tolist(), key=lambda i: (-float(scores[i]), chunk_ids[i]))
        return [(chunk_ids[i], float(scores[i])) for i in order]


def _bm25(corpus: list[list[str]]) -> Any:
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(corpus, show_progress=False)
    return retriever


#: What reading a missing, truncated or foreign generation raises (json, numpy, bm25s).
_UNREADABLE = (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError)


def _load_generation(folder: Path) -> tuple[list[str], list[str], Any] | None:
    """The ids and BM25 model saved in `folder`; None when it is missing or unreadable."""
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            return None
        ids = json.loads((folder / "chunks.json").read_text(encoding="utf-8"))
        chunk_ids, article_ids = list(ids["chunk_ids"]), list(ids["article_ids"])
        if len(chunk_ids) != meta.get("chunks") or len(article_ids) != len(chunk_ids):
            return None
        retriever = None
        if chunk_ids:
            import bm25s

            retriever = bm25s.BM25.load(str(folder / "bm25"), show_progress=False)
            if int(retriever.scores["num_docs"]) != len(chunk_ids):
                return None
        return chunk_ids, article_ids, retriever
    except _UNREADABLE:  # missing, truncated or foreign files: treat as absent
        return None


def _collect_garbage(directory: Path, current: str) -> None:
    """Remove old generations (keeping the newest few for readers still loading them)."""
    generations = sorted(p for p in directory.glob("g-*") if p.is_dir() and p.name != current)
    for old in generations[:-(_KEEP_GENERATIONS - 1) or None]:
        shutil.rmtree(old, ignore_errors=True)
    for stale in directory.glob(".tmp-*"):
        if time.time() - stale.stat().st_mtime > 3600:
            shutil.rmtree(stale, ignore_errors=True)


def build_from_store(store: Store) -> KeywordIndex:
    """A keyword index over every visible chunk in the store."""
    titles = {meta.id: meta.title for meta, _ in store.list_articles()}
    return KeywordIndex.build(store.iter_chunks(), titles)


def load_or_build(settings: Settings, store: Store) -> KeywordIndex:
    """The saved keyword index, rebuilt from the store when missing, corrupt or out of step."""
    index = KeywordIndex.load(settings.keyword_dir)
    if index is not None and len(index) == store.count()[1]:
        return index
    index = build_from_store(store)
    index.save(settings.keyword_dir)
    return index
