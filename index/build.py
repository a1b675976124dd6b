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

A run with nothing new, changed or gone, whose store and keyword index are as the last run
left them (the store's `fingerprint()`, the keyword index's published chunk count), stats
the files and stops: it never opens an embedded store nor loads the model.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
from filelock import FileLock, Timeout

from index.chunking import ChunkingConfig, chunk_article, embedding_text
from index.embedding import DocumentStates, Embedder, get_embedder
from index.errors import ChunkingMismatchError, IndexingError, IndexLockedError, SettingsError
from index.keyword import in_step, open_index
from index.manifest import Manifest
from index.quote_tagger import ChunkStates
from index.quotes import EXTRACTOR_KEY, QuoteExtractor, default_extractor
from index.records import Article, Chunk, Quote
from index.settings import Settings
from index.sources import InputFile, SourceResult, expand_inputs, read_file, under_root
from index.store import Store

logger = logging.getLogger(__name__)

ProgressCallback = Callable[[str, int, int], None]
"""Called as progress(stage, done, total); stages: scan, read, chunk, embed, quotes, cleanup,
keyword."""

#: Chunks embedded together (across articles) before they are written and recorded.
DEFAULT_EMBED_GROUP = 1024
#: Chunks embedded together when their token states are kept for the quote tagger.
STATE_GROUP = 128
GENERATION_FILE = "generation.json"
#: The counts `summary_line` names, in its order.
SUMMARY_KEYS = ("indexed", "updated", "unchanged", "duplicates", "skipped", "removed")


def summary_line(counts: Mapping[str, Any]) -> str:
    """One line such as "2 indexed, 1 unchanged, 1 skipped" (zero counts left out).

    `counts` is an IndexReport dict (a count may also be given as a list of its items).
    """
    parts = []
    for key in SUMMARY_KEYS:
        value = counts.get(key) or 0
        count = value if isinstance(value, int) else len(value)
        if count:
            parts.append(f"{count} {key}")
    return ", ".join(parts) or "nothing to do"


@dataclass(frozen=True)
class IndexReport:
    """What one indexing run did. Counts are keys (URL or path of an article).

    indexed: new keys; updated: keys whose text changed; unchanged: keys seen with the same
    text (including unchanged files not re-read); duplicates: new keys whose text was already
    stored under another key (stored once; `duplicate_names` says under which key, whose
    title, source and date were kept); removed: keys dropped (pruned or gone from a file);
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
    duplicate_names: tuple[dict[str, str], ...] = ()
    seconds: float = 0.0
    model_loaded: bool = False
    quotes_extracted: int = 0
    quote_seconds: float = 0.0
    store_write_seconds: float = 0.0  # inside the store's writes (Chroma's share of the run)

    @property
    def ok(self) -> bool:
        """False when there were errors and none of this run's inputs is indexed."""
        return not self.errors or (self.indexed + self.updated + self.unchanged) > 0

    @property
    def changed(self) -> bool:
        return bool(self.indexed or self.updated or self.removed or self.articles_deleted)

    def summary(self) -> str:
        """One line for people: what changed (`summary_line`), and how big the index is now."""
        return (f"{summary_line(self.to_dict())} ({self.chunks_added} new passages; index "
                f"now holds {self.articles} articles, {self.chunks} passages; "
                f"{self.seconds:.1f} s)")

    def to_dict(self) -> dict[str, Any]:
        return {"indexed": self.indexed, "updated": self.updated, "unchanged": self.unchanged,
                "skipped": self.skipped, "removed": self.removed,
                "duplicates": self.duplicates, "chunks_added": self.chunks_added,
                "articles_deleted": self.articles_deleted, "articles": self.articles,
                "chunks": self.chunks, "errors": [dict(e) for e in self.errors],
                "duplicate_names": [dict(d) for d in self.duplicate_names],
                "seconds": round(self.seconds, 3), "model_loaded": self.model_loaded,
                "quotes_extracted": self.quotes_extracted,
                "quote_seconds": round(self.quote_seconds, 3),
                "store_write_seconds": round(self.store_write_seconds, 3), "ok": self.ok}


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
    duplicate_names: list[dict[str, str]] = field(default_factory=list)
    quotes_extracted: int = 0
    quote_seconds: float = 0.0
    store_write_seconds: float = 0.0


