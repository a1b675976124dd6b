"""Incremental indexing: files in, Chroma store + keyword index + manifest out.

`update(paths, settings)` reads only files that are new or changed since the last run (by
mtime and size in the manifest), embeds only articles whose content is not stored yet, and
removes articles no key references any more. Re-running after a crash converges to the same
store: chunk ids are deterministic, the manifest is written only after an article is stored,
and every run reconciles the manifest with the store.

Pruning (files that disappeared): by default (`prune=None`) a file indexed earlier from a
folder or glob named in this run, and no longer found there, is removed from the index;
`prune=True` removes every indexed file not found among this run's inputs (the index mirrors
the inputs); `prune=False` never removes anything.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from index.errors import IndexingError, IndexLockedError
from index.records import Article, Chunk
from index.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator

    from index.embedding import Embedder
    from index.manifest import Manifest
    from index.sources import InputFile, SourceResult
    from index.store import Store

ProgressCallback = Callable[[str, int, int], None]
"""Called as progress(stage, done, total); stages: scan, read, chunk, embed, cleanup, keyword."""

#: Chunks embedded together (across articles) before they are written and recorded.
EMBED_GROUP = 1024
#: Bump when chunking or the embedded text changes: stored chunks then get rewritten.
CHUNKER_VERSION = "1"
GENERATION_FILE = "generation.json"


@dataclass(frozen=True)
class IndexReport:
    """What one indexing run did. Counts are keys (URL or path of an article).

    indexed: new keys; updated: keys whose text changed; unchanged: keys seen with the same
    text (including unchanged files not re-read); duplicates: new keys whose text was already
    stored under another key (stored once); removed: keys dropped (pruned or gone from a file);
    skipped: inputs or records that could not be read (see errors).
    """

    indexed: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    removed: int = 0
    duplicates: int = 0
    chunks_added: int = 0
    articles_deleted: int = 0
    articles: int = 0
    chunks: int = 0
    errors: tuple[dict[str, str], ...] = ()
    seconds: float = 0.0
    model_loaded: bool = False

    @property
    def ok(self) -> bool:
        """False when there were errors and none of this run's inputs is indexed."""
        return not self.errors or (self.indexed + self.updated + self.unchanged) > 0

    @property
    def changed(self) -> bool:
        return bool(self.indexed or self.updated or self.removed or self.articles_deleted)

    def summary(self) -> str:
        """One line for people: what changed, what was skipped, how big the index is now."""
        return (f"indexed {self.indexed}, updated {self.updated}, unchanged {self.unchanged}, "
                f"skipped {self.skipped}, removed {self.removed} "
                f"({self.chunks_added} new passages; index now holds {self.articles} articles, "
                f"{self.chunks} passages; {self.seconds:.1f} s)")

    def to_dict(self) -> dict[str, Any]:
        return {"indexed": self.indexed, "updated": self.updated, "unchanged": self.unchanged,
                "skipped": self.skipped, "removed": self.removed,
                "duplicates": self.duplicates, "chunks_added": self.chunks_added,
                "articles_deleted": self.articles_deleted, "articles": self.articles,
                "chunks": self.chunks, "errors": [dict(e) for e in self.errors],
                "seconds": round(self.seconds, 3), "model_loaded": self.model_loaded,
                "ok": self.ok}


@dataclass
class _Counts:
    indexed: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    duplicates: int = 0
    chunks_added: int = 0
    articles_deleted: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)


# --- locking and generation stamp -----------------------------------------------------------

