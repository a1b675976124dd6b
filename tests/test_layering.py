"""Data flows one way: index <- qa <- ui. index imports neither qa nor ui; qa never imports ui."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import ROOT, is_loopback_address

FORBIDDEN = {"index": {"qa", "ui"}, "qa": {"ui"}, "ui": set()}


def imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_respects_layering(package: str) -> None:
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no modules found in {package}/"
    offenders = {str(f.relative_to(ROOT)): sorted(imported_top_levels(f) & FORBIDDEN[package])
                 for f in files}
    assert {k: v for k, v in offenders.items() if v} == {}


def test_layering_check_detects_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom qa.api import NewsQA\nimport ui.app as app\n")
    assert imported_top_levels(bad) & FORBIDDEN["index"] == {"qa", "ui"}


def test_network_guard_allows_only_loopback() -> None:
    assert is_loopback_address(("127.0.0.1", 80))
    assert is_loopback_address(("::1", 80, 0, 0))
    assert is_loopback_address(("localhost", 7860))
    assert is_loopback_address("/tmp/socket")
    assert not is_loopback_address(("192.0.2.1", 443))
    assert not is_loopback_address(("huggingface.co", 443))
