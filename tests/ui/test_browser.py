"""The web chat in a real Chromium: cited answers, opening a source, upload, XSS, auth, and
the "warming up" page served before the model has loaded."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import EVIL_IMG, EVIL_SCRIPT, LiveApp, free_port

pytestmark = pytest.mark.browser

TRENTA = "What did Trenta say about intervention?"


def ask(page: Any, question: str) -> Any:
    """Type a question, send it, wait until the answer's sources are shown; the last bubble."""
    before = page.locator("#nq-chat [data-testid=bot]").count()
    page.fill("#nq-question textarea", question)
    page.press("#nq-question textarea", "Enter")
    bot = page.locator("#nq-chat [data-testid=bot]")
    page.wait_for_function(
        "n => document.querySelectorAll('#nq-chat [data-testid=bot]').length > n "
        "&& !document.querySelector('#nq-chat .nq-pending')", arg=before)
    page.wait_for_selector("#nq-sources .nq-sources:not(.nq-empty)")
    return bot.last


def open_app(page: Any, live: LiveApp) -> None:
    page.goto(live.url)
    page.wait_for_selector("#nq-question textarea")


def test_answer_cites_the_quoted_passage(page: Any, live_app: LiveApp, screenshots: Path
                                         ) -> None:
    open_app(page, live_app)
    answer = ask(page, TRENTA)
    link = answer.locator("a.nq-cite").first
    assert link.inner_text() == "[1]"
    card = page.locator("#nq-src-0-1")
    assert "the option does not exist" in card.locator("mark").first.inner_text()
    assert "Trenta" in card.inner_text()
    page.screenshot(path=str(screenshots / "ui-chat-answer.png"))

    # open the citation: its card is brought into view, then the full article with the span
    link.click()
    page.wait_for_function("document.getElementById('nq-src-0-1').classList.contains('nq-flash')")
    card.locator("summary").click()
    full = card.locator("details.nq-full[open] .nq-body mark")
    full.wait_for(state="visible")
    assert "the option does not exist" in full.inner_text()
    body = card.locator("details.nq-full .nq-body").inner_text()
    assert len(body) > 4000  # the whole article, not just the passage
    page.wait_for_timeout(600)  # let the smooth scroll settle before the screenshot
    page.screenshot(path=str(screenshots / "ui-citation-opened.png"))

    # a follow-up question carries the conversation: it is searched as a standalone question
    ask(page, "What about France?")
    panel = page.locator("#nq-sources").inner_text()
    assert re.search(r"Searched as: .*Trenta", panel), panel
    # clicking the first answer's [1] brings back that answer's sources
    assert page.locator("#nq-src-0-1").count() == 0
    page.locator("#nq-chat [data-testid=bot]").first.locator("a.nq-cite").first.click()
    page.locator("#nq-src-0-1").wait_for(state="visible")


def test_short_answer_leads_and_is_marked_inside_its_quote(page: Any, live_app: LiveApp
                                                           ) -> None:
    question = "Which newspaper interviewed Trenta?"
    short = live_app.qa.ask(question).short_answer  # the reader's (tests/qa/test_reading.py)
    assert short
    open_app(page, live_app)
    answer = ask(page, question)
    assert answer.inner_text().startswith(f"{short} [1]")
    card = page.locator("#nq-src-0-1")
    assert card.locator("mark mark.nq-short").first.inner_text() == short


def test_unanswerable_question_is_marked_not_found(page: Any, live_app: LiveApp,
                                                   screenshots: Path) -> None:
    open_app(page, live_app)
    answer = ask(page, "Who won the football world cup?")
    assert answer.locator(".nq-notfound .nq-notice").inner_text().startswith("Not found")
    assert answer.locator("a.nq-cite").count() == 0
    panel = page.locator("#nq-sources")
    assert "No indexed article answers this question" in panel.inner_text()
    assert panel.locator(".nq-card.nq-seealso").count() >= 1
    page.screenshot(path=str(screenshots / "ui-not-found.png"))


