"""The citation-marker grammar: `[n]`, `[n, m]` or `[n; m]` in answer text, one home for the
answerers, the citation checks and the renderers."""

from __future__ import annotations

import re
from collections.abc import Iterator

MARKER = re.compile(r"\[\s*(\d+(?:\s*[,;]\s*\d+)*)\s*\]")
_SEPARATOR = re.compile(r"\s*[,;]\s*")


def marker_numbers(match: re.Match[str]) -> list[int]:
    """The numbers of one marker match, in written order ("[2, 5]" -> [2, 5])."""
    return [int(n) for n in _SEPARATOR.split(match.group(1))]


def iter_markers(text: str) -> Iterator[tuple[re.Match[str], list[int]]]:
    """Each marker in `text` with its numbers."""
    for match in MARKER.finditer(text):
        yield match, marker_numbers(match)


def cited_numbers(text: str) -> list[int]:
    """Every number cited in `text`, in order of appearance, repeats kept."""
    return [n for _, numbers in iter_markers(text) for n in numbers]


def strip_markers(text: str) -> str:
    """`text` without its markers."""
    return MARKER.sub("", text)


def format_marker(number: int) -> str:
    return f"[{number}]"
