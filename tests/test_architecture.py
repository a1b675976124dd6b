"""docs/architecture.md lists exactly the modules that exist."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT
from tests.test_layering import PACKAGES

DOC = ROOT / "docs" / "architecture.md"
_LISTED = re.compile(r"^\| `((?:index|qa|ui)/[\w/]+\.py)` \|", re.MULTILINE)


def listed_modules(text: str) -> set[str]:
    """Module paths named in the first column of the page's module tables."""
    return set(_LISTED.findall(text))


def existing_modules(root: Path = ROOT) -> set[str]:
    return {str(path.relative_to(root)) for package in PACKAGES
            for path in (root / package).rglob("*.py")}


def test_architecture_page_lists_every_module_and_no_other() -> None:
    listed = listed_modules(DOC.read_text(encoding="utf-8"))
    existing = existing_modules()
    assert sorted(existing - listed) == [], "modules missing from docs/architecture.md"
    assert sorted(listed - existing) == [], "docs/architecture.md lists modules that do not exist"


def test_listing_is_read_from_the_tables(tmp_path: Path) -> None:
    text = "| `qa/a.py` | x |\n| `ui/b.py` | y |\nmentions `index/c.py` in prose\n"
    assert listed_modules(text) == {"qa/a.py", "ui/b.py"}
    (tmp_path / "qa").mkdir()
    (tmp_path / "qa" / "a.py").write_text("")
    assert existing_modules(tmp_path) == {"qa/a.py"}