@contextmanager
def index_lock(settings: Settings, timeout: float = 0.0) -> Iterator[None]:
    """Hold the data folder's indexing lock; IndexLockedError when another indexer has it."""
    from filelock import FileLock, Timeout

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(settings.lock_path), timeout=max(0.0, timeout), thread_local=False,
                    is_singleton=False)
    owner_file = settings.lock_path.with_name(settings.lock_path.name + ".owner")
    try:
        lock.acquire()
    except Timeout:
        try:
            owner = json.loads(owner_file.read_text(encoding="utf-8"))
            who = (f"pid {owner.get('pid')} on {owner.get('host')}, "
                   f"started {owner.get('started')}")
        except (OSError, ValueError):
            who = "unknown process"
        raise IndexLockedError(
            f"another indexer ({who}) is writing the index in {settings.data_dir} "
            f"(lock file {settings.lock_path}); wait for it to finish and try again"
            + (f" (waited {timeout:g} s)" if timeout else "")) from None
    try:
        owner_file.write_text(json.dumps({
            "pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.now(UTC).isoformat(timespec="seconds")}), encoding="utf-8")
        yield
    finally:
        with suppress(OSError):
            owner_file.unlink()
        lock.release()


def generation(settings: Settings) -> str:
    """The current index generation ("" before the first build); servers reload on change."""
    try:
        return str(json.loads((settings.data_dir / GENERATION_FILE).read_text())["generation"])
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _bump_generation(settings: Settings) -> str:
    value = f"{time.time_ns()}-{os.getpid()}"
    target = settings.data_dir / GENERATION_FILE
    temporary = target.with_name(f".{GENERATION_FILE}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"generation": value,
                                     "time": datetime.now(UTC).isoformat()}), encoding="utf-8")
    os.replace(temporary, target)
    return value


# --- the run --------------------------------------------------------------------------------

def update(paths: Iterable[str | os.PathLike[str]], settings: Settings, *,
           embedder: Embedder | None = None, store: Store | None = None,
           prune: bool | None = None, strict: bool = False,
           progress: ProgressCallback | None = None, lock_timeout: float = 0.0) -> IndexReport:
    """Index new and changed articles under `paths` (files, folders, globs); see module doc.

    Bad input is reported in the report's errors and never stops the run, unless `strict`,
    which raises IndexingError before anything is written. Raises IndexLockedError when another
    indexer holds the lock for longer than `lock_timeout` seconds, and ModelMismatchError when
    the store was built with another model (fix: `rebuild`).
    """
    started = time.perf_counter()
    with index_lock(settings, lock_timeout):
        return _update_locked(list(paths), settings, embedder, store, prune, strict, progress,
                              started)


def rebuild(paths: Iterable[str | os.PathLike[str]], settings: Settings, *,
            embedder: Embedder | None = None, store: Store | None = None,
            strict: bool = False, progress: ProgressCallback | None = None,
            lock_timeout: float = 0.0) -> IndexReport:
    """Delete the store, manifest and keyword index, then index `paths` from scratch.

    This is also the fix for a model change (ModelMismatchError).
    """
    import shutil

    from index.manifest import Manifest

    started = time.perf_counter()
    with index_lock(settings, lock_timeout):
        store = store or _store(settings)
        store.reset()
        with Manifest(settings.manifest_path) as manifest:
            manifest.reset()
        shutil.rmtree(settings.keyword_dir, ignore_errors=True)
        return _update_locked(list(paths), settings, embedder, store, False, strict, progress,
                              started, force_keyword=True)


def _store(settings: Settings) -> Store:
    from index.store import Store

    return Store(settings, model_name=settings.embedding_model)


def _chunker_signature(settings: Settings) -> str:
    from index.chunking import TITLE_PREFIX

    return json.dumps({"model": settings.embedding_model, "tokens": settings.chunk_tokens,
                       "overlap": settings.chunk_overlap, "title": TITLE_PREFIX,
                       "version": CHUNKER_VERSION}, sort_keys=True)


def _update_locked(paths: Sequence[str | os.PathLike[str]], settings: Settings,
                   embedder: Embedder | None, store: Store | None, prune: bool | None,
                   strict: bool, progress: ProgressCallback | None, started: float,
                   force_keyword: bool = False) -> IndexReport:
    from index.manifest import Manifest
    from index.sources import expand_inputs, read_file, under_root

    report = progress or (lambda stage, done, total: None)
    store = store or _store(settings)
    counts = _Counts()

    with Manifest(settings.manifest_path) as manifest:
        # 1. scan: which files are new, changed or gone (stat only)
        files, skips, roots = expand_inputs(paths)
        counts.errors.extend(skips)
        report("scan", len(files), len(files))
        signature = _chunker_signature(settings)
        force = manifest.key_count() > 0 and manifest.get("chunker") != signature
        known = manifest.files()
        found = {item.path for item in files}
        gone = [] if prune is False else [
            path for path in sorted(known) if path not in found and (
                prune is True or (any(under_root(path, root) for root in roots)
                                  and not os.path.exists(path)))]
        changed = [item for item in files if known.get(item.path) != (item.mtime, item.size)]
        if (not changed and not gone and not force and not force_keyword
                and _store_untouched(settings, manifest)):
            # nothing to do, and the store is exactly as the last run left it: no need to
            # open it (or to import Chroma, or to load the model)
            return _quick_report(settings, manifest, files, counts, started)

        store.exists()  # raises ModelMismatchError before any work when the model changed
        stored_ids = store.article_ids()
        missing = manifest.referenced_ids() - stored_ids  # recorded but not in the store
        reread = manifest.files_referencing(missing) if missing else set()
        ref_counts = manifest.ref_counts()
        to_read: list[InputFile] = []
        for item in files:
            if force or item.path in reread or known.get(item.path) != (item.mtime, item.size):
                to_read.append(item)
            else:
                counts.unchanged += ref_counts.get(item.path, 0)
                counts.errors.extend(manifest.errors(item.path))  # still bad records in it

        # 2. read the changed files (no model needed)
        results: list[SourceResult] = []
        for number, item in enumerate(to_read, start=1):
            result = read_file(item.path, settings)
            results.append(result)
            counts.errors.extend(result.errors)
            report("read", number, len(to_read))
        if strict and counts.errors:
            listed = "; ".join(f"{p}: {r}" for p, r in counts.errors[:10])
            raise IndexingError(f"{len(counts.errors)} input(s) could not be indexed "
                                f"(strict mode, nothing written): {listed}")

        # 3. which articles must be embedded: content not stored yet (or all, when forced)
        plans: list[tuple[SourceResult, dict[str, str]]] = []
        new_articles: dict[str, Article] = {}
        for result in results:
            if not result.articles:
                continue  # unreadable now: keep what was indexed from it before
            refs: dict[str, str] = {}
            for article in result.articles:
                if article.key in refs:
                    if refs[article.key] != article.id:
                        counts.errors.append((article.key, "another article in "
                                              f"{result.path} has the same URL; kept the first"))
                    continue
                refs[article.key] = article.id
                if (force or article.id not in stored_ids) and article.id not in new_articles:
                    new_articles[article.id] = article
            plans.append((result, refs))

        # 4. chunk, embed in large groups across articles, write, then record the files
        written: set[str] = set()
        pending = list(plans)
        if new_articles:
            embedder = embedder or _embedder(settings)
            report("chunk", 0, len(new_articles))
            chunked = _chunk_all(list(new_articles.values()), embedder, settings, report)
            total_chunks = sum(len(chunks) for _, chunks in chunked)
            done = 0
            for group in _groups(chunked, EMBED_GROUP):  # module attribute: tests shrink it
                _write_group(group, embedder, store,
                             lambda d, _t, base=done: report("embed", base + d, total_chunks))
                done += sum(len(chunks) for _, chunks in group)
                counts.chunks_added += sum(len(chunks) for _, chunks in group)
                written.update(article.id for article, _ in group)
                stored_ids.update(article.id for article, _ in group)
                pending = _record_ready(pending, stored_ids, manifest, counts)
                report("embed", done, total_chunks)
        pending = _record_ready(pending, stored_ids, manifest, counts)
        assert not pending, "every read file is recorded once its articles are stored"

        # 5. prune files that disappeared, then delete articles no key references
        for path in gone:
            counts.removed += manifest.remove_file(path)
        manifest.set("chunker", signature)
        referenced = manifest.referenced_ids()
        unreferenced = store.article_ids() - referenced
        for number, article_id in enumerate(sorted(unreferenced), start=1):
            store.delete_article(article_id)
            counts.articles_deleted += 1
            report("cleanup", number, len(unreferenced))
        articles, chunks = store.count()
        listed_chunks = sum(n for _, n in store.list_articles()) if articles else 0
        if listed_chunks != chunks:
            store.sweep_orphan_chunks()
            articles, chunks = store.count()

        # 6. keyword index and generation stamp, when anything changed
        changed_store = bool(written or counts.removed or counts.articles_deleted
                             or counts.updated)
        if changed_store or force_keyword or _keyword_stale(settings, chunks):
            from index.keyword import build_from_store

            report("keyword", 0, 1)
            build_from_store(store).save(settings.keyword_dir)
            report("keyword", 1, 1)
            _bump_generation(settings)
        elif not generation(settings):
            _bump_generation(settings)
        manifest.set("counts", json.dumps([articles, chunks]))
        manifest.set("store", _store_signature(settings))

    errors = tuple({"path": p, "reason": r} for p, r in counts.errors)
    return IndexReport(
        indexed=counts.indexed, updated=counts.updated, unchanged=counts.unchanged,
        skipped=len(errors), removed=counts.removed, duplicates=counts.duplicates,
        chunks_added=counts.chunks_added, articles_deleted=counts.articles_deleted,
        articles=articles, chunks=chunks, errors=errors,
        seconds=time.perf_counter() - started,
        model_loaded=bool(embedder is not None and embedder.is_loaded))


def _store_signature(settings: Settings) -> str:
    """A cheap fingerprint of the embedded store's content ("" when unknown or a server).

    Chroma logs every write with an increasing sequence number in its SQLite file; reading
    those numbers (read-only, without importing chromadb) tells whether anything was written
    since the last run. File times are no good: Chroma rewrites its files when it merely opens.
    Any doubt (server, unknown schema) returns "", which makes the run reconcile fully.
    """
    if settings.chroma_url:
        return ""
    import sqlite3

    database = settings.chroma_path / "chroma.sqlite3"
    if not database.is_file():
        return ""
    try:
        with closing(sqlite3.connect(f"file:{database.resolve()}?mode=ro", uri=True,
                                     timeout=5)) as db:
            collections = sorted(db.execute("SELECT id, name FROM collections").fetchall())
            consumed = sorted(db.execute("SELECT segment_id, seq_id FROM max_seq_id").fetchall())
            logged = db.execute("SELECT MAX(seq_id), COUNT(*) FROM embeddings_queue").fetchone()
            stored = db.execute("SELECT COUNT(*) FROM embeddings").fetchone()
    except sqlite3.Error:
        return ""
    return json.dumps([str(database.resolve()), collections, consumed, logged, stored])


def _store_untouched(settings: Settings, manifest: Manifest) -> bool:
    """Whether the store, and the keyword index, are exactly as the last run left them."""
    recorded = manifest.get("store")
    if not recorded or recorded != _store_signature(settings):
        return False
    try:
        _, chunks = json.loads(manifest.get("counts"))
    except (ValueError, TypeError):
        return False
    return not _keyword_stale(settings, int(chunks))


def _quick_report(settings: Settings, manifest: Manifest, files: list[InputFile],
                  counts: _Counts, started: float) -> IndexReport:
    """The report of a run that found nothing new, changed or gone."""
    ref_counts = manifest.ref_counts()
    for item in files:
        counts.unchanged += ref_counts.get(item.path, 0)
        counts.errors.extend(manifest.errors(item.path))
    articles, chunks = json.loads(manifest.get("counts"))
    errors = tuple({"path": p, "reason": r} for p, r in counts.errors)
    return IndexReport(unchanged=counts.unchanged, skipped=len(errors), articles=int(articles),
                       chunks=int(chunks), errors=errors,
                       seconds=time.perf_counter() - started)


def _embedder(settings: Settings) -> Embedder:
    from index.embedding import get_embedder

    return get_embedder(settings.embedding_model)


def _keyword_stale(settings: Settings, chunks: int) -> bool:
    """Whether the published keyword index is missing or does not cover `chunks` chunks."""
    from index.keyword import read_generation

    current = read_generation(settings.keyword_dir)
    if not current:
        return True
    folder = Path(settings.keyword_dir) / current
    try:
        meta = json.loads((folder / "meta.json").read_text())
    except (OSError, ValueError):
        return True
    if int(meta.get("chunks", -1)) != chunks:
        return True
    return chunks > 0 and not (folder / "bm25").is_dir()


def _chunk_all(articles: list[Article], embedder: Embedder, settings: Settings,
               report: ProgressCallback) -> list[tuple[Article, list[Chunk]]]:
    from index.chunking import chunk_article

    out = []
    for number, article in enumerate(articles, start=1):
        chunks = chunk_article(article, embedder, settings)
        if not chunks:
            raise IndexingError(f"{article.key}: no text to index after tokenisation")
        out.append((article, chunks))
        if number % 50 == 0 or number == len(articles):
            report("chunk", number, len(articles))
    return out


def _groups(chunked: list[tuple[Article, list[Chunk]]],
            size: int) -> Iterator[list[tuple[Article, list[Chunk]]]]:
    group: list[tuple[Article, list[Chunk]]] = []
    count = 0
    for item in chunked:
        group.append(item)
        count += len(item[1])
        if count >= size:
            yield group
            group, count = [], 0
    if group:
        yield group


def _write_group(group: list[tuple[Article, list[Chunk]]], embedder: Embedder, store: Store,
                 progress: Callable[[int, int], None]) -> None:
    """Embed the chunks of several articles in one call, then store article by article."""
    from index.chunking import embedding_text

    texts = [embedding_text(article, chunk, embedder) for article, chunks in group
             for chunk in chunks]
    vectors = embedder.embed_documents(texts, progress=progress)
    items = []
    offset = 0
    for article, chunks in group:
        items.append((article, chunks, vectors[offset:offset + len(chunks)]))
        offset += len(chunks)
    store.upsert_articles(items)


def _record_ready(pending: list[tuple[SourceResult, dict[str, str]]], stored_ids: set[str],
                  manifest: Manifest, counts: _Counts
                  ) -> list[tuple[SourceResult, dict[str, str]]]:
    """Record in the manifest every pending file whose articles are all stored."""
    still = []
    for result, refs in pending:
        if not set(refs.values()) <= stored_ids:
            still.append((result, refs))
            continue
        old = manifest.refs(result.path)
        seen: set[str] = set()
        for key, article_id in refs.items():
            if key not in old:
                counts.indexed += 1
                if article_id in seen or manifest.other_keys(article_id, result.path):
                    counts.duplicates += 1
            elif old[key] != article_id:
                counts.updated += 1
            else:
                counts.unchanged += 1
            seen.add(article_id)
        counts.removed += len(set(old) - set(refs))
        manifest.replace_file(result.path, result.mtime, result.size, refs.items(),
                              result.errors)
    return still


# --- statistics ------------------------------------------------------------------------------

def stats(settings: Settings, store: Store | None = None) -> dict[str, Any]:
    """Counts and ranges for the status line: articles, chunks, sources, dates, model, store."""
    store = store or _store(settings)
    listed = store.list_articles()
    dates = sorted(meta.published[:10] for meta, _ in listed if meta.published)
    _, chunks = store.count()
    return {
        "articles": len(listed),
        "chunks": chunks,
        "sources": sorted({meta.source for meta, _ in listed if meta.source}),
        "published_min": dates[0] if dates else "",
        "published_max": dates[-1] if dates else "",
        "model": settings.embedding_model,
        "store": store.location,
        "collection": settings.collection,
        "generation": generation(settings),
    }
