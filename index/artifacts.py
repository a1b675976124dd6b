"""newsqa's own trained weights on disk (the reader's, the quote tagger's): one file of weights,
its sha256 recorded beside it and a metadata document, so that a loader can verify what it
loads and an answer can name the weights it came from."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def file_sha256(path: Path) -> str:
    """The sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_weights(folder: Path, weights_file: str, sha_file: str, metadata_file: str,
                   metadata: dict[str, Any]) -> str:
    """Record the sha256 of `folder/weights_file` (already written) in `sha_file` and write
    `metadata` with it as `weights_sha256` to `metadata_file`; returns the sha256."""
    sha = file_sha256(folder / weights_file)
    (folder / sha_file).write_text(f"{sha}  {weights_file}\n", encoding="utf-8")
    document = {**metadata, "weights_sha256": sha}
    (folder / metadata_file).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return sha


def recorded_sha256(path: Path, error: type[Exception], what: str) -> str:
    """The sha256 recorded in `path`; `error` naming `what` and the file when it is missing
    or empty."""
    try:
        return path.read_text(encoding="utf-8").split()[0]
    except (OSError, IndexError) as exc:
        raise error(f"{what} sha256 missing or empty: {path}") from exc
