"""Question answering over the index, with verifiable citations.

`from qa import NewsQA` imports the facade lazily, so importing `qa` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from qa.api import NewsQA
    from qa.records import Answer, Citation, Passage

__all__ = ["Answer", "Citation", "NewsQA", "Passage"]


def __getattr__(name: str) -> Any:
    if name == "NewsQA":
        from qa.api import NewsQA

        return NewsQA
    if name in ("Answer", "Citation", "Passage"):
        from qa import records

        return getattr(records, name)
    raise AttributeError(f"module 'qa' has no attribute {name!r}")