def test_date_filter_is_validated_and_applied(page: Any, live_app: LiveApp) -> None:
    open_app(page, live_app)
    page.click("#nq-filters button, #nq-filters .label-wrap")
    page.fill("#nq-since textarea, #nq-since input", "2019-13-45")
    page.fill("#nq-question textarea", TRENTA)
    page.press("#nq-question textarea", "Enter")
    page.get_by_text("From date is not a real date").first.wait_for()
    assert page.locator("#nq-chat [data-testid=bot]").count() == 0
    # a valid filter is applied to retrieval and shown with the sources
    page.fill("#nq-since textarea, #nq-since input", "2099-01-01")
    answer = ask(page, TRENTA)
    assert answer.locator(".nq-notfound").count() == 1
    assert "Filters: dated 2099-01-01 or later" in page.locator("#nq-sources").inner_text()


def test_upload_then_ask_cites_the_new_article(page: Any, live_app: LiveApp, tmp_path: Path,
                                               screenshots: Path) -> None:
    story = tmp_path / "Elmsworth pier (draft)?.txt"  # stored under a sanitised name
    story.write_text("Elmsworth closes its north pier\nHarbourmaster Quillon Vask said the Port "
                     "of Elmsworth will close its north pier for dredging on the third of March "
                     "and reopen it in June.\n", encoding="utf-8")
    bad = tmp_path / "notes.exe"
    bad.write_bytes(b"MZ")
    open_app(page, live_app)
    page.get_by_role("tab", name="Articles").click()
    # the .exe is refused by the upload box's type filter (the server check is unit-tested)
    page.set_input_files("#nq-upload input[type=file]", [str(story), str(bad)])
    page.locator("#nq-upload").get_by_text("pier").first.wait_for()
    page.get_by_text("Invalid file type: notes.exe").first.wait_for()
    page.click("#nq-upload-btn")
    result = page.locator("#nq-results [data-testid='cell-0-1']")
    result.get_by_text("indexed", exact=True).wait_for()
    assert "1 article" in page.locator("#nq-results [data-testid='cell-0-2']").inner_text()
    stored = list(live_app.settings.uploads_dir.iterdir())
    assert len(stored) == 1, stored
    assert re.fullmatch(r"[A-Za-z0-9._-]*pier[A-Za-z0-9._-]*\.txt", stored[0].name), stored
    page.fill("#nq-search input, #nq-search textarea", "Elmsworth")
    # wait until the FIRST row is the filtered one: the upload's unfiltered table shows the
    # title too, and clicking before the search's result arrives opens another article
    first_row = page.locator("#nq-articles [data-testid='cell-0-0']")
    first_row.get_by_text("Elmsworth closes its north pier").wait_for()
    first_row.click()
    page.locator("#nq-viewer").get_by_text("Harbourmaster Quillon Vask").wait_for()
    page.screenshot(path=str(screenshots / "ui-articles-tab.png"), full_page=True)

    page.get_by_role("tab", name="Ask").click()
    answer = ask(page, "When will the Port of Elmsworth close its north pier?")
    assert answer.locator("a.nq-cite").count() >= 1
    card = page.locator("#nq-sources .nq-card").first
    assert "Elmsworth closes its north pier" in card.inner_text()
    assert "third of March" in card.locator("mark").first.inner_text()


def test_markup_in_articles_is_shown_as_text(page: Any, live_app: LiveApp) -> None:
    open_app(page, live_app)
    ask(page, "What did the Zorblax harbour council decide about the lighthouse?")
    panel = page.locator("#nq-sources")
    panel.locator(".nq-card").first.wait_for()
    text = panel.inner_text()
    assert EVIL_SCRIPT in text and EVIL_IMG in text
    panel.locator("details.nq-full summary").first.click()
    # the Articles viewer shows the whole body as text as well
    page.get_by_role("tab", name="Articles").click()
    page.fill("#nq-search input, #nq-search textarea", "Zorblax")
    page.locator("#nq-articles [data-testid='cell-0-0']").click()
    page.locator("#nq-viewer .nq-body").wait_for()
    assert EVIL_SCRIPT in page.locator("#nq-viewer").inner_text()
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("img[src=x]").count() == 0
    assert page.locator("a[href^='javascript:']").count() == 0