# --- locking and generation stamp -----------------------------------------------------------

def _make_data_dir(settings: Settings) -> None:
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SettingsError(f"data folder {settings.data_dir} cannot be created: "
                            f"{exc.strerror or exc}; set --data-dir or NEWSQA_DATA_DIR to a "
                            f"writable folder") from exc


def _lock_owner(settings: Settings) -> str:
    owner_file = settings.lock_path.with_name(settings.lock_path.name + ".owner")
    try:
        owner = json.loads(owner_file.read_text(encoding="utf-8"))
        return (f"pid {owner.get('pid')} on {owner.get('host')}, "
                f"started {owner.get('started')}")
    except (OSError, ValueError, AttributeError):
        return "unknown process"


@contextmanager
def index_lock(settings: Settings, timeout: float = 0.0) -> Iterator[None]:
    """Hold the data folder's indexing lock; IndexLockedError when another indexer has it."""
    _make_data_dir(settings)
    lock = FileLock(str(settings.lock_path), timeout=max(0.0, timeout), thread_local=False,
                    is_singleton=False)
    owner_file = settings.lock_path.with_name(settings.lock_path.name + ".owner")
    try:
        lock.acquire()
    except Timeout:
        raise IndexLockedError(
            f"another indexer ({_lock_owner(settings)}) is writing the index in "
            f"{settings.data_dir} (lock file {settings.lock_path}); wait for it to finish and "
            f"try again" + (f" (waited {timeout:g} s)" if timeout else "")) from None
    except OSError as exc:
        raise SettingsError(f"data folder {settings.data_dir} is not writable (lock file "
                            f"{settings.lock_path}: {exc.strerror or exc})") from exc
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


def _recorded_counts(manifest: Manifest) -> tuple[int, int]:
    """(articles, chunks) as the last completed run recorded them; (0, 0) before any."""
    recorded = manifest.get("counts")
    if not recorded:
        return 0, 0
    articles, chunks = json.loads(recorded)
    return int(articles), int(chunks)


def _bump_generation(settings: Settings) -> str:
    value = f"{time.time_ns()}-{os.getpid()}"
    target = settings.data_dir / GENERATION_FILE
    temporary = target.with_name(f".{GENERATION_FILE}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"generation": value,
                                     "time": datetime.now(UTC).isoformat()}), encoding="utf-8")
    os.replace(temporary, target)
    return value


# --- the public entry points ----------------------------------------------------------------

def update(paths: Iterable[str | os.PathLike[str]], settings: Settings, *,
           embedder: Embedder | None = None, store: Store | None = None,
           prune: bool | None = None, strict: bool = False,
           progress: ProgressCallback | None = None, lock_timeout: float = 0.0,
           embed_group: int = DEFAULT_EMBED_GROUP,
           quotes: QuoteExtractor | None = None) -> IndexReport:
    """Index new and changed articles under `paths` (files, folders, globs); see module doc.

    Bad input is reported in the report's errors and never stops the run, unless `strict`,
    which raises IndexingError before anything is written. Raises IndexLockedError when another
    indexer holds the lock for longer than `lock_timeout` seconds, ModelMismatchError when
    the store was built with another model and ChunkingMismatchError when the index was
    chunked with other chunk settings (fix for both: `rebuild`). `embed_group` chunks are
    embedded together before they are written and recorded. `quotes` extracts each new
    article's quotes (default: `index.quotes.default_extractor`, the learned tagger reading
    the token states of the embedding pass, the rules on stripped text); see
    `_Run._refresh_quotes`.
    """
    started = time.perf_counter()
    with index_lock(settings, lock_timeout):
        run = _Run(settings, store or _store(settings), embedder, progress, embed_group,
                   extractor=quotes)
        return run.execute(list(paths), prune, strict, started)


