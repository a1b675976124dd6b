"""Chroma, embedded (PersistentClient under the data folder) or a server (HttpClient).

Two collections: `<name>` holds chunks (embedding, text, offsets, article metadata) and
`<name>-articles` holds one record per article (full body, metadata, mean chunk embedding).
An article becomes visible only when its article record exists: chunks are written first and
the record last, and deletion removes the record first, so readers never see half an article.
The article's quotes (index.records.Quote, as JSON) are a field of its record's metadata,
written in the same upsert: they are added, replaced and pruned with their article.
Embeddings are always passed explicitly; Chroma's default embedding function is never used.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

import numpy as np

from index.dates import day_number, published_day
from index.errors import ModelMismatchError, NewsQAError, StoreError
from index.records import Article, ArticleMeta, Chunk, Quote
from index.settings import Settings, apply_offline_env

SCHEMA_VERSION = 1
_META_FIELDS = ("title", "source", "author", "published", "url", "path")
#: Collection metadata key (server mode) holding the write stamp; see `Store.fingerprint`.
STAMP_KEY = "newsqa_write_stamp"
#: File beside the embedded store's data holding the write stamp.
STAMP_FILE = "newsqa-write-stamp"
#: Article-record metadata key holding the article's quotes (a JSON list of Quote dicts);
#: absent when the article was stored without quote extraction.
QUOTES_KEY = "quotes"
#: Records an HNSW segment holds in memory before Chroma writes it to disk. Every write
#: replays the records written since the last save, so Chroma's default (1000) makes a small
#: write cost ~100 ms on a large index (measured on 100k chunks: 11 ms just after a save);
#: 100 bounds that replay, at one save of the index file per 100 records.
HNSW_SYNC_THRESHOLD = 100

ArticleItem = tuple[Article, Sequence[Chunk], np.ndarray]
"""An article, its chunks and their embeddings (one row per chunk): what the store writes."""


T = TypeVar("T")


@functools.cache
def chroma_errors() -> tuple[type[BaseException], ...]:
    """What chromadb raises for a store it cannot reach, read or write (mapped to StoreError).

    Its own errors, the ValueError it raises for an unreachable server or a refused request,
    OS errors of the embedded files, and its HTTP transport's errors.
    """
    import chromadb.errors
    import httpx

    return (chromadb.errors.ChromaError, ValueError, OSError, httpx.HTTPError)


def _not_found() -> type[BaseException]:
    import chromadb.errors

    return chromadb.errors.NotFoundError


#: Chroma's System cache is one per process, shared by every Store: clearing it while another
#: thread creates a client makes that creation fail (KeyError inside chromadb), so both hold
#: this lock.
_SYSTEM_CACHE_LOCK = threading.Lock()


def forget_cached_clients() -> None:
    """Make the next embedded Chroma client in this process re-read its folder from disk.

    Chroma keeps one System per path per process, whose in-memory vector index does not see
    other processes' writes. Its public `clear_system_cache` drops them without stopping them,
    so queries already running on old handles finish.
    """
    from chromadb.api.shared_system_client import SharedSystemClient

    with _SYSTEM_CACHE_LOCK:
        SharedSystemClient.clear_system_cache()


def new_stamp() -> str:
    """A value no other write (in any process, on any machine) has used."""
    return f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def build_where(*, sources: Sequence[str] | None = None, since: str | date | None = None,
                until: str | date | None = None,
                article_ids: Sequence[str] | None = None) -> dict[str, Any] | None:
    """A Chroma `where` filter over chunk or article metadata; None when nothing is filtered."""
    clauses: list[dict[str, Any]] = []
    if sources:
        clauses.append({"source": {"$in": list(sources)}})
    if article_ids:
        clauses.append({"article_id": {"$in": list(article_ids)}})
    low, high = day_number(since), day_number(until)
    if low is not None:
        clauses.append({"published_day": {"$gte": low}})
    if high is not None:
        clauses.append({"published_day": {"$lte": high}})
    if low is not None and high is None:
        clauses.append({"published_day": {"$gt": 0}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


@dataclass(frozen=True)
class ChunkHit:
    """A chunk returned by a dense query, with its article's metadata and cosine similarity."""

    chunk: Chunk
    article: ArticleMeta
    similarity: float


