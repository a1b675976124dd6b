"""The one Chromium launcher for every browser test: Debian's /usr/bin/chromium driven by the
pip `playwright` package (never `playwright install`), headless, with the background
networking (component updates, sync, safe-browsing fetches) switched off."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.conftest import require

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync")


def require_chromium() -> None:
    """Skip locally, fail in CI, when Chromium or the playwright package is missing."""
    require(CHROMIUM.exists(), f"{CHROMIUM} (run `make browser`: apt-get install chromium)")
    require(importlib.util.find_spec("playwright") is not None,
            "the playwright package (pip install -e '.[dev]')")


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A launched headless Chromium browser, closed (with Playwright) on exit."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=list(CHROMIUM_ARGS))
        try:
            yield browser
        finally:
            browser.close()