def rebuild(paths: Iterable[str | os.PathLike[str]], settings: Settings, *,
            embedder: Embedder | None = None, store: Store | None = None,
            strict: bool = False, progress: ProgressCallback | None = None,
            lock_timeout: float = 0.0, embed_group: int = DEFAULT_EMBED_GROUP,
            quotes: QuoteExtractor | None = None) -> IndexReport:
    """Delete the store, manifest and keyword index, then index `paths` from scratch.

    This is also the fix for a model or chunk settings change.
    """
    started = time.perf_counter()
    with index_lock(settings, lock_timeout):
        store = store or _store(settings)
        store.reset()
        with Manifest(settings.manifest_path) as manifest:
            manifest.reset()
        shutil.rmtree(settings.keyword_dir, ignore_errors=True)
        run = _Run(settings, store, embedder, progress, embed_group, force_keyword=True,
                   extractor=quotes)
        return run.execute(list(paths), False, strict, started)


def _store(settings: Settings) -> Store:
    return Store(settings, model_name=settings.encoder_signature)


# --- one run ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Scan:
    """What the stat pass found: the input files, those new or changed, and those gone."""

    files: list[InputFile]
    changed: list[InputFile]
    gone: list[str]


@dataclass(frozen=True)
class _Plan:
    """One read file and the article id under each of its keys (recorded once all stored)."""

    result: SourceResult
    refs: dict[str, str]