@dataclass(frozen=True)
class StoredChunk:
    """A stored chunk as the in-memory catalog keeps it: the chunk with its article's
    metadata, and its embedding."""

    hit: ChunkHit
    vector: np.ndarray


def chunk_metadata(article: Article, chunk: Chunk) -> dict[str, Any]:
    """The metadata stored with a chunk: its article's fields, offsets and day number."""
    meta: dict[str, Any] = {name: getattr(article, name) for name in _META_FIELDS}
    meta.update(article_id=article.id, ordinal=chunk.ordinal, start=chunk.start,
                end=chunk.end, published_day=published_day(article.published))
    return meta


def article_record(article: Article, chunk_count: int,
                   quotes: Sequence[Quote] | None = None) -> dict[str, Any]:
    """The metadata stored with an article record (with its quotes when they were extracted)."""
    record: dict[str, Any] = {name: getattr(article, name) for name in _META_FIELDS}
    record.update(published_day=published_day(article.published), chunk_count=chunk_count,
                  article_id=article.id)
    if quotes is not None:
        record[QUOTES_KEY] = quotes_json(quotes)
    return record


def quotes_json(quotes: Sequence[Quote]) -> str:
    """Quotes as stored in an article record's metadata."""
    return json.dumps([quote.to_dict() for quote in quotes], ensure_ascii=False)


def stored_quotes(meta: dict[str, Any]) -> tuple[Quote, ...] | None:
    """The quotes of an article record's metadata; None when none were extracted."""
    raw = meta.get(QUOTES_KEY)
    if raw is None:
        return None
    try:
        return tuple(Quote.from_dict(item) for item in json.loads(raw))
    except (ValueError, TypeError, KeyError) as exc:
        raise StoreError(f"article {meta.get('article_id')}: unreadable stored quotes "
                         f"({exc})") from exc


@dataclass(frozen=True)
class ArticleRow:
    """A visible article as filters see it; `stamp` changes when its metadata does."""

    id: str
    source: str
    day: int  # YYYYMMDD, 0 when undated
    stamp: str


def _metadata_stamp(meta: Mapping[str, Any]) -> str:
    """A short hash of an article record's metadata (its quotes left out)."""
    fields = {key: value for key, value in meta.items() if key != QUOTES_KEY}
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


def centroid(embeddings: np.ndarray) -> np.ndarray:
    """The unit-length mean of an article's chunk embeddings (its article-record vector)."""
    mean = embeddings.mean(axis=0)
    return mean / (np.linalg.norm(mean) or 1.0)


def _article_from(meta: dict[str, Any], article_id: str) -> ArticleMeta:
    return ArticleMeta.from_dict({**meta, "id": article_id})


def _chunk_from(chunk_id: str, text: str, meta: dict[str, Any]) -> Chunk:
    chunk = Chunk(article_id=meta["article_id"], ordinal=int(meta["ordinal"]),
                  start=int(meta["start"]), end=int(meta["end"]), text=text)
    if chunk.id != chunk_id:
        raise StoreError(f"chunk {chunk_id} does not match its stored text")
    return chunk


