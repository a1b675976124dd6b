"""Uploaded article files: a safe name, a size check, a copy into the uploads folder.

The client's filename is never trusted, and only the file types the indexer reads
(`index.sources.SUPPORTED_SUFFIXES`, the one list) are accepted.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from index.sources import SUPPORTED_SUFFIXES

#: File types accepted by the upload box (and checked again on the server), sorted for display.
UPLOAD_TYPES: tuple[str, ...] = tuple(sorted(SUPPORTED_SUFFIXES))

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_filename(name: str) -> str:
    """A basename safe to create in the uploads folder: no folders, no dot-files, known type.

    The client's filename is never trusted: `../../etc/passwd.txt` becomes `passwd.txt`.
    """
    base = re.split(r"[\\/]", name or "")[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot:
        stem, ext = base, ""
    stem = _UNSAFE.sub("_", stem).strip("._-")[:80] or "upload"
    ext = ext.lower()
    if f".{ext}" not in SUPPORTED_SUFFIXES:
        raise ValueError(f"unsupported file type {('.' + ext) if ext else '(none)'}; "
                         f"accepted: {', '.join(UPLOAD_TYPES)}")
    return f"{stem}.{ext}"


def file_digest(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def store_upload(source: Path, original_name: str, uploads_dir: Path, max_bytes: int) -> Path:
    """Copy one uploaded file into `uploads_dir` under a sanitised, non-clobbering name."""
    name = safe_filename(original_name)
    size = source.stat().st_size
    if size > max_bytes:
        raise ValueError(f"file is {size / 1e6:.1f} MB; the limit is {max_bytes // 2**20} MB")
    if size == 0:
        raise ValueError("file is empty")
    uploads_dir.mkdir(parents=True, exist_ok=True)
    root = uploads_dir.resolve()
    stem, ext = name.rsplit(".", 1)
    digest = file_digest(source)
    for n in range(1, 1000):
        target = root / (name if n == 1 else f"{stem}-{n}.{ext}")
        if target.parent != root:  # cannot happen after safe_filename; belt and braces
            raise ValueError("unsafe file name")
        if target.exists():
            if file_digest(target) == digest:
                return target  # same file uploaded again: let the indexer report "unchanged"
            continue
        shutil.copyfile(source, target)
        return target
    raise ValueError("too many uploads with this name")
