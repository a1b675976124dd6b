"""Peers newsqa is measured against: the textbook LangChain recipe, BM25 alone, random.

Each system ranks corpus articles for a question (`rank(question, depth, until) -> [doc_id]`),
so that the evaluation scores every system at the article level with the same code. The
textbook recipe talks to langchain-chroma through its public API only.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from index.dates import day_number
from qa.eval.data import CorpusDoc
from qa.eval.metrics import distinct_in_order
from qa.retriever import Filters, Retriever

StageProgress = Callable[[str, int, int], None]
"""progress(stage, done, total), the CLI's progress-bar callback."""

TEXTBOOK_CHUNK_SIZE = 1000
TEXTBOOK_CHUNK_OVERLAP = 200
_TEXTBOOK_BATCH = 256
_TEXTBOOK_MARKER = "complete.json"


@runtime_checkable
class RankingSystem(Protocol):
    """Something that ranks corpus articles for a question (what the evaluation scores)."""

    name: str

    def rank(self, query: str, depth: int, until: str | None) -> list[str]:
        """Corpus doc ids, best first, at most `depth` distinct ones (articles after `until`
        are not eligible)."""
        ...


class TextbookRAG:
    """The textbook LangChain recipe: 1000/200 character splitter, HuggingFaceEmbeddings of the
    same bundled model, a langchain_chroma.Chroma store, `similarity_search` top-k.

    The store is persisted under `directory` and reused when complete (a marker file records
    the chunk count and the build time), so a second evaluation run does not re-embed.
    """

    name = "textbook"

    def __init__(self, directory: Path, *, model_path: str) -> None:
        self.directory = Path(directory)
        self.model_path = model_path
        self._store: Any = None
        self.build_seconds: float | None = None
        self.reused = False
        self.chunk_count = 0

    @property
    def _marker(self) -> Path:
        return self.directory / _TEXTBOOK_MARKER

    def _open(self) -> Any:
        from langchain_chroma import Chroma
        from langchain_huggingface import HuggingFaceEmbeddings

        embeddings = HuggingFaceEmbeddings(
            model_name=self.model_path, model_kwargs={"device": "cpu"},
            encode_kwargs={"normalize_embeddings": True})
        return Chroma(collection_name="textbook", embedding_function=embeddings,
                      persist_directory=str(self.directory / "chroma"))

    def _stored_ids(self) -> set[str]:
        return set(self._store.get(include=[])["ids"])

    def build(self, docs: Sequence[CorpusDoc], *, progress: StageProgress | None = None) -> None:
        """Split, embed and store `docs` unless cached.

        A file lock next to the store makes concurrent evaluations wait for one build.
        """
        from filelock import FileLock

        self.directory.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.directory) + ".lock"):
            if not self._reuse():
                self._build_locked(docs, progress)

    def _reuse(self) -> bool:
        """Open a complete cached store (True), or clear one its marker disagrees with."""
        if not self._marker.is_file():
            return False
        info = json.loads(self._marker.read_text())
        self._store = self._open()
        if len(self._stored_ids()) == info.get("chunks"):
            self.reused = True
            self.chunk_count = int(info["chunks"])
            self.build_seconds = float(info.get("build_seconds") or 0.0)
            return True
        self._store = None
        shutil.rmtree(self.directory)  # marker and store disagree: start again
        return False

    def _build_locked(self, docs: Sequence[CorpusDoc], progress: StageProgress | None) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        texts, metadatas, ids = _textbook_chunks(docs)
        self._store = self._open()
        # an interrupted build resumes: ids are deterministic, stored ones are skipped
        present = self._stored_ids()
        todo = [i for i, chunk_id in enumerate(ids) if chunk_id not in present]
        for begin in range(0, len(todo), _TEXTBOOK_BATCH):
            part = todo[begin:begin + _TEXTBOOK_BATCH]
            self._store.add_texts([texts[i] for i in part],
                                  metadatas=[metadatas[i] for i in part],
                                  ids=[ids[i] for i in part])
            if progress:
                progress("textbook: embedding", len(present) + begin + len(part), len(texts))
        self.build_seconds = time.perf_counter() - started
        self.chunk_count = len(texts)
        self._marker.write_text(json.dumps({"chunks": len(texts),
                                            "resumed_with": len(present),
                                            "build_seconds": self.build_seconds}))

    def rank(self, query: str, depth: int, until: str | None) -> list[str]:
        if self._store is None:
            raise RuntimeError("TextbookRAG.build() must run before rank()")
        where = {"published_day": {"$lte": day_number(until)}} if until else None
        k = depth * 3
        while True:
            found = self._store.similarity_search(query, k=k, filter=where)
            ranked = distinct_in_order([d.metadata["doc_id"] for d in found])
            if len(ranked) >= depth or len(found) < k or k >= depth * 48:
                return ranked[:depth]
            k *= 2


def _textbook_chunks(docs: Sequence[CorpusDoc]
                     ) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """(texts, metadatas, ids) of the recipe's RecursiveCharacterTextSplitter chunks."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=TEXTBOOK_CHUNK_SIZE,
                                              chunk_overlap=TEXTBOOK_CHUNK_OVERLAP)
    texts: list[str] = []
    metadatas: list[dict[str, Any]] = []
    ids: list[str] = []
    for doc in docs:
        for ordinal, piece in enumerate(splitter.split_text(doc.body)):
            texts.append(piece)
            metadatas.append({"doc_id": doc.id, "published_day": day_number(doc.published) or 0})
            ids.append(f"{doc.id}-{ordinal:04d}")
    return texts, metadatas, ids


class RetrieverRanker:
    """newsqa's own retriever as an article ranking: the product configuration (name
    "newsqa"), or one of its modes alone, e.g. mode="keyword" for BM25 alone ("bm25")."""

    def __init__(self, name: str, retriever: Retriever, to_doc: Callable[[str], str | None], *,
                 mode: str | None = None) -> None:
        self.name = name
        self.retriever = retriever
        self.to_doc = to_doc
        self.mode = mode

    def rank(self, query: str, depth: int, until: str | None) -> list[str]:
        """Distinct corpus doc ids from the retriever's passages, deepening until `depth`
        distinct articles are found (or the candidates run out)."""
        changes: dict[str, Any] = {"mode": self.mode} if self.mode else {}
        filters = Filters.make(until=until)
        k = depth * 5
        pool = max(self.retriever.config.depth, depth * 4)
        while True:
            config = dataclasses.replace(self.retriever.config, depth=pool, **changes)
            passages = self.retriever.retrieve(query, k=k, filters=filters, config=config)
            ranked = [d for d in distinct_in_order(self.to_doc(p.article.id) or ""
                                                   for p in passages) if d]
            if len(ranked) >= depth or pool >= depth * 32:
                return ranked[:depth]
            pool *= 2
            k *= 2


class RandomRanker:
    """A deliberately useless ranker (random articles): the floor every metric must beat."""

    name = "random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.doc_ids: list[str] = []

    def prepare(self, docs: Sequence[CorpusDoc]) -> None:
        self.doc_ids = sorted(d.id for d in docs)

    def rank(self, query: str, depth: int, until: str | None) -> list[str]:
        rng = random.Random(f"{self.seed}:{query}")
        return rng.sample(self.doc_ids, min(depth, len(self.doc_ids)))
