"""The indexing manifest (SQLite): which files were read, and which article each key names.

A file row (path, mtime, size) lets a re-run skip unchanged files without reading them; a
reference row (file, key, article id) says that the article with that content hash is indexed
under that key (URL, else path). An article stays in the store while any key references it.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ParamSpec, TypeVar

from index.errors import ManifestError

_P = ParamSpec("_P")
_R = TypeVar("_R")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, mtime REAL NOT NULL, size INTEGER NOT NULL,
    errors TEXT NOT NULL DEFAULT '[]');
CREATE TABLE IF NOT EXISTS refs (
    path TEXT NOT NULL, key TEXT NOT NULL, article_id TEXT NOT NULL,
    PRIMARY KEY (path, key));
CREATE INDEX IF NOT EXISTS refs_article ON refs (article_id);
"""


def manifest_error(path: Path, exc: sqlite3.Error | OSError) -> ManifestError:
    """One clear line for a manifest that cannot be opened, read or written."""
    text = str(exc)
    if isinstance(exc, OSError):
        why = f"cannot create its folder ({exc.strerror or exc})"
    elif "locked" in text or "busy" in text:
        why = "it is locked by another program; close it and try again"
    elif "not a database" in text or "malformed" in text:
        why = ("it is not a readable SQLite database (corrupt?); move it away and index "
               "again: the index is reconciled from the store")
    else:
        why = text
    return ManifestError(f"manifest {path}: {why}")


def _mapped(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn SQLite errors of a Manifest method into one ManifestError naming the file."""
    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except (sqlite3.Error, OSError) as exc:
            path = args[0].path  # type: ignore[attr-defined]
            raise manifest_error(path, exc) from exc
    return wrapper


class Manifest:
    """Read and write the manifest; each method is its own transaction.

    SQLite errors (corrupt file, locked database, unwritable folder) become ManifestError.
    """

    @_mapped
    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        """Open (creating) the manifest; `timeout`: seconds to wait for another writer."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(SCHEMA)
        except BaseException:
            db.close()
            raise
        self._db = db
        self._migrate()

    def _migrate(self) -> None:
        """Bring manifests written by earlier versions up to the current schema."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(files)")}
        if "errors" not in columns:
            self._db.execute("ALTER TABLE files ADD COLUMN errors TEXT NOT NULL DEFAULT '[]'")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- meta ----------------------------------------------------------------------------

    @_mapped
    def get(self, name: str, default: str = "") -> str:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else default

    @_mapped
    def set(self, name: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                         (name, value))

    # --- files and references ------------------------------------------------------------

    @_mapped
    def files(self) -> dict[str, tuple[float, int]]:
        """path -> (mtime, size) of every file read successfully."""
        return {p: (m, s) for p, m, s in self._db.execute("SELECT path, mtime, size FROM files")}

    @_mapped
    def errors(self, path: str) -> list[tuple[str, str]]:
        """The skips recorded when `path` was last read (bad records in a good file)."""
        row = self._db.execute("SELECT errors FROM files WHERE path = ?", (path,)).fetchone()
        return [(p, r) for p, r in json.loads(row[0])] if row else []

    @_mapped
    def refs(self, path: str) -> dict[str, str]:
        """key -> article id for the articles read from `path`."""
        return dict(self._db.execute("SELECT key, article_id FROM refs WHERE path = ?", (path,)))

    @_mapped
    def all_refs(self) -> list[tuple[str, str, str]]:
        return list(self._db.execute("SELECT path, key, article_id FROM refs"))

    @_mapped
    def ref_counts(self) -> dict[str, int]:
        """path -> number of keys read from it."""
        return dict(self._db.execute("SELECT path, COUNT(*) FROM refs GROUP BY path"))

    @_mapped
    def referenced_ids(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT DISTINCT article_id FROM refs")}

    @_mapped
    def referenced_among(self, article_ids: Iterable[str]) -> set[str]:
        """Those of `article_ids` that some key references: indexed lookups, so the cost
        follows the ids asked about, not the size of the index."""
        wanted = sorted(set(article_ids))
        found: set[str] = set()
        for begin in range(0, len(wanted), 500):
            part = wanted[begin:begin + 500]
            found.update(row[0] for row in self._db.execute(
                f"SELECT DISTINCT article_id FROM refs WHERE article_id IN "
                f"({','.join('?' * len(part))})", part))
        return found

    @_mapped
    def other_keys(self, article_id: str, path: str) -> int:
        """How many keys from files other than `path` reference `article_id`."""
        row = self._db.execute("SELECT COUNT(*) FROM refs WHERE article_id = ? AND path != ?",
                               (article_id, path)).fetchone()
        return int(row[0])

    @_mapped
    def files_referencing(self, article_ids: Iterable[str]) -> set[str]:
        wanted = set(article_ids)
        return {p for p, _, a in self.all_refs() if a in wanted}

    @_mapped
    def replace_file(self, path: str, mtime: float, size: int,
                     refs: Iterable[tuple[str, str]],
                     errors: Iterable[tuple[str, str]] = ()) -> None:
        """Record what `path` holds now: its stat, its (key, article id) pairs, its skips."""
        with self._transaction() as db:
            db.execute("DELETE FROM refs WHERE path = ?", (path,))
            db.executemany("INSERT OR REPLACE INTO refs (path, key, article_id) VALUES (?, ?, ?)",
                           [(path, key, article_id) for key, article_id in refs])
            db.execute("INSERT OR REPLACE INTO files (path, mtime, size, errors) "
                       "VALUES (?, ?, ?, ?)", (path, mtime, size, json.dumps(list(errors))))

    @_mapped
    def remove_file(self, path: str) -> int:
        """Forget a file; returns how many keys it had."""
        with self._transaction() as db:
            removed = db.execute("DELETE FROM refs WHERE path = ?", (path,)).rowcount
            db.execute("DELETE FROM files WHERE path = ?", (path,))
        return int(removed)

    @_mapped
    def key_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM refs").fetchone()[0])

    @_mapped
    def reset(self) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM refs")
            db.execute("DELETE FROM files")
            db.execute("DELETE FROM meta")
