"""Indexing: articles in, a persistent Chroma store and a keyword index out.

Import-light: `index.update`, `index.rebuild`, `index.stats`, `index.IndexReport` and
`index.summary_line` load their modules on first use.
"""

from __future__ import annotations

from typing import Any

_LAZY = {
    "update": "index.build",
    "rebuild": "index.build",
    "stats": "index.build",
    "generation": "index.build",
    "IndexReport": "index.build",
    "summary_line": "index.build",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'index' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