class _Run:
    """One indexing run under the lock: its inputs, the parts it writes, and its counts."""

    def __init__(self, settings: Settings, store: Store, embedder: Embedder | None,
                 progress: ProgressCallback | None, embed_group: int, *,
                 force_keyword: bool = False, extractor: QuoteExtractor | None = None) -> None:
        if embed_group < 1:
            raise SettingsError(f"embed_group must be at least 1, got {embed_group}")
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.report = progress or (lambda stage, done, total: None)
        self.embed_group = embed_group
        self.force_keyword = force_keyword
        self.counts = _Counts()
        self.chunking = ChunkingConfig.from_settings(settings)
        self.new_articles: dict[str, Article] = {}  # content not stored yet, by id
        self.written: set[str] = set()  # ids of the articles this run wrote
        # (title, chunks) of each article this run wrote, for the keyword index's delta
        self.written_chunks: dict[str, tuple[str, list[Chunk]]] = {}
        self.released: set[str] = set()  # article ids of keys this run dropped or replaced
        self.deleted: list[str] = []  # article ids this run deleted from the store
        # whether the store and keyword index are as the last completed run left them (then
        # only what the manifest says changed is looked at; see `_clean_up`)
        self.trusted = False
        self.extractor = extractor or default_extractor(settings.encoder_signature)

    def execute(self, paths: Sequence[str | os.PathLike[str]], prune: bool | None,
                strict: bool, started: float) -> IndexReport:
        """Scan, read, embed and record, prune and clean up, publish: the steps in order."""
        with Manifest(self.settings.manifest_path) as manifest:
            self._check_chunking(manifest)
            scan = self._scan(paths, prune, manifest)
            self.trusted = not self.force_keyword and self._untouched(manifest)
            if (not scan.changed and not scan.gone and self.trusted
                    and self._quotes_current(manifest)):
                # nothing to do, and the store is exactly as the last run left it: no need to
                # open it (or to import Chroma, or to load the model)
                return self._quick_report(manifest, scan.files, started)
            stored_ids = self._open_store()
            results = self._read_all(self._to_read(scan, manifest, stored_ids))
            if strict and self.counts.errors:
                self._refuse_strict()
            if self.trusted:
                stored_ids = self._stored_among(results, manifest)
            plans, new_articles = self._plan_articles(results, stored_ids)
            self._embed_and_record(plans, new_articles, stored_ids, manifest)
            self._prune(scan.gone, manifest)
            articles, chunks = self._clean_up(manifest)
            self._refresh_quotes(manifest)
            self._publish(manifest, articles, chunks)
        return self._report(articles, chunks, started)

    # --- checks and the stat pass --------------------------------------------------------

    def _open_store(self) -> set[str]:
        """Open the store, raising ModelMismatchError before any work, and return the stored
        article ids when the store may differ from the manifest (empty when trusted). A store
        not created yet is opened on a thread while the articles are read and embedded."""
        if self.store.known_empty():
            self.store.open_in_background()
            return set()
        self.store.exists()
        return set() if self.trusted else self.store.article_ids()

    def _check_chunking(self, manifest: Manifest) -> None:
        """Refuse to mix chunks of two chunk settings in one index (fix: rebuild)."""
        current = self.chunking.signature()
        recorded = manifest.get("chunker")
        if recorded == current:
            return
        if not recorded or manifest.key_count() == 0:
            manifest.set("chunker", current)  # first run (or no record yet): these settings
            return
        self.store.exists()  # a model change: the store's ModelMismatchError says it best
        raise ChunkingMismatchError(
            f"the index in {self.settings.data_dir} was built with other chunk settings "
            f"({ChunkingConfig.describe_change(recorded, current)}); run "
            f"`newsqa index --rebuild PATH...` to re-chunk and re-embed everything with them, "
            f"or configure the original settings")

    def _scan(self, paths: Sequence[str | os.PathLike[str]], prune: bool | None,
              manifest: Manifest) -> _Scan:
        """Which files are new, changed or gone (stat only)."""
        files, skips, roots = expand_inputs(paths)
        self.counts.errors.extend(skips)
        self.report("scan", len(files), len(files))
        known = manifest.files()
        found = {item.path for item in files}
        gone = [] if prune is False else [
            path for path in sorted(known) if path not in found and (
                prune is True or (any(under_root(path, root) for root in roots)
                                  and not os.path.exists(path)))]
        changed = [item for item in files if known.get(item.path) != (item.mtime, item.size)]
        return _Scan(files, changed, gone)

    def _untouched(self, manifest: Manifest) -> bool:
        """Whether the store, and the keyword index, are exactly as the last run left them,
        or all three (store, manifest, keyword index) are still empty: a first build, which
        then needs no listing of the store either."""
        if (self.store.known_empty() and manifest.key_count() == 0
                and not self.settings.keyword_dir.exists()):
            return True
        recorded = manifest.get("store")
        if not recorded or recorded != self.store.fingerprint():
            return False
        try:
            json.loads(manifest.get("counts"))
        except (ValueError, TypeError):
            return False
        return in_step(self.settings.keyword_dir, recorded)

    def _quick_report(self, manifest: Manifest, files: list[InputFile],
                      started: float) -> IndexReport:
        """The report of a run that found nothing new, changed or gone."""
        self._count_unchanged(manifest, files)
        return self._report(*_recorded_counts(manifest), started)

    def _count_unchanged(self, manifest: Manifest, files: Iterable[InputFile]) -> None:
        ref_counts = manifest.ref_counts()
        for item in files:
            self.counts.unchanged += ref_counts.get(item.path, 0)
            self.counts.errors.extend(manifest.errors(item.path))  # still bad records in it

    def _to_read(self, scan: _Scan, manifest: Manifest, stored_ids: set[str]
                 ) -> list[InputFile]:
        """Changed files, and files whose articles are recorded but missing from the store
        (none when the store is as the last completed run left it)."""
        missing = set() if self.trusted else manifest.referenced_ids() - stored_ids
        reread = manifest.files_referencing(missing) if missing else set()
        changed = {item.path for item in scan.changed} | reread
        self._count_unchanged(manifest, [f for f in scan.files if f.path not in changed])
        return [item for item in scan.files if item.path in changed]

    # --- reading --------------------------------------------------------------------------

    def _read_all(self, to_read: list[InputFile]) -> list[SourceResult]:
        """Read the changed files (no model needed); each file's problems are its skips."""
        results: list[SourceResult] = []
        for number, item in enumerate(to_read, start=1):
            result = self._read_one(item)
            results.append(result)
            self.counts.errors.extend(result.errors)
            self.report("read", number, len(to_read))
        return results

    def _read_one(self, item: InputFile) -> SourceResult:
        """The per-file boundary: whatever reading one file raises, the run goes on."""
        try:
            return read_file(item.path, self.settings)
        except Exception as exc:  # the one per-file boundary: a bad file never stops a run
            logger.debug("reading %s failed", item.path, exc_info=True)
            reason = f"cannot be read ({type(exc).__name__}: {str(exc)[:200] or 'no detail'})"
            return SourceResult(item.path, errors=((item.path, reason),), mtime=item.mtime,
                                size=item.size)

    @staticmethod
    def _stored_among(results: list[SourceResult], manifest: Manifest) -> set[str]:
        """Which of the articles read are stored, when the store is as the last completed run
        left it (it then holds exactly the articles the manifest references): lookups."""
        return manifest.referenced_among(article.id for result in results
                                         for article in result.articles)

    def _refuse_strict(self) -> None:
        errors = self.counts.errors
        listed = "; ".join(f"{p}: {r}" for p, r in errors[:10])
        raise IndexingError(f"{len(errors)} input(s) could not be indexed "
                            f"(strict mode, nothing written): {listed}")

    def _plan_articles(self, results: list[SourceResult], stored_ids: set[str]
                       ) -> tuple[list[_Plan], dict[str, Article]]:
        """Each readable file's keys, and the articles whose content is not stored yet."""
        plans: list[_Plan] = []
        new_articles: dict[str, Article] = {}
        for result in results:
            if not result.articles:
                continue  # unreadable now: keep what was indexed from it before
            refs: dict[str, str] = {}
            for article in result.articles:
                if article.key in refs:
                    if refs[article.key] != article.id:
                        self.counts.errors.append((article.key, "another article in "
                                                   f"{result.path} has the same URL; kept "
                                                   "the first"))
                    continue
                refs[article.key] = article.id
                if article.id not in stored_ids and article.id not in new_articles:
                    new_articles[article.id] = article
            plans.append(_Plan(result, refs))
        return plans, new_articles

    # --- embedding and recording ---------------------------------------------------------

    def _embed_and_record(self, plans: list[_Plan], new_articles: dict[str, Article],
                          stored_ids: set[str], manifest: Manifest) -> None:
        """Chunk, embed in large groups across articles, write, then record the files."""
        self.new_articles = new_articles
        pending = list(plans)
        if new_articles:
            embedder = self._embedder()
            self.report("chunk", 0, len(new_articles))
            chunked = self._chunk_all(list(new_articles.values()), embedder)
            total = sum(len(chunks) for _, chunks in chunked)
            done = 0
            for group in _groups(chunked, self.embed_group):
                self._write_group(group, embedder,
                                  lambda d, _t, base=done: self.report("embed", base + d, total))
                done += sum(len(chunks) for _, chunks in group)
                self.counts.chunks_added += sum(len(chunks) for _, chunks in group)
                self.written.update(article.id for article, _ in group)
                stored_ids.update(article.id for article, _ in group)
                pending = self._record_ready(pending, stored_ids, manifest)
                self.report("embed", done, total)
        pending = self._record_ready(pending, stored_ids, manifest)
        assert not pending, "every read file is recorded once its articles are stored"

    def _embedder(self) -> Embedder:
        if self.embedder is None:
            self.embedder = get_embedder(self.settings.embedding_model,
                                         int8=self.settings.encoder_int8)
        return self.embedder

    def _chunk_all(self, articles: list[Article], embedder: Embedder
                   ) -> list[tuple[Article, list[Chunk]]]:
        out = []
        for number, article in enumerate(articles, start=1):
            chunks = chunk_article(article, embedder, self.settings)
            if not chunks:
                raise IndexingError(f"{article.key}: no text to index after tokenisation")
            out.append((article, chunks))
            if number % 50 == 0 or number == len(articles):
                self.report("chunk", number, len(articles))
        return out

    def _write_group(self, group: list[tuple[Article, list[Chunk]]], embedder: Embedder,
                     progress: Callable[[int, int], None]) -> None:
        """Embed the chunks of several articles in one call, then store article by article."""
        texts = [embedding_text(article, chunk, embedder,
                                title_prefix=self.chunking.title_prefix)
                 for article, chunks in group for chunk in chunks]
        if self.extractor.reads_states:
            vectors, quotes = self._embed_with_quotes(group, texts, embedder, progress)
        else:
            vectors = embedder.embed_documents(texts, progress=progress)
            quotes = self._extract_quotes([a for a, _ in group])
        items = []
        offset = 0
        for article, chunks in group:
            items.append((article, chunks, vectors[offset:offset + len(chunks)]))
            offset += len(chunks)
        mark = time.perf_counter()
        # trusted: the store is as the last completed run left it, so an article not in it
        # has no chunk left over from a cut-short write
        self.store.upsert_articles(items, quotes, new=self.trusted)
        self.counts.store_write_seconds += time.perf_counter() - mark
        self.written_chunks.update((article.id, (article.title, chunks))
                                   for article, chunks in group)

    def _embed_with_quotes(self, group: list[tuple[Article, list[Chunk]]], texts: list[str],
                           embedder: Embedder, progress: Callable[[int, int], None]
                           ) -> tuple[np.ndarray, dict[str, tuple[Quote, ...]]]:
        """Embed and extract quotes from the same encoder pass: articles of about
        STATE_GROUP chunks at a time, so that only their token states are held at once."""
        parts: list[np.ndarray] = []
        quotes: dict[str, tuple[Quote, ...]] = {}
        offset = 0
        for part in _groups(group, STATE_GROUP):
            size = sum(len(chunks) for _, chunks in part)
            passed = embedder.embed_documents_with_states(texts[offset:offset + size])
            parts.append(passed.vectors)
            quotes.update(self._quotes_from_states(part, texts[offset:offset + size], passed))
            offset += size
            progress(offset, len(texts))
        return np.concatenate(parts), quotes

    def _quotes_from_states(self, part: list[tuple[Article, list[Chunk]]], texts: list[str],
                            passed: DocumentStates) -> dict[str, tuple[Quote, ...]]:
        """Each article's quotes from its chunks' token states, timed for the report."""
        mark = time.perf_counter()
        items = []
        row = 0
        for article, chunks in part:
            items.append((article, [_chunk_states(chunk, texts[row + n], passed.offsets[row + n],
                                                  passed.states[row + n])
                                    for n, chunk in enumerate(chunks)]))
            row += len(chunks)
        out = self.extractor.quotes_from_states(items)
        self.counts.quotes_extracted += sum(len(quotes) for quotes in out.values())
        self.counts.quote_seconds += time.perf_counter() - mark
        return out

    # --- quotes (stored with their article records) ----------------------------------------

    def _extract_quotes(self, articles: Sequence[Article]) -> dict[str, tuple[Quote, ...]]:
        """The quotes of these articles (article id -> quotes), timed for the report."""
        mark = time.perf_counter()
        out = {}
        for number, article in enumerate(articles, start=1):
            out[article.id] = self.extractor.quotes_of(article)
            self.report("quotes", number, len(articles))
        self.counts.quotes_extracted += sum(len(quotes) for quotes in out.values())
        self.counts.quote_seconds += time.perf_counter() - mark
        return out

    def _quotes_current(self, manifest: Manifest) -> bool:
        """Whether the stored quotes were made by this run's extractor (version stamp)."""
        return manifest.get(EXTRACTOR_KEY) == self.extractor.version

    def _refresh_quotes(self, manifest: Manifest, batch: int = 200) -> None:
        """When the extractor changed, re-extract the quotes of every stored article this run
        did not write, from the stored bodies (no re-embedding; the tagger runs its own
        encoder pass over each body, once per extractor change), then stamp its version."""
        if self._quotes_current(manifest):
            return
        stale = sorted(self.store.article_ids() - self.written)
        for begin in range(0, len(stale), batch):
            articles = self.store.get_articles(stale[begin:begin + batch])
            self.store.set_quotes(self._extract_quotes(articles))
        if stale:
            _bump_generation(self.settings)  # servers reopen the store and see the new quotes
        manifest.set(EXTRACTOR_KEY, self.extractor.version)

    def _record_ready(self, pending: list[_Plan], stored_ids: set[str],
                      manifest: Manifest) -> list[_Plan]:
        """Record in the manifest every pending file whose articles are all stored."""
        still = []
        for plan in pending:
            if not set(plan.refs.values()) <= stored_ids:
                still.append(plan)
                continue
            result = plan.result
            old = manifest.refs(result.path)
            self._count_keys(plan, old, manifest)
            self.released.update(old.values())
            manifest.replace_file(result.path, result.mtime, result.size, plan.refs.items(),
                                  result.errors)
        return still

    def _count_keys(self, plan: _Plan, old: Mapping[str, str], manifest: Manifest) -> None:
        """Count a file's keys as indexed, updated, unchanged, duplicate or removed (`old`:
        the file's keys as recorded before)."""
        counts = self.counts
        seen: dict[str, str] = {}  # article id -> first key in this file
        for key, article_id in plan.refs.items():
            if key not in old:
                counts.indexed += 1
                if article_id in seen or manifest.other_keys(article_id, plan.result.path):
                    counts.duplicates += 1
                    self._note_duplicate(key, article_id, manifest)
            elif old[key] != article_id:
                counts.updated += 1
            else:
                counts.unchanged += 1
            seen.setdefault(article_id, key)
        counts.removed += len(set(old) - set(plan.refs))

    def _note_duplicate(self, key: str, article_id: str, manifest: Manifest) -> None:
        """Say which name's title, source and date the stored article kept."""
        article = self.new_articles.get(article_id) or self.store.get_article(article_id)
        kept = article.key if article is not None else ""
        if kept == key:
            return
        self.counts.duplicate_names.append({
            "path": key, "same_text_as": kept,
            "reason": f"same text as {kept or 'an indexed article'}: stored once, with the "
                      f"title, source and date of {kept or 'that article'}"})

    # --- pruning, clean-up and publishing ---------------------------------------------------

    def _prune(self, gone: list[str], manifest: Manifest) -> None:
        for path in gone:
            self.released.update(manifest.refs(path).values())
            self.counts.removed += manifest.remove_file(path)

    def _clean_up(self, manifest: Manifest) -> tuple[int, int]:
        """Delete articles no key references and orphan chunks; returns (articles, chunks).

        When the store is as the last completed run left it (`trusted`), only the articles
        whose keys this run dropped can have lost their last key, and no write was cut
        short: a lookup of those ids, so a small update costs the same in any size of index.
        Otherwise every stored article is compared with the manifest and orphans are swept.
        """
        if self.trusted:
            unreferenced = sorted(self.released - manifest.referenced_among(self.released))
        else:
            unreferenced = sorted(self.store.article_ids() - manifest.referenced_ids())
        mark = time.perf_counter()
        removed_chunks = self.store.delete_articles(
            unreferenced, lambda done, total: self.report("cleanup", done, total))
        self.counts.store_write_seconds += time.perf_counter() - mark
        self.deleted = unreferenced
        self.counts.articles_deleted += len(unreferenced)
        if self.trusted:
            return self._counts_after(manifest, removed_chunks)
        articles, chunks = self.store.count()
        listed_chunks = sum(n for _, n in self.store.list_articles()) if articles else 0
        if listed_chunks != chunks:
            self.store.sweep_orphan_chunks()
            articles, chunks = self.store.count()
        return articles, chunks

    def _counts_after(self, manifest: Manifest, removed_chunks: int) -> tuple[int, int]:
        """(articles, chunks) after a trusted run: the last run's counts plus the articles
        and chunks this run wrote (all new), minus those it deleted; no count of the store,
        which grows with its size. Counted in the store when that does not add up."""
        articles, chunks = _recorded_counts(manifest)
        articles += len(self.written) - len(self.deleted)
        chunks += self.counts.chunks_added - removed_chunks
        if articles < 0 or chunks < articles:
            return self.store.count()
        return articles, chunks

    def _publish(self, manifest: Manifest, articles: int, chunks: int) -> None:
        """Stamp the finished write, bring the keyword index in step with the store (only the
        articles that changed are touched) and bump the generation when anything changed."""
        counts = self.counts
        changed_store = bool(self.written or counts.removed or counts.articles_deleted
                             or counts.updated)
        if changed_store or not self.store.fingerprint():
            # a stamp after the last write: a reader that caught up mid-run (another process
            # or machine) sees the stamp move again and catches up with the finished write
            self.store.mark_changed()
        fingerprint = self.store.fingerprint()
        if (changed_store or self.force_keyword
                or not in_step(self.settings.keyword_dir, fingerprint)):
            self.report("keyword", 0, 1)
            self._update_keyword(fingerprint)
            self.report("keyword", 1, 1)
            _bump_generation(self.settings)
        elif not generation(self.settings):
            _bump_generation(self.settings)
        manifest.set("counts", json.dumps([articles, chunks]))
        manifest.set("store", self.store.fingerprint())

    def _update_keyword(self, fingerprint: str) -> None:
        """Bring the keyword index in step: after a completed run (`trusted`: it was in step
        then) only this run's written and deleted articles are applied, else a full `sync`."""
        keyword = open_index(self.settings.keyword_dir)
        try:
            if self.trusted:
                keyword.apply(list(self.written_chunks.values()), self.deleted, fingerprint)
            else:
                keyword.sync(self.store)
        finally:
            keyword.close()

    def _report(self, articles: int, chunks: int, started: float) -> IndexReport:
        counts = self.counts
        errors = tuple({"path": p, "reason": r} for p, r in counts.errors)
        return IndexReport(
            indexed=counts.indexed, updated=counts.updated, unchanged=counts.unchanged,
            skipped=len(errors), removed=counts.removed, duplicates=counts.duplicates,
            chunks_added=counts.chunks_added, articles_deleted=counts.articles_deleted,
            articles=articles, chunks=chunks, errors=errors,
            duplicate_names=tuple(counts.duplicate_names),
            seconds=time.perf_counter() - started,
            model_loaded=bool(self.embedder is not None and self.embedder.is_loaded),
            quotes_extracted=counts.quotes_extracted, quote_seconds=counts.quote_seconds,
            store_write_seconds=counts.store_write_seconds)


def _groups(chunked: list[tuple[Article, list[Chunk]]],
            size: int) -> Iterator[list[tuple[Article, list[Chunk]]]]:
    """Consecutive articles holding at least `size` chunks together (the last may hold fewer)."""
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


def _chunk_states(chunk: Chunk, text: str, offsets: Sequence[tuple[int, int]],
                  states: np.ndarray) -> ChunkStates:
    """One embedded chunk's token states for the tagger: `text` ends with the chunk's body
    span (after a title line); pieces with no characters are left out."""
    kept = [n for n, (start, end) in enumerate(offsets) if end > start]
    return ChunkStates(offsets=tuple(offsets[n] for n in kept), states=states[kept],
                       prefix=len(text) - len(chunk.text), body_start=chunk.start)


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