class Store:
    """The vector store. Construction is cheap; the connection opens on first use."""

    def __init__(self, settings: Settings, *, model_name: str) -> None:
        self.settings = settings
        self.model_name = model_name
        self._client: Any = None
        self._chunks: Any = None
        self._articles: Any = None
        self._lock = threading.RLock()
        self._write_tuned = False

    @property
    def location(self) -> str:
        return self.settings.chroma_url or str(self.settings.chroma_path.resolve())

    def _connect(self) -> Any:
        apply_offline_env()  # before chromadb reads its telemetry settings
        import chromadb

        chroma_settings = chromadb.Settings(anonymized_telemetry=False)
        try:
            if self.settings.chroma_url:
                url = urlparse(self.settings.chroma_url)
                return chromadb.HttpClient(
                    host=url.hostname or "127.0.0.1",
                    port=url.port or (443 if url.scheme == "https" else 8000),
                    ssl=url.scheme == "https", settings=chroma_settings)
            self.settings.chroma_path.mkdir(parents=True, exist_ok=True)
            with _SYSTEM_CACHE_LOCK:
                return chromadb.PersistentClient(path=str(self.settings.chroma_path),
                                                 settings=chroma_settings)
        except chroma_errors() as exc:
            raise StoreError(f"cannot open the Chroma store at {self.location}: {exc}") from exc

    def _client_now(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _collections(self, dimension: int | None = None) -> tuple[Any, Any] | None:
        """(chunks, articles), created when `dimension` is given; None when absent."""
        with self._lock:
            if self._chunks is not None:
                return self._chunks, self._articles
            client = self._client_now()
            names = {self.settings.collection, self._articles_name}
            try:
                existing = {c.name if hasattr(c, "name") else str(c)
                            for c in client.list_collections()}
            except chroma_errors() as exc:
                raise StoreError(f"cannot list collections at {self.location}: {exc}") from exc
            if not names <= existing and dimension is None:
                return None
            chunks, articles = self._open_collections(client, dimension)
            self._check_model(chunks.metadata or {}, dimension)
            self._chunks, self._articles = chunks, articles
            return chunks, articles

    def _open_collections(self, client: Any, dimension: int | None) -> tuple[Any, Any]:
        metadata = {"embedding_model": self.model_name, "dimension": dimension or 0,
                    "newsqa_schema": SCHEMA_VERSION}
        try:
            return tuple(client.get_or_create_collection(  # type: ignore[return-value]
                name, embedding_function=None, metadata=metadata,
                configuration={"hnsw": {"space": "cosine",
                                        "sync_threshold": HNSW_SYNC_THRESHOLD}})
                for name in (self.settings.collection, self._articles_name))
        except chroma_errors() as exc:
            raise StoreError(f"cannot open collection {self.settings.collection!r} "
                             f"at {self.location}: {exc}") from exc

    def _writable(self, dimension: int | None = None) -> tuple[Any, Any] | None:
        """The collections for a write (created when `dimension` is given), their save
        threshold brought to HNSW_SYNC_THRESHOLD once (collections made before it had 1000)."""
        collections = self._collections(dimension)
        if collections is None or self._write_tuned:
            return collections
        for collection in collections:
            hnsw = (collection.configuration or {}).get("hnsw") or {}
            if hnsw.get("sync_threshold") != HNSW_SYNC_THRESHOLD:
                try:
                    collection.modify(
                        configuration={"hnsw": {"sync_threshold": HNSW_SYNC_THRESHOLD}})
                except chroma_errors() as exc:
                    raise StoreError(f"cannot configure collection {collection.name!r} "
                                     f"at {self.location}: {exc}") from exc
        self._write_tuned = True
        return collections

    @property
    def _articles_name(self) -> str:
        return f"{self.settings.collection}-articles"

    def _check_model(self, metadata: dict[str, Any], dimension: int | None) -> None:
        built_with = metadata.get("embedding_model")
        built_dim = int(metadata.get("dimension") or 0)
        if built_with != self.model_name or (dimension and built_dim and built_dim != dimension):
            raise ModelMismatchError(
                f"collection {self.settings.collection!r} at {self.location} was built with "
                f"embedding model {built_with!r} ({built_dim} dimensions) but the configured "
                f"model is {self.model_name!r}; run `newsqa index --rebuild PATH...` to "
                f"re-embed everything with it, or configure the original model")

    def exists(self) -> bool:
        return self._collections() is not None

    def known_empty(self) -> bool:
        """True when nothing can be stored here yet: an embedded store whose folder holds no
        Chroma database (so there is no model to check and nothing to list)."""
        return not self.settings.chroma_url and not (
            self.settings.chroma_path / "chroma.sqlite3").exists()

    def open_in_background(self) -> None:
        """Open the store (import chromadb, connect, look up the collections) on a thread,
        so that the first write of a build need not wait for it. A failure there is raised
        again by the next call, which then opens the store itself."""
        def open_quietly() -> None:
            with contextlib.suppress(NewsQAError):  # the next call raises it again
                self.exists()

        threading.Thread(target=open_quietly, name="newsqa-store-open", daemon=True).start()

    def reopen(self) -> None:
        """Drop cached handles so that the next call sees what other processes wrote.

        An embedded Chroma keeps one System per path per process, whose in-memory vector index
        does not see other processes' writes; the cache is cleared (see `forget_cached_clients`)
        and the next call loads a fresh System from disk.
        """
        with self._lock:
            if not self.settings.chroma_url:
                forget_cached_clients()
            self._client = self._chunks = self._articles = None

    def _read(self, what: str, read: Callable[[tuple[Any, Any]], T]) -> T | None:
        """`read` of the (chunks, articles) collections, None when the store is absent. An
        embedded store's view goes stale while another process writes to the same folder
        (Chroma then fails a read with "Error finding id"), so after a Chroma error the
        handles are reopened from disk and the read tried once more; a second failure is a
        StoreError naming `what`."""
        for attempt in (1, 2):
            collections = self._collections()
            if collections is None:
                return None
            try:
                return read(collections)
            except chroma_errors() as exc:
                if attempt == 2 or self.settings.chroma_url:
                    raise StoreError(f"{what} at {self.location}: {exc}") from exc
                self.reopen()
        return None

    # --- the change signal -----------------------------------------------------------------

    @property
    def _stamp_file(self) -> Path:
        return self.settings.chroma_path / STAMP_FILE

    def fingerprint(self) -> str:
        """A value that changes whenever newsqa writes to this store ("" when unknown).

        Every write first stores a new stamp (before touching the data, so an interrupted
        write changes it too). Embedded: a file beside the data, read without importing
        chromadb. Server: the chunk collection's metadata, one request, visible to every
        machine using the server.
        """
        if self.settings.chroma_url:
            stamp = self._server_stamp()
        else:
            try:
                stamp = self._stamp_file.read_text(encoding="utf-8").strip()
            except (OSError, ValueError):
                stamp = ""
        return json.dumps([self.location, self.settings.collection, stamp]) if stamp else ""

    def _server_stamp(self) -> str:
        client = self._client_now()
        try:
            metadata = client.get_collection(self.settings.collection).metadata or {}
        except _not_found():
            return ""
        except chroma_errors() as exc:
            raise StoreError(f"cannot read collection {self.settings.collection!r} "
                             f"at {self.location}: {exc}") from exc
        return str(metadata.get(STAMP_KEY) or "")

    def mark_changed(self) -> None:
        """Store a new write stamp (every write does this first; see `fingerprint`)."""
        stamp = new_stamp()
        if not self.settings.chroma_url:
            self.settings.chroma_path.mkdir(parents=True, exist_ok=True)
            temporary = self._stamp_file.with_name(f".{STAMP_FILE}.{os.getpid()}.tmp")
            temporary.write_text(stamp, encoding="utf-8")
            os.replace(temporary, self._stamp_file)
            return
        collections = self._collections()
        if collections is None:
            return  # nothing stored yet: the first write creates the collection, then stamps
        chunk_col = collections[0]
        try:
            chunk_col.modify(metadata={**(chunk_col.metadata or {}), STAMP_KEY: stamp})
        except chroma_errors() as exc:
            raise StoreError(f"cannot write to collection {self.settings.collection!r} "
                             f"at {self.location}: {exc}") from exc

    # --- writing -------------------------------------------------------------------------

    def upsert_article(self, article: Article, chunks: Sequence[Chunk],
                       embeddings: np.ndarray, quotes: Sequence[Quote] | None = None) -> None:
        """Write an article's chunks, then its record (which makes it visible)."""
        self.upsert_articles([(article, chunks, embeddings)],
                             None if quotes is None else {article.id: quotes})

    def upsert_articles(self, items: Sequence[ArticleItem],
                        quotes: Mapping[str, Sequence[Quote]] | None = None, *,
                        new: bool = False) -> None:
        """Write several articles in a few batched calls: all chunks first, then the records.

        Same visibility barrier as `upsert_article`: a record is written only after all of its
        chunks, and stale chunks of a rewritten article are removed before its record (`new`:
        the caller knows none of these articles has chunks stored, so none are looked up).
        `quotes` (article id -> its quotes) go into the records; an article it leaves out is
        stored as not extracted.
        """
        if not items:
            return
        _check_items(items)
        chunk_col, article_col = self._writable(dimension=int(items[0][2].shape[1]))
        self.mark_changed()
        batch = self._batch_size()
        try:
            stale = set() if new else self._chunk_ids_of([a.id for a, _, _ in items])
            written = self._write_chunks(chunk_col, items, batch)
            self._delete_ids(chunk_col, sorted(stale - written), batch)
            self._write_records(article_col, items, batch, quotes or {})
        except chroma_errors() as exc:
            first = items[0][0]
            raise StoreError(f"cannot write {len(items)} article(s) starting with {first.id} "
                             f"({first.key or first.title!r}): {exc}") from exc

    def _chunk_ids_of(self, article_ids: list[str]) -> set[str]:
        """Ids of every stored chunk of these articles."""
        chunk_col = self._chunks
        found: set[str] = set()
        for begin in range(0, len(article_ids), 500):
            found.update(chunk_col.get(
                where={"article_id": {"$in": article_ids[begin:begin + 500]}},
                include=[])["ids"])
        return found

    @staticmethod
    def _write_chunks(chunk_col: Any, items: Sequence[ArticleItem], batch: int) -> set[str]:
        """Write every chunk of `items` in batches; returns the ids written."""
        rows = [(c, article, vector) for article, chunks, embeddings in items
                for c, vector in zip(chunks, embeddings, strict=True)]
        for begin in range(0, len(rows), batch):
            part = rows[begin:begin + batch]
            chunk_col.upsert(ids=[c.id for c, _, _ in part],
                             embeddings=np.stack([v for _, _, v in part]),
                             documents=[c.text for c, _, _ in part],
                             metadatas=[chunk_metadata(a, c) for c, a, _ in part])
        return {c.id for c, _, _ in rows}

    @staticmethod
    def _write_records(article_col: Any, items: Sequence[ArticleItem], batch: int,
                       quotes: Mapping[str, Sequence[Quote]]) -> None:
        """Write the article records (the visibility barrier) with their quotes in batches."""
        ids = [a.id for a, _, _ in items]
        centroids = [centroid(embeddings) for _, _, embeddings in items]
        records = [article_record(article, len(chunks), quotes.get(article.id))
                   for article, chunks, _ in items]
        for begin in range(0, len(items), batch):
            article_col.upsert(ids=ids[begin:begin + batch],
                               embeddings=np.stack(centroids[begin:begin + batch]),
                               documents=[a.body for a, _, _ in items[begin:begin + batch]],
                               metadatas=records[begin:begin + batch])

    @staticmethod
    def _delete_ids(collection: Any, ids: list[str], batch: int) -> None:
        for begin in range(0, len(ids), batch):
            collection.delete(ids=ids[begin:begin + batch])

    def _batch_size(self) -> int:
        try:
            return max(1, min(1000, int(self._client.get_max_batch_size())))
        except chroma_errors():  # older servers: a conservative default
            return 500

    def delete_article(self, article_id: str) -> None:
        """Remove an article: its record first (invisible at once), then its chunks."""
        self.delete_articles([article_id])

    def delete_articles(self, article_ids: Sequence[str],
                        progress: Callable[[int, int], None] | None = None) -> int:
        """Remove articles one by one (record first, then chunks) after one write stamp;
        returns how many chunks their records said they had."""
        collections = self._writable()
        if collections is None or not article_ids:
            return 0
        chunk_col, article_col = collections
        self.mark_changed()
        chunks = 0
        for number, article_id in enumerate(article_ids, start=1):
            try:
                got = article_col.get(ids=[article_id], include=["metadatas"])
                chunks += sum(int(meta.get("chunk_count") or 0) for meta in got["metadatas"])
                article_col.delete(ids=[article_id])
                chunk_col.delete(where={"article_id": article_id})
            except chroma_errors() as exc:
                raise StoreError(f"cannot delete article {article_id}: {exc}") from exc
            if progress:
                progress(number, len(article_ids))
        return chunks

    def reset(self) -> None:
        """Delete both collections (used by rebuild and by a model change).

        A collection that does not exist is fine; any other failure (an unreachable server)
        is a StoreError, so a rebuild never starts on a store it could not empty.
        """
        with self._lock:
            client = self._client_now()
            if not self.settings.chroma_url:
                self.mark_changed()
            for name in (self.settings.collection, self._articles_name):
                try:
                    client.delete_collection(name)
                except _not_found():
                    pass  # absent already
                except chroma_errors() as exc:
                    raise StoreError(f"cannot delete collection {name!r} at "
                                     f"{self.location}: {exc}") from exc
            self._chunks = self._articles = None

    # --- reading -------------------------------------------------------------------------

    def query(self, embedding: np.ndarray, k: int, where: dict[str, Any] | None = None,
              ids: Sequence[str] | None = None) -> list[ChunkHit]:
        """The k chunks nearest to `embedding` among visible articles, best first; `where`
        (metadata) and `ids` (chunk ids) restrict the search inside Chroma."""
        if k < 1 or (ids is not None and not ids):
            return []
        result = self._read("query failed", lambda collections: collections[0].query(
            query_embeddings=[np.asarray(embedding).tolist()], n_results=k, where=where,
            ids=list(ids) if ids is not None else None,
            include=["documents", "metadatas", "distances"]))
        if result is None:
            return []
        rows = list(zip(result["ids"][0], result["documents"][0], result["metadatas"][0],
                        result["distances"][0], strict=True))
        visible = self.visible_ids({m["article_id"] for _, _, m, _ in rows})
        return [ChunkHit(_chunk_from(cid, doc, meta), _article_from(meta, meta["article_id"]),
                         1.0 - float(dist))
                for cid, doc, meta, dist in rows if meta["article_id"] in visible]

    def set_search_ef(self, ef_search: int) -> None:
        """Set the chunk index's HNSW `ef_search` (a mutable setting kept in the store):
        larger is slower and closer to exact nearest neighbours."""
        collections = self._collections()
        if collections is None:
            return
        try:
            collections[0].modify(configuration={"hnsw": {"ef_search": int(ef_search)}})
        except chroma_errors() as exc:
            raise StoreError(f"cannot configure collection {self.settings.collection!r} "
                             f"at {self.location}: {exc}") from exc

    def article_rows(self) -> list[ArticleRow]:
        """Id, source, publication day and a metadata stamp of every visible article (what
        filters and the in-memory search need; the stamp changes with its metadata)."""
        got = self._read("cannot list articles", lambda collections: collections[1].get(
            include=["metadatas"]))
        if got is None:
            return []
        return [ArticleRow(aid, str(meta.get("source") or ""),
                           int(meta.get("published_day") or 0), _metadata_stamp(meta))
                for aid, meta in zip(got["ids"], got["metadatas"], strict=True)]

    def chunk_articles(self) -> list[tuple[str, str]]:
        """(chunk id, article id) of every stored chunk, visible or not (for filters); ids
        only are read, the article id is the chunk id's prefix."""
        got = self._read("cannot list chunks", lambda collections: collections[0].get(
            include=[]))
        return [] if got is None else [(cid, Chunk.article_id_of(cid)) for cid in got["ids"]]

    def _chunk_batches(self, chunk_ids: Sequence[str], include: list[str],
                       batch: int) -> Iterator[dict[str, Any]]:
        """Chroma's `get` of those `chunk_ids` still stored, one read per `batch`."""
        for first in range(0, len(chunk_ids), batch):
            wanted = list(chunk_ids[first:first + batch])
            got = self._read("cannot read chunks", lambda collections, wanted=wanted:
                             collections[0].get(ids=wanted, include=include))
            if got is None:
                return
            yield got

    def chunk_vectors(self, chunk_ids: Sequence[str], batch: int = 5000
                      ) -> dict[str, np.ndarray]:
        """The stored embeddings of those `chunk_ids` still stored (one read per `batch`)."""
        found: dict[str, np.ndarray] = {}
        for got in self._chunk_batches(chunk_ids, ["embeddings"], batch):
            found.update(zip(got["ids"], np.asarray(got["embeddings"], dtype=np.float32),
                             strict=True))
        return found

    def chunk_records(self, chunk_ids: Sequence[str], batch: int = 5000
                      ) -> dict[str, StoredChunk]:
        """Those of `chunk_ids` still stored: text, article metadata and embedding (one read
        per `batch`; one ArticleMeta per article, shared by its chunks)."""
        found: dict[str, StoredChunk] = {}
        articles: dict[str, ArticleMeta] = {}
        for got in self._chunk_batches(chunk_ids, ["embeddings", "documents", "metadatas"],
                                       batch):
            for cid, doc, meta, vector in zip(got["ids"], got["documents"], got["metadatas"],
                                              np.asarray(got["embeddings"], dtype=np.float32),
                                              strict=True):
                aid = meta["article_id"]
                article = articles.get(aid)
                if article is None:
                    article = articles[aid] = _article_from(meta, aid)
                found[cid] = StoredChunk(ChunkHit(_chunk_from(cid, doc, meta), article, 0.0),
                                         vector)
        return found

    def visible_ids(self, article_ids: set[str]) -> set[str]:
        """Those of `article_ids` whose article record exists (fully written)."""
        if not article_ids:
            return set()
        got = self._read("cannot read articles", lambda collections: collections[1].get(
            ids=sorted(article_ids), include=[]))
        return set(got["ids"]) if got is not None else set()

    def get_chunks(self, chunk_ids: Sequence[str],
                   visible: Collection[str] | None = None) -> list[ChunkHit]:
        """Chunks by id (in the given order, missing or invisible ones left out). `visible`:
        the ids of the visible articles when the caller knows them (one read fewer)."""
        if not chunk_ids:
            return []
        got = self._read("cannot read chunks", lambda collections: collections[0].get(
            ids=list(chunk_ids), include=["documents", "metadatas"]))
        if got is None:
            return []
        by_id = {cid: (doc, meta) for cid, doc, meta
                 in zip(got["ids"], got["documents"], got["metadatas"], strict=True)}
        if visible is None:
            visible = self.visible_ids({meta["article_id"] for _, meta in by_id.values()})
        out = []
        for cid in chunk_ids:
            if cid in by_id and by_id[cid][1]["article_id"] in visible:
                doc, meta = by_id[cid]
                out.append(ChunkHit(_chunk_from(cid, doc, meta),
                                    _article_from(meta, meta["article_id"]), 0.0))
        return out

    def get_article(self, article_id: str) -> Article | None:
        got = self._read(f"cannot read article {article_id}", lambda collections: collections[
            1].get(ids=[article_id], include=["documents", "metadatas"]))
        if got is None or not got["ids"]:
            return None
        meta = got["metadatas"][0]
        return Article(body=got["documents"][0],
                       **{name: str(meta.get(name) or "") for name in _META_FIELDS})

    def list_articles(self, where: dict[str, Any] | None = None) -> list[tuple[ArticleMeta, int]]:
        """(article metadata, chunk count) for every visible article, newest first."""
        got = self._read("cannot list articles", lambda collections: collections[1].get(
            where=where, include=["metadatas"]))
        if got is None:
            return []
        rows = [(_article_from(meta, aid), int(meta.get("chunk_count") or 0))
                for aid, meta in zip(got["ids"], got["metadatas"], strict=True)]
        rows.sort(key=lambda row: (row[0].published, row[0].title), reverse=True)
        return rows

    def iter_chunks(self, batch: int = 2000) -> Iterator[Chunk]:
        """Every chunk of every visible article (for rebuilding the keyword index)."""
        collections = self._collections()
        if collections is None:
            return
        chunk_col, article_col = collections
        visible = set(article_col.get(include=[])["ids"])
        offset = 0
        while True:
            got = chunk_col.get(include=["documents", "metadatas"], limit=batch, offset=offset)
            if not got["ids"]:
                return
            for cid, doc, meta in zip(got["ids"], got["documents"], got["metadatas"],
                                      strict=True):
                if meta["article_id"] in visible:
                    yield _chunk_from(cid, doc, meta)
            offset += len(got["ids"])

    def chunks_of_articles(self, article_ids: Sequence[str], batch: int = 100
                           ) -> list[ChunkHit]:
        """Every stored chunk of these articles with its article's metadata, a few requests
        for many articles (for catching up a keyword index; visibility is the caller's)."""
        ids = list(article_ids)
        hits: list[ChunkHit] = []
        for begin in range(0, len(ids), batch):
            wanted = ids[begin:begin + batch]
            got = self._read("cannot read chunks", lambda collections, wanted=wanted:
                             collections[0].get(where={"article_id": {"$in": wanted}},
                                                include=["documents", "metadatas"]))
            if got is None:
                return []
            hits += [ChunkHit(_chunk_from(cid, doc, meta),
                              _article_from(meta, meta["article_id"]), 0.0)
                     for cid, doc, meta
                     in zip(got["ids"], got["documents"], got["metadatas"], strict=True)]
        return hits

    def sample_chunks(self, limit: int) -> tuple[list[str], np.ndarray]:
        """Up to `limit` stored chunk texts and their embeddings (one row per text).

        Real material for measurements (the scale benchmark); not filtered by visibility.
        """
        got = self._read("cannot read chunks", lambda collections: collections[0].get(
            include=["embeddings", "documents"], limit=limit)) if limit >= 1 else None
        if got is None:
            return [], np.zeros((0, 0), dtype=np.float32)
        return list(got["documents"]), np.asarray(got["embeddings"], dtype=np.float32)

    def count(self) -> tuple[int, int]:
        """(articles, chunks) currently stored."""
        counts = self._read("cannot count records", lambda collections: (
            collections[1].count(), collections[0].count()))
        return (0, 0) if counts is None else counts

    def article_ids(self) -> set[str]:
        """Ids of every article record (visible articles)."""
        got = self._read("cannot list articles", lambda collections: collections[1].get(
            include=[]))
        return set() if got is None else set(got["ids"])

    def sweep_orphan_chunks(self, batch: int = 5000) -> int:
        """Delete chunks whose article has no record (left by an interrupted write)."""
        collections = self._collections()
        if collections is None:
            return 0
        chunk_col, article_col = collections
        visible = set(article_col.get(include=[])["ids"])
        orphans: list[str] = []
        offset = 0
        while True:
            got = chunk_col.get(include=["metadatas"], limit=batch, offset=offset)
            if not got["ids"]:
                break
            orphans += [cid for cid, meta in zip(got["ids"], got["metadatas"], strict=True)
                        if meta.get("article_id") not in visible]
            offset += len(got["ids"])
        if orphans:
            self.mark_changed()
        self._delete_ids(chunk_col, orphans, batch)
        return len(orphans)

    def sources(self) -> list[str]:
        return sorted({meta.source for meta, _ in self.list_articles() if meta.source})

    # --- quotes (a field of the article records) --------------------------------------------

    def quote_records(self) -> list[tuple[ArticleMeta, tuple[Quote, ...] | None]]:
        """(article metadata, its stored quotes or None when not extracted) of every visible
        article: one read of the article records' metadata, no bodies."""
        got = self._read("cannot read article records", lambda collections: collections[1].get(
            include=["metadatas"]))
        if got is None:
            return []
        return [(_article_from(meta, aid), stored_quotes(meta))
                for aid, meta in zip(got["ids"], got["metadatas"], strict=True)]

    def get_articles(self, article_ids: Sequence[str]) -> list[Article]:
        """The visible articles with these ids, bodies included (for re-extracting quotes)."""
        if not article_ids:
            return []
        got = self._read("cannot read articles", lambda collections: collections[1].get(
            ids=list(article_ids), include=["documents", "metadatas"]))
        if got is None:
            return []
        return [Article(body=body, **{name: str(meta.get(name) or "") for name in _META_FIELDS})
                for body, meta in zip(got["documents"], got["metadatas"], strict=True)]

    def set_quotes(self, quotes: Mapping[str, Sequence[Quote]], batch: int = 500) -> None:
        """Replace the stored quotes of these articles (article id -> quotes) in their records,
        leaving chunks, bodies and embeddings as they are; absent articles are skipped."""
        collections = self._collections()
        if collections is None or not quotes:
            return
        article_col = collections[1]
        self.mark_changed()
        ids = sorted(quotes)
        try:
            for begin in range(0, len(ids), batch):
                got = article_col.get(ids=ids[begin:begin + batch], include=["metadatas"])
                if not got["ids"]:
                    continue
                metadatas = [{**meta, QUOTES_KEY: quotes_json(quotes[aid])}
                             for aid, meta in zip(got["ids"], got["metadatas"], strict=True)]
                article_col.update(ids=list(got["ids"]), metadatas=metadatas)
        except chroma_errors() as exc:
            raise StoreError(f"cannot write quotes at {self.location}: {exc}") from exc

    def article_chunks(self, article_id: str) -> list[Chunk]:
        """The stored chunks of one visible article, in order (for citing a quote's span)."""
        if not self.visible_ids({article_id}):
            return []
        got = self._read(f"cannot read chunks of {article_id}", lambda collections: collections[
            0].get(where={"article_id": article_id}, include=["documents", "metadatas"]))
        if got is None:
            return []
        chunks = [_chunk_from(cid, doc, meta) for cid, doc, meta
                  in zip(got["ids"], got["documents"], got["metadatas"], strict=True)]
        return sorted(chunks, key=lambda chunk: chunk.ordinal)


def _check_items(items: Sequence[ArticleItem]) -> None:
    for article, chunks, embeddings in items:
        if len(chunks) != len(embeddings) or not chunks:
            raise StoreError(f"article {article.id}: {len(chunks)} chunks but "
                             f"{len(embeddings)} embeddings")
