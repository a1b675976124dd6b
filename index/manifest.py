"""The indexing manifest (SQLite): which files were read, and which article each key names.

A file row (path, mtime, size) lets a re-run skip unchanged files without reading them; a
reference row (file, key, article id) says that the article with that content hash is indexed
under that key (URL, else path). An article stays in the store while any key references it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

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


class Manifest:
    """Read and write the manifest; each method is its own transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
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

    def get(self, name: str, default: str = "") -> str:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return row[0] if row else default

    def set(self, name: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)",
                         (name, value))

    # --- files and references ------------------------------------------------------------

    def files(self) -> dict[str, tuple[float, int]]:
        """path -> (mtime, size) of every file read successfully."""
        return {p: (m, s) for p, m, s in self._db.execute("SELECT path, mtime, size FROM files")}

    def errors(self, path: str) -> list[tuple[str, str]]:
        """The skips recorded when `path` was last read (bad records in a good file)."""
        row = self._db.execute("SELECT errors FROM files WHERE path = ?", (path,)).fetchone()
        return [(p, r) for p, r in json.loads(row[0])] if row else []

    def refs(self, path: str) -> dict[str, str]:
        """key -> article id for the articles read from `path`."""
        return dict(self._db.execute("SELECT key, article_id FROM refs WHERE path = ?", (path,)))

    def all_refs(self) -> list[tuple[str, str, str]]:
        return list(self._db.execute("SELECT path, key, article_id FROM refs"))

    def ref_counts(self) -> dict[str, int]:
        """path -> number of keys read from it."""
        return dict(self._db.execute("SELECT path, COUNT(*) FROM refs GROUP BY path"))

    def referenced_ids(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT DISTINCT article_id FROM refs")}

    def other_keys(self, article_id: str, path: str) -> int:
        """How many keys from files other than `path` reference `article_id`."""
        row = self._db.execute("SELECT COUNT(*) FROM refs WHERE article_id = ? AND path != ?",
                               (article_id, path)).fetchone()
        return int(row[0])

    def files_referencing(self, article_ids: Iterable[str]) -> set[str]:
        wanted = set(article_ids)
        return {p for p, _, a in self.all_refs() if a in wanted}

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

    def remove_file(self, path: str) -> int:
        """Forget a file; returns how many keys it had."""
        with self._transaction() as db:
            removed = db.execute("DELETE FROM refs WHERE path = ?", (path,)).rowcount
            db.execute("DELETE FROM files WHERE path = ?", (path,))
        return int(removed)

    def key_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM refs").fetchone()[0])

    def reset(self) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM refs")
            db.execute("DELETE FROM files")
            db.execute("DELETE FROM meta")
