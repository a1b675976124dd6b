"""Parser bombs and broken data folders: one bad file never stops a run, and what a user sees
is one clear line (the CLI's `skipped PATH: reason`, or `newsqa: error: ...` and exit 2)."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import index
from index.embedding import Embedder
from index.errors import ManifestError, SettingsError
from index.manifest import Manifest
from index.settings import OFFLINE_ENV, Settings
from index.sources import read_file
from index.store import Store

ROOT = Path(__file__).resolve().parents[2]
BAD_INPUTS = ROOT / "tests" / "fixtures" / "bad_inputs"
NEWSQA = Path(sys.executable).with_name("newsqa")
BOMBS = ("billion_laughs.xml", "billion_laughs.html", "external_entity.xml")
GOOD = {"harbour.txt": "Harbour reopens\n\nThe Kestrel Bay harbour reopened to fishing "
                       "boats on Thursday after a week of storms.\n",
        "council.md": "# Council vote\n\nThe Wenlow council voted to build a new school "
                      "on the old market site.\n"}


def bomb_folder(root: Path) -> Path:
    """Good articles beside parser bombs: JSON nested 100,000 deep (200 KB), entity expansion
    in XML and HTML, an external entity, and a file that is one line over the size limit."""
    root.mkdir(parents=True)
    for name, text in GOOD.items():
        (root / name).write_text(text, encoding="utf-8")
    (root / "nested.json").write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    for name in BOMBS:
        shutil.copy(BAD_INPUTS / name, root / name)
    with open(root / "one_line.txt", "w", encoding="utf-8") as handle:  # 2 MB > the 1 MB limit
        handle.write("word " * 420_000)
    return root


def run_newsqa(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **OFFLINE_ENV, "NEWSQA_DATA_DIR": str(data_dir),
           "NEWSQA_MAX_UPLOAD_MB": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([str(NEWSQA), *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=600)


def test_parser_bombs_are_skipped_or_read_as_data(tmp_path: Path, embedder: Embedder) -> None:
    folder = bomb_folder(tmp_path / "news")
    settings = Settings(data_dir=tmp_path / "data", max_upload_mb=1)
    report = index.update([folder], settings, embedder=embedder)
    reasons = {Path(e["path"]).name: e["reason"] for e in report.errors}
    assert set(reasons) == {"nested.json", "one_line.txt"}, reasons
    assert reasons["nested.json"].startswith("cannot be read (RecursionError")
    assert "larger than the 1 MB limit" in reasons["one_line.txt"]
    assert report.ok and report.indexed == len(GOOD) + len(BOMBS)
    store = Store(settings, model_name=settings.embedding_model)
    bodies = {meta.path: store.get_article(meta.id).body for meta, _ in store.list_articles()}
    assert {Path(p).name for p in bodies} == set(GOOD) | set(BOMBS)
    assert all(len(body) < 500 for body in bodies.values())  # no entity was expanded
    assert not any("root:" in body for body in bodies.values())  # /etc/passwd was not read


def test_a_huge_single_line_is_read_in_one_piece(tmp_path: Path) -> None:
    path = tmp_path / "line.txt"
    with open(path, "w", encoding="utf-8") as handle:  # 15 MB, no line break
        handle.write("word " * 3_000_000)
    result = read_file(path, Settings(data_dir=tmp_path / "data"))
    assert not result.errors and len(result.articles[0].body) == 15_000_000


def test_parser_bombs_through_the_cli(tmp_path: Path) -> None:
    folder = bomb_folder(tmp_path / "news")
    data = tmp_path / "data"
    result = run_newsqa("index", str(folder), "--quiet", data_dir=data)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    skipped = sorted(line for line in result.stderr.splitlines() if line.startswith("skipped "))
    assert len(skipped) == 2, result.stderr
    assert skipped[0].startswith(f"skipped {folder / 'nested.json'}: cannot be read "
                                 "(RecursionError")
    assert skipped[1].startswith(f"skipped {folder / 'one_line.txt'}: file is")
    assert result.stdout.startswith(f"{len(GOOD) + len(BOMBS)} indexed, 2 skipped")
    stats = run_newsqa("stats", "--json", data_dir=data)
    assert json.loads(stats.stdout)["articles"] == len(GOOD) + len(BOMBS)


def test_invalid_data_folder_is_one_clear_line(tmp_path: Path) -> None:
    folder = bomb_folder(tmp_path / "news")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    result = run_newsqa("index", str(folder), "--quiet", data_dir=blocker / "data")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("newsqa: error: data folder") and str(blocker / "data") in line
    with pytest.raises(SettingsError, match="cannot be created"):
        index.update([folder], Settings(data_dir=blocker / "data"), embedder=Embedder())


def test_corrupt_manifest_is_one_clear_line(tmp_path: Path) -> None:
    folder = bomb_folder(tmp_path / "news")
    data = tmp_path / "data"
    data.mkdir()
    (data / "manifest.sqlite3").write_bytes(b"this is not a database " * 200)
    result = run_newsqa("index", str(folder), "--quiet", data_dir=data)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"newsqa: error: manifest {data / 'manifest.sqlite3'}: ")
    assert "not a readable SQLite database" in line


def test_locked_manifest_is_a_manifest_error(tmp_path: Path) -> None:
    path = tmp_path / "manifest.sqlite3"
    Manifest(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with (pytest.raises(ManifestError, match=f"manifest {path}: it is locked"),
              Manifest(path, timeout=0.1) as manifest):
            manifest.set("name", "value")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