def test_password_is_required_when_auth_is_set(browser: Any, live_app: LiveApp) -> None:
    from ui.app import serve

    port = free_port()
    demo = serve(live_app.qa, live_app.settings, host="127.0.0.1", port=port,
                 auth="editor:s3cret-pass", prevent_thread_lock=True)
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.fill("input[type=text]", "editor")
        page.fill("input[type=password]", "wrong")
        page.keyboard.press("Enter")
        page.get_by_text(re.compile("incorrect", re.I)).first.wait_for()
        assert page.locator("#nq-question").count() == 0
        page.fill("input[type=text]", "editor")  # the form is cleared after a failure
        page.fill("input[type=password]", "s3cret-pass")
        page.keyboard.press("Enter")
        page.wait_for_selector("#nq-question textarea")

        # scripts need the same password
        from gradio_client import Client

        url = f"http://127.0.0.1:{port}/"
        with pytest.raises(ValueError, match="Could not login"):
            Client(url, auth=("editor", "wrong"), verbose=False)
        client = Client(url, auth=("editor", "s3cret-pass"), verbose=False)
        assert client.predict(TRENTA, api_name="/ask")["found"] is True
        client.close()
    finally:
        context.close()
        demo.close()


class GatedEmbedder:
    """The real embedder whose `warm_up` first waits for the test to open `gate`: a fake only
    for the timing of the load (everything else, answers included, is the real model)."""

    def __init__(self, real: Any, gate: threading.Event) -> None:
        self.real, self.gate = real, gate

    def warm_up(self) -> None:
        self.gate.wait()
        self.real.warm_up()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def wait_for_page(url: str, served: threading.Thread) -> None:
    """Until the server answers `url` (while `serve` is still warming up in `served`)."""
    import urllib.request

    for _ in range(600):
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            assert served.is_alive(), "serve() ended before the page was up"
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def test_page_shows_warming_up_until_the_model_is_loaded(page: Any, live_app: LiveApp,
                                                         embedder: Any) -> None:
    from qa.api import NewsQA
    from ui.app import serve

    gate = threading.Event()
    qa = NewsQA(live_app.settings, embedder=GatedEmbedder(embedder, gate))  # existing index
    port = free_port()
    result: dict[str, Any] = {}

    def run() -> None:
        result["demo"] = serve(qa, live_app.settings, host="127.0.0.1", port=port, auth="",
                               prevent_thread_lock=True)

    served = threading.Thread(target=run, daemon=True)
    served.start()
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_page(url, served)
        page.goto(url)
        notice = page.locator("#nq-warming")
        notice.wait_for(state="visible")
        assert "Warming up" in notice.inner_text()
        assert served.is_alive()  # serve() is still inside the model's warm-up

        # a question asked now waits for the warm-up instead of failing
        page.fill("#nq-question textarea", TRENTA)
        page.press("#nq-question textarea", "Enter")
        page.get_by_text("Warming up, the answer follows shortly").wait_for()
        assert page.locator("#nq-chat a.nq-cite").count() == 0
        gate.set()
        served.join(timeout=120)
        assert not served.is_alive()
        page.wait_for_selector("#nq-sources .nq-sources:not(.nq-empty)")
        answer = page.locator("#nq-chat [data-testid=bot]").last
        assert answer.locator("a.nq-cite").first.inner_text() == "[1]"
        assert "the option does not exist" in page.locator("#nq-src-0-1 mark").first.inner_text()
        notice.wait_for(state="hidden")  # gone once warm, without reloading the page
    finally:
        gate.set()
        served.join(timeout=120)
        if "demo" in result:
            result["demo"].close()
