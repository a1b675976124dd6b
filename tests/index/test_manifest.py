"""The manifest upgrades databases written by earlier versions in place."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from index.manifest import Manifest


def test_old_manifest_without_errors_column_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "manifest.sqlite3"
    db = sqlite3.connect(path)
    db.executescript("CREATE TABLE files (path TEXT PRIMARY KEY, mtime REAL NOT NULL, "
                     "size INTEGER NOT NULL);"
                     "INSERT INTO files VALUES ('/a.txt', 1.0, 10);")
    db.close()
    with Manifest(path) as manifest:
        assert manifest.errors("/a.txt") == []
