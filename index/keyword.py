"""BM25 keyword index over the same chunks as Chroma, kept incrementally in SQLite.

One SQLite file under `settings.keyword_dir` holds, per chunk, its analysed terms (term ids and
their counts) and length, plus the vocabulary, per-article titles and chunk counts, and the
store write stamp (`Store.fingerprint()`) it was last brought in step with. Adding, replacing
or pruning articles writes only their chunks, in one transaction: a crash mid-update leaves
the previous state, and the next `sync` (a diff of article ids against the store) repairs it.

Searching scores in numpy with exactly bm25s's default BM25 (method "lucene": k1 1.5, b 0.75,
idf log(1 + (N - df + 0.5) / (df + 0.5)), float32 per-term scores summed in query order), so
rankings equal a from-scratch bm25s index over the same chunks. A reader keeps the postings in
memory as a few sorted segments and applies other processes' updates as deltas (new rows,
tombstones of removed ones), so picking up one new article costs its chunks, not the index.
"""

from __future__ import annotations

import math
import os
import shutil
import sqlite3
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from index.errors import IndexingError
from index.records import Chunk
from index.text import keyword_words, stem_words

if TYPE_CHECKING:
    from index.settings import Settings
    from index.store import Store

FORMAT_VERSION = "2"
FILE_NAME = "keyword.sqlite3"
#: bm25s's defaults (BM25(), method "lucene"), which the index was built with before.
K1 = 1.5
B = 0.75
#: Tombstones kept for readers' deltas, in index versions; older readers reload in full.
KEEP_TOMBSTONE_VERSIONS = 1000
_BUSY_TIMEOUT_S = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS terms (id INTEGER PRIMARY KEY, term TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS articles (
    article_id TEXT PRIMARY KEY, title TEXT NOT NULL, chunk_count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS chunks (
    doc INTEGER PRIMARY KEY AUTOINCREMENT, chunk_id TEXT NOT NULL UNIQUE,
    article_id TEXT NOT NULL, length INTEGER NOT NULL, term_ids BLOB NOT NULL,
    tfs BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_by_article ON chunks (article_id);
CREATE TABLE IF NOT EXISTS removed (doc INTEGER PRIMARY KEY, version INTEGER NOT NULL);
"""


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


def index_path(directory: str | os.PathLike[str]) -> Path:
    return Path(directory) / FILE_NAME


def synced_stamp(directory: str | os.PathLike[str]) -> str:
    """The store fingerprint the index in `directory` was last brought in step with ("" when
    there is no readable index). Cheap: one read, no store access."""
    path = index_path(directory)
    if not path.is_file():
        return ""
    try:
        with closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                     timeout=_BUSY_TIMEOUT_S)) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = 'synced'").fetchone()
            return str(row[0]) if row else ""
    except sqlite3.Error:  # missing tables, a foreign or corrupt file: not in step
        return ""


def in_step(directory: str | os.PathLike[str], fingerprint: str) -> bool:
    """Whether the index in `directory` holds exactly the store with this fingerprint."""
    return bool(fingerprint) and synced_stamp(directory) == fingerprint


# --- the in-memory view -----------------------------------------------------------------------

@dataclass(frozen=True)
class _Segment:
    """Postings sorted by term: term id, document position, term frequency."""

    terms: np.ndarray  # int32, sorted
    docs: np.ndarray  # int64 positions into the view's per-document arrays
    tfs: np.ndarray  # float32

    def __len__(self) -> int:
        return int(self.terms.size)

    def postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        low, high = np.searchsorted(self.terms, np.array([term, term + 1], dtype=np.int32))
        return self.docs[low:high], self.tfs[low:high]

    @staticmethod
    def merge(parts: Sequence[_Segment], alive: np.ndarray) -> _Segment:
        """One segment of the live postings of `parts`."""
        terms = np.concatenate([p.terms for p in parts])
        docs = np.concatenate([p.docs for p in parts])
        tfs = np.concatenate([p.tfs for p in parts])
        keep = alive[docs]
        terms, docs, tfs = terms[keep], docs[keep], tfs[keep]
        order = np.argsort(terms, kind="stable")
        return _Segment(terms[order], docs[order], tfs[order])


@dataclass(frozen=True)
class _Row:
    """One chunk row as stored."""

    doc: int
    chunk_id: str
    article_id: str
    length: int
    term_ids: bytes
    tfs: bytes


class _View:
    """What searching needs, in memory: per-document arrays and posting segments."""

    def __init__(self) -> None:
        self.rowids: list[int] = []
        self.chunk_ids: list[str] = []
        self.article_number: dict[str, int] = {}
        self.doc_article = np.zeros(0, dtype=np.int64)
        self.lengths = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.position: dict[int, int] = {}  # row id -> position
        self.segments: list[_Segment] = []
        self.live = 0
        self.total_length = 0
        self.version = 0
        self.max_doc = 0

    def add(self, rows: Sequence[_Row]) -> None:
        """Append documents and their postings (a new segment, merged when it has grown)."""
        if not rows:
            return
        first = len(self.rowids)
        numbers = [self.article_number.setdefault(r.article_id, len(self.article_number))
                   for r in rows]
        self.rowids += [r.doc for r in rows]
        self.chunk_ids += [r.chunk_id for r in rows]
        self.position.update((r.doc, first + i) for i, r in enumerate(rows))
        lengths = np.array([r.length for r in rows], dtype=np.int64)
        self.doc_article = np.concatenate([self.doc_article, np.array(numbers, dtype=np.int64)])
        self.lengths = np.concatenate([self.lengths, lengths])
        self.alive = np.concatenate([self.alive, np.ones(len(rows), dtype=bool)])
        self.live += len(rows)
        self.total_length += int(lengths.sum())
        self.max_doc = max(self.max_doc, max(r.doc for r in rows))
        self.segments.append(_segment_of(rows, first))
        self._merge_small()

    def remove(self, rowids: Iterable[int]) -> None:
        """Mark documents dead (their postings go at the next merge)."""
        for rowid in rowids:
            position = self.position.pop(rowid, None)
            if position is not None and self.alive[position]:
                self.alive[position] = False
                self.live -= 1
                self.total_length -= int(self.lengths[position])

    def mostly_dead(self) -> bool:
        """Whether removed documents outnumber live ones (then a full reload compacts)."""
        return len(self.rowids) > 2 * max(self.live, 1000)

    def _merge_small(self) -> None:
        """Keep segment sizes geometric: merge the newest into its elder while the elder is
        at most twice its size (a few segments, each posting moved O(log n) times)."""
        segments = self.segments
        while len(segments) >= 2 and len(segments[-2]) <= 2 * len(segments[-1]):
            segments[-2:] = [_Segment.merge(segments[-2:], self.alive)]

    def scores(self, term_ids: Sequence[int]) -> np.ndarray:
        """bm25s's BM25 ("lucene") score of every document position for these query terms."""
        scores = np.zeros(len(self.rowids), dtype=np.float32)
        if self.live == 0:
            return scores
        live = self.live
        average = np.float64(self.total_length) / np.float64(live)
        for term in term_ids:
            docs, tfs = self._postings(term)
            if docs.size == 0:
                continue
            idf = np.float32(math.log(1 + (live - docs.size + 0.5) / (docs.size + 0.5)))
            tfc = tfs / (K1 * ((1 - B) + B * self.lengths[docs] / average) + tfs)
            scores[docs] += (idf * tfc).astype(np.float32)
        return scores

    def _postings(self, term: int) -> tuple[np.ndarray, np.ndarray]:
        """The live postings of a term across segments."""
        parts = [segment.postings(term) for segment in self.segments]
        if len(parts) == 1:
            docs, tfs = parts[0]
        else:
            docs = np.concatenate([d for d, _ in parts]) if parts else np.zeros(0, np.int64)
            tfs = np.concatenate([t for _, t in parts]) if parts else np.zeros(0, np.float32)
        if self.live == len(self.rowids):
            return docs, tfs  # nothing removed: every posting is live
        keep = self.alive[docs]
        return docs[keep], tfs[keep]


def _segment_of(rows: Sequence[_Row], first: int) -> _Segment:
    term_parts = [np.frombuffer(r.term_ids, dtype=np.int32) for r in rows]
    counts = [part.size for part in term_parts]
    terms = np.concatenate(term_parts) if term_parts else np.zeros(0, np.int32)
    tfs = np.concatenate([np.frombuffer(r.tfs, dtype=np.int32) for r in rows]).astype(
        np.float32)
    docs = np.repeat(np.arange(first, first + len(rows), dtype=np.int64), counts)
    order = np.argsort(terms, kind="stable")
    return _Segment(terms[order], docs[order], tfs[order])


# --- the index ----------------------------------------------------------------------------------

class KeywordIndex:
    """The SQLite keyword index of one data folder; search returns (chunk_id, score) best first.

    Cheap to construct (opens the file, creating it when missing); the postings load on first
    search. Thread-safe: one lock guards the connection and the in-memory view.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.path = index_path(directory)
        self._lock = threading.RLock()
        self._sync_lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._inode = 0
        self._view: _View | None = None

    # --- the connection -------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        """The open connection; reopened when the file was replaced (a rebuild)."""
        inode = _inode(self.path)
        if self._conn is not None and inode == self._inode:
            return self._conn
        self.close()
        fresh = not self.path.exists()
        self.directory.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=_BUSY_TIMEOUT_S, isolation_level=None,
                               check_same_thread=False)
        try:
            _prepare(conn, self.path)
        except BaseException:
            conn.close()
            raise
        if fresh:
            _remove_old_generations(self.directory)
        self._conn, self._inode, self._view = conn, _inode(self.path), None
        return conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                with suppress(sqlite3.Error):
                    self._conn.close()
            self._conn, self._view = None, None

    # --- reading ----------------------------------------------------------------------------

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> KeywordIndex | None:
        """The index in `directory`, loaded; None when there is none or it cannot be read."""
        if not index_path(directory).is_file():
            return None
        index = cls(directory)
        try:
            index.refresh()
        except (sqlite3.Error, IndexingError):
            index.close()
            return None
        return index

    @property
    def synced(self) -> str:
        """The store fingerprint this index was last brought in step with."""
        with self._lock:
            return _meta(self._connection(), "synced") or ""

    def refresh(self) -> bool:
        """Catch up with what other writers committed since the last look; True if anything
        changed. New rows and tombstones are applied as deltas; a full reload only when this
        view is too old for the tombstones kept (or the file was replaced)."""
        with self._lock:
            conn = self._connection()
            view = self._view
            with _transaction(conn, write=False):
                version = int(_meta(conn, "version") or 0)
                if view is not None and view.version == version:
                    return False
                if view is None or view.version < int(_meta(conn, "floor") or 0) \
                        or view.version > version or view.mostly_dead():
                    view = _View()
                    view.add(_rows(conn, "SELECT * FROM chunks ORDER BY doc", ()))
                else:
                    view.remove(doc for (doc,) in conn.execute(
                        "SELECT doc FROM removed WHERE version > ?", (view.version,)))
                    view.add(_rows(conn, "SELECT * FROM chunks WHERE doc > ? ORDER BY doc",
                                   (view.max_doc,)))
                view.version = version
            self._view = view
            return True

    def _current_view(self) -> _View:
        with self._lock:
            if self._view is None:
                self.refresh()
            assert self._view is not None
            return self._view

    def __len__(self) -> int:
        return self._current_view().live

    @property
    def chunk_ids(self) -> list[str]:
        """Ids of the chunks indexed now (in insertion order)."""
        with self._lock:
            view = self._current_view()
            return [cid for cid, alive in zip(view.chunk_ids, view.alive, strict=True) if alive]

    def articles(self) -> dict[str, tuple[str, int]]:
        """article id -> (title, chunk count) of the articles indexed now."""
        with self._lock:
            return {aid: (title, int(count)) for aid, title, count in self._connection().execute(
                "SELECT article_id, title, chunk_count FROM articles")}

    def search(self, query: str, k: int,
               allowed_article_ids: set[str] | None = None) -> list[tuple[str, float]]:
        """(chunk_id, BM25 score) of the k best chunks with a positive score, best first.

        `allowed_article_ids` restricts the candidates before the top k are taken.
        """
        if k < 1 or not query.strip():
            return []
        with self._lock:
            view = self._current_view()
            term_ids = self._term_ids(analyzer()(query))
            if not term_ids:
                return []
            scores = view.scores(term_ids)
            if allowed_article_ids is not None:
                allowed = [view.article_number[a] for a in allowed_article_ids
                           if a in view.article_number]
                scores = np.where(np.isin(view.doc_article, allowed), scores, 0.0)
            chunk_ids = view.chunk_ids
        return _top(scores, k, chunk_ids)

    def _term_ids(self, tokens: list[str]) -> list[int]:
        """Ids of the query's known terms, in query order with repeats (as bm25s counts)."""
        if not tokens:
            return []
        distinct = sorted(set(tokens))
        marks = ",".join("?" * len(distinct))
        known = dict(self._connection().execute(
            f"SELECT term, id FROM terms WHERE term IN ({marks})", distinct))
        return [known[t] for t in tokens if t in known]

    # --- writing ----------------------------------------------------------------------------

    def apply(self, added: Sequence[tuple[str, Sequence[Chunk]]], removed: Iterable[str],
              synced: str) -> None:
        """In one transaction: drop the chunks of `removed` articles, add (title, chunks) of
        new ones (an article added again replaces its chunks) and record `synced`."""
        analyze = analyzer()
        documents = [(title, chunk, Counter(analyze(keyword_text(title, chunk))))
                     for title, chunks in added for chunk in chunks]
        with self._lock:
            conn = self._connection()
            with _transaction(conn):
                version = int(_meta(conn, "version") or 0) + 1
                gone = set(removed) | {chunk.article_id for _, chunk, _ in documents}
                _delete_articles(conn, sorted(gone), version)
                _insert_documents(conn, documents)
                conn.executemany("INSERT INTO articles VALUES (?, ?, ?)",
                                 [(chunks[0].article_id, title, len(chunks))
                                  for title, chunks in added if chunks])
                _set_meta(conn, version=str(version), synced=synced)
                _prune_tombstones(conn, version)
            if self._view is not None:
                self.refresh()  # a loaded view follows; an unloaded one loads on first search

    def sync(self, store: Store) -> bool:
        """Bring this index in step with the store; True if anything changed. Every stored
        article's id, title and chunk count are compared with this index's (one read of the
        article records): gone ones are dropped, new ones and ones whose title or chunk count
        differ (deleted and stored again under the same id, re-titled or re-chunked) have
        their chunks fetched and added again. The stamp is read before the store, so a write
        meanwhile moves it again and is caught up next time."""
        fingerprint = store.fingerprint()
        listed = {meta.id: (meta.title, count) for meta, count in store.list_articles()}
        own = self.articles()
        differ = {aid for aid, seen in own.items() if listed.get(aid) != seen}
        fresh = (set(listed) - set(own)) | (differ & set(listed))
        titles = {aid: title for aid, (title, _) in listed.items()}
        changed = self._replace(store, sorted(fresh), differ, fingerprint, titles)
        if not changed and self.synced != fingerprint:
            self.apply([], [], fingerprint)
        return changed

    def _replace(self, store: Store, new: list[str], gone: set[str], fingerprint: str,
                 titles: Mapping[str, str]) -> bool:
        """Drop `gone` articles and add `new` ones with their chunks read from the store."""
        if not new and not gone:
            return False
        self.apply(_fetch(store, new, titles), gone, fingerprint)
        return True

    def catch_up(self, store: Store) -> bool:
        """Follow the store: sync when its write stamp moved (another process or machine
        wrote to it), else pick up what other writers of this file committed. One sync at a
        time per index; searches go on meanwhile."""
        fingerprint = store.fingerprint()
        if fingerprint != self.synced:
            with self._sync_lock:
                if fingerprint != self.synced:  # not caught up by another thread meanwhile
                    return self.sync(store)
        return self.refresh()


#: Above this many new articles one pass over the store beats lookups by article id.
BULK_FETCH_ARTICLES = 200


def _fetch(store: Store, article_ids: list[str], listed_titles: Mapping[str, str]
           ) -> list[tuple[str, list[Chunk]]]:
    """(title, chunks in order) of these stored articles (`listed_titles`: the titles of the
    article records, as just listed)."""
    found: dict[str, list[Chunk]] = {}
    titles: dict[str, str] = {}
    if len(article_ids) > BULK_FETCH_ARTICLES:
        wanted = set(article_ids)
        titles = {aid: listed_titles.get(aid, "") for aid in wanted}
        for chunk in store.iter_chunks():
            if chunk.article_id in wanted:
                found.setdefault(chunk.article_id, []).append(chunk)
    else:
        for hit in store.chunks_of_articles(article_ids):
            found.setdefault(hit.chunk.article_id, []).append(hit.chunk)
            titles[hit.chunk.article_id] = hit.article.title
    return [(titles.get(aid, ""), sorted(chunks, key=lambda c: c.ordinal))
            for aid, chunks in found.items()]


# --- SQLite steps -------------------------------------------------------------------------------

def _prepare(conn: sqlite3.Connection, path: Path) -> None:
    """WAL mode (readers never block the writer), the tables, and the format check."""
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    with _transaction(conn):
        for statement in filter(str.strip, _SCHEMA.split(";")):
            conn.execute(statement)
        found = _meta(conn, "format")
        if found is None:
            conn.execute("INSERT INTO meta VALUES ('format', ?), ('version', '0'), "
                         "('floor', '0'), ('synced', '')", (FORMAT_VERSION,))
        elif found != FORMAT_VERSION:
            raise IndexingError(f"keyword index {path} has format {found}, expected "
                                f"{FORMAT_VERSION}; delete it and it is rebuilt")


@contextmanager
def _transaction(conn: sqlite3.Connection, *, write: bool = True
                 ) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE (write) or BEGIN (read) ... COMMIT, rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
    try:
        yield conn
    except BaseException:
        with suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else str(row[0])


def _set_meta(conn: sqlite3.Connection, **values: str) -> None:
    conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values.items())


def _rows(conn: sqlite3.Connection, sql: str, parameters: tuple[int, ...]) -> list[_Row]:
    return [_Row(*row) for row in conn.execute(sql, parameters)]


def _delete_articles(conn: sqlite3.Connection, article_ids: list[str], version: int) -> None:
    """Remove these articles' chunks (leaving tombstones for readers) and records."""
    for begin in range(0, len(article_ids), 500):
        part = article_ids[begin:begin + 500]
        marks = ",".join("?" * len(part))
        docs = [doc for (doc,) in conn.execute(
            f"SELECT doc FROM chunks WHERE article_id IN ({marks})", part)]
        conn.executemany("INSERT OR REPLACE INTO removed VALUES (?, ?)",
                         [(doc, version) for doc in docs])
        conn.execute(f"DELETE FROM chunks WHERE article_id IN ({marks})", part)
        conn.execute(f"DELETE FROM articles WHERE article_id IN ({marks})", part)


def _insert_documents(conn: sqlite3.Connection,
                      documents: list[tuple[str, Chunk, Counter[str]]]) -> None:
    """Insert chunk rows: sorted term ids with their counts, and the length."""
    ids = _term_ids_for(conn, {term for _, _, counts in documents for term in counts})
    rows = []
    for _, chunk, counts in documents:
        pairs = sorted((ids[term], count) for term, count in counts.items())
        term_ids = np.array([t for t, _ in pairs], dtype=np.int32)
        tfs = np.array([c for _, c in pairs], dtype=np.int32)
        rows.append((chunk.id, chunk.article_id, sum(counts.values()), term_ids.tobytes(),
                     tfs.tobytes()))
    conn.executemany("INSERT INTO chunks (chunk_id, article_id, length, term_ids, tfs) "
                     "VALUES (?, ?, ?, ?, ?)", rows)


def _term_ids_for(conn: sqlite3.Connection, terms: set[str]) -> dict[str, int]:
    """The ids of these terms, adding the ones not in the vocabulary yet."""
    wanted = sorted(terms)
    conn.executemany("INSERT OR IGNORE INTO terms (term) VALUES (?)", ((t,) for t in wanted))
    ids: dict[str, int] = {}
    for begin in range(0, len(wanted), 500):
        part = wanted[begin:begin + 500]
        ids.update(conn.execute(f"SELECT term, id FROM terms WHERE term IN "
                                f"({','.join('?' * len(part))})", part))
    return ids


def _prune_tombstones(conn: sqlite3.Connection, version: int) -> None:
    floor = version - KEEP_TOMBSTONE_VERSIONS
    if floor > int(_meta(conn, "floor") or 0):
        conn.execute("DELETE FROM removed WHERE version <= ?", (floor,))
        _set_meta(conn, floor=str(floor))


def _inode(path: Path) -> int:
    try:
        return path.stat().st_ino
    except OSError:
        return 0


def _remove_old_generations(directory: Path) -> None:
    """Delete the generation folders of the bm25s index this file replaces."""
    for old in directory.glob("g-*"):
        shutil.rmtree(old, ignore_errors=True)
    with suppress(OSError):
        (directory / "CURRENT").unlink()


def _top(scores: np.ndarray, k: int, chunk_ids: list[str]) -> list[tuple[str, float]]:
    """The k best positive scores, ties broken by chunk id (also at the k-th place: every
    chunk tied with the k-th score competes, so the cut does not depend on storage order)."""
    candidates = np.flatnonzero(scores > 0)
    if candidates.size == 0:
        return []
    if candidates.size > k:
        kth = np.partition(-scores[candidates], k - 1)[k - 1]
        candidates = candidates[-scores[candidates] <= kth]
    order = sorted(candidates.tolist(), key=lambda i: (-float(scores[i]), chunk_ids[i]))[:k]
    return [(chunk_ids[i], float(scores[i])) for i in order]


# --- with the store -----------------------------------------------------------------------------

def build(directory: str | os.PathLike[str], chunks: Iterable[Chunk],
          titles: Mapping[str, str], synced: str = "") -> KeywordIndex:
    """A fresh index in `directory` over these chunks (titles: article id -> title)."""
    shutil.rmtree(directory, ignore_errors=True)
    index = KeywordIndex(directory)
    by_article: dict[str, list[Chunk]] = {}
    for chunk in chunks:
        by_article.setdefault(chunk.article_id, []).append(chunk)
    index.apply([(titles.get(aid, ""), group) for aid, group in by_article.items()], (),
                synced)
    return index


def open_index(directory: str | os.PathLike[str]) -> KeywordIndex:
    """The index in `directory`; an unreadable or foreign file is deleted and started afresh
    (empty, never synced: the next `sync` fills it from the store)."""
    index = KeywordIndex(directory)
    try:
        _ = index.synced
    except (sqlite3.DatabaseError, IndexingError):
        index.close()
        for suffix in ("", "-wal", "-shm"):
            with suppress(FileNotFoundError):
                Path(f"{index.path}{suffix}").unlink()
        index = KeywordIndex(directory)
    return index


def load_or_build(settings: Settings, store: Store) -> KeywordIndex:
    """The data folder's keyword index, brought in step with the store when it is not."""
    index = open_index(settings.keyword_dir)
    if not index.synced or index.synced != store.fingerprint():
        index.sync(store)
    return index
