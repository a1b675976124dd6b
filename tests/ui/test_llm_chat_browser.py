"""The web chat in a real Chromium with the real local chat model (SmolLM2-135M-Instruct):
what is streamed on screen is only ever a prefix of the final, checked answer, never a
sentence the checks dropped, and an outside-knowledge answer never reaches the page.

A 135M model writes what it likes, so nothing here asserts its words; the assertions hold
whatever it writes. The page's every state is recorded by a MutationObserver; the Answer the
app received is recorded on the server by a pass-through wrapper of the real NewsQA.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from index.settings import Settings
from qa.llm import FALLBACK_ANSWERER
from qa.markers import strip_markers
from qa.records import Answer
from tests.qa.conftest import local_chat_model  # noqa: F401  (the one session model)
from tests.ui.conftest import LiveApp, free_port

pytestmark = pytest.mark.browser

TRENTA = "What did Trenta say about armed intervention in Libya?"
OUTSIDE = "What is the capital of France?"
DROPPED = re.compile(r"^sentence dropped \([^)]*\): “(?P<sentence>.*)” \(")

#: Records the text of chat bubble number `n` (0-based) at every change of the chat.
OBSERVE = """n => {
  window.__nqSeen = [];
  window.__nqBubble = n;
  if (window.__nqObserver) return;
  const chat = document.querySelector('#nq-chat');
  window.__nqObserver = new MutationObserver(() => {
    const bot = chat.querySelectorAll('[data-testid=bot]')[window.__nqBubble];
    const answer = bot ? bot.querySelector('.nq-answer') : null;
    if (!answer) return;
    const copy = answer.cloneNode(true);
    copy.querySelectorAll('.nq-foot').forEach(e => e.remove());
    window.__nqSeen.push({pending: answer.classList.contains('nq-pending'),
                          text: copy.textContent});
  });
  window.__nqObserver.observe(chat, {subtree: true, childList: true, characterData: true});
}"""


class RecordingQA:
    """The real NewsQA, passed through; remembers what each stream yielded (text, Answer)."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.streams: list[tuple[str, Answer]] = []

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[str | Answer]:
        text = ""
        for item in self.real.stream(*args, **kwargs):
            if isinstance(item, Answer):
                self.streams.append((text, item))
            else:
                text += item
            yield item

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture(scope="module")
def llm_app(tmp_path_factory: pytest.TempPathFactory, embedder: Any, ui_seeds: Path,
            local_chat_model: Any) -> Iterator[LiveApp]:  # noqa: F811
    """The real app answering with the real local model (a store of its own)."""
    from qa.api import NewsQA
    from ui.app import serve

    settings = Settings(data_dir=tmp_path_factory.mktemp("ui-llm-data"), seeds_dir=ui_seeds)
    qa = RecordingQA(NewsQA(settings, embedder=embedder, llm=local_chat_model))
    port = free_port()
    demo = serve(qa, settings, host="127.0.0.1", port=port, auth="",  # type: ignore[arg-type]
                 prevent_thread_lock=True)
    try:
        yield LiveApp(url=f"http://127.0.0.1:{port}/", qa=qa, settings=settings, demo=demo,
                      started=0.0, ready=0.0)
    finally:
        demo.close()


def squeeze(text: str) -> str:
    """Text without any white space: the DOM's text and the answer's compare exactly."""
    return "".join(text.split())


def ask_and_watch(page: Any, app: LiveApp, question: str) -> tuple[list[dict[str, Any]],
                                                                    str, Answer]:
    """Ask in the chat; every recorded state of the answer bubble, the text the server
    streamed and the Answer it ended with."""
    recorded = len(app.qa.streams)
    before = page.locator("#nq-chat [data-testid=bot]").count()
    page.evaluate(OBSERVE, before)
    page.fill("#nq-question textarea", question)
    page.press("#nq-question textarea", "Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('#nq-chat [data-testid=bot] .nq-answer').length > n "
        "&& !document.querySelector('#nq-chat .nq-pending')", arg=before)
    page.wait_for_selector("#nq-sources .nq-sources:not(.nq-empty)")
    seen = page.evaluate("window.__nqSeen")
    assert len(app.qa.streams) == recorded + 1
    streamed, answer = app.qa.streams[-1]
    return seen, streamed, answer


def dropped_sentences(answer: Answer) -> list[str]:
    """The model sentences the checks dropped (as the warnings name them)."""
    found = []
    for warning in answer.warnings:
        match = DROPPED.match(warning)
        if match:
            found.append(strip_markers(match.group("sentence")).removesuffix("...").strip())
    return found


def assert_only_checked_text_shown(seen: list[dict[str, Any]], streamed: str,
                                   answer: Answer) -> None:
    """Streamed == final; every state on screen a prefix of it; no dropped sentence shown."""
    assert streamed == answer.text
    final = squeeze(answer.text)
    states = [squeeze(s["text"]) for s in seen]
    assert states and final in states[-1], (states[-1:], answer.text)
    for state, record in zip(states, seen, strict=True):
        if record["pending"] and state != "…":
            assert final.startswith(state), (record["text"], answer.text)
    for sentence in dropped_sentences(answer):
        needle = squeeze(sentence)
        if needle and needle not in final:
            assert not any(needle in state for state in states), sentence


def test_streamed_chat_shows_only_checked_sentences(page: Any, llm_app: LiveApp) -> None:
    page.goto(llm_app.url)
    page.wait_for_selector("#nq-question textarea")
    seen, streamed, answer = ask_and_watch(page, llm_app, TRENTA)
    assert answer.found and answer.answerer in ("llm", FALLBACK_ANSWERER), \
        "the gate admits the question, so the model wrote the answer or it fell back"
    assert_only_checked_text_shown(seen, streamed, answer)
    assert page.locator("#nq-chat a.nq-cite").count() >= 1

    seen, streamed, answer = ask_and_watch(page, llm_app, OUTSIDE)
    assert_only_checked_text_shown(seen, streamed, answer)
    assert not any("Paris" in state["text"] for state in seen), seen
    assert "Paris" not in page.locator("#nq-chat").inner_text()
