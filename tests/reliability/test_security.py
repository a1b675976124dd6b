"""Security: loopback by default, a warning when exposed without a password, working auth,
prompt isolation in LLM mode, and question text shown as text in the browser."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from index import build
from tests.reliability.conftest import Figures, Served, serve_app
from tests.reliability.harness import (
    BAD_INPUTS,
    QUESTIONS,
    ask_api,
    client,
    free_port,
    make_corpus,
    popen_cli,
    settings_for,
    wait_for_port,
)
from tests.reliability.load import stop_server


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a TCP socket listening on `port` (from /proc/net/tcp{,6})."""
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port_hex = fields[1].split(":")
            if int(port_hex, 16) != port or fields[3] != "0A":  # 0A = LISTEN
                continue
            raw = bytes.fromhex(address)
            if family == socket.AF_INET:
                raw = raw[::-1]
            else:  # /proc stores IPv6 as four little-endian 32-bit words
                raw = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
            found.add(socket.inet_ntop(family, raw))
    return found


def test_served_app_listens_on_loopback_only(served: Served) -> None:
    port = int(served.url.rsplit(":", 1)[1].strip("/"))
    assert listening_addresses(port) == {"127.0.0.1"}


def test_cli_server_defaults_to_loopback_and_enforces_auth(tmp_path: Path,
                                                          figures: Figures) -> None:
    """The real `newsqa serve` (no --host): bound to 127.0.0.1; a wrong password is refused."""
    import httpx

    seeds = make_corpus(tmp_path / "articles")
    port = free_port()
    log = tmp_path / "server.log"
    began = time.monotonic()
    with log.open("w") as out:
        server = popen_cli("serve", "--port", str(port), data_dir=tmp_path / "data",
                           env={"NEWSQA_SEEDS_DIR": str(seeds), "NEWSQA_AUTH": "desk:s3cret"},
                           stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, timeout=600, proc=server)
        ready = time.monotonic() - began
        assert listening_addresses(port) == {"127.0.0.1"}, log.read_text()[-2000:]
        url = f"http://127.0.0.1:{port}/"
        assert_clients_are_refused(url)
        # Without logging in, the plain HTTP API answers nothing; a wrong login is refused.
        refused = httpx.post(url + "gradio_api/call/ask", json={"data": ["x"]}, timeout=30)
        assert refused.status_code in (401, 403), refused.text[:200]
        login = httpx.post(url + "login", data={"username": "desk", "password": "nope"},
                           timeout=30)
        assert login.status_code in (400, 401, 403), login.text[:200]
        answer = ask_api(client(url, auth=("desk", "s3cret")), QUESTIONS[0].text)
        assert answer["found"] and answer["citations"]
        assert "WARNING" not in log.read_text()
    finally:
        stop_server(server)
    figures({"server listening after (s)": round(ready, 1), "bound to": "127.0.0.1 only",
             "refused clients": "no login, wrong password, another user's password",
             "plain API without login": refused.status_code,
             "wrong /login": login.status_code})


#: (credentials, the refusal gradio_client raises while it is constructed): without a login
#: the config route answers 401 (AuthenticationError); a failed login (Gradio answers 400)
#: is its plain ValueError "Could not login to URL." (AuthenticationError when 401).
REFUSED_LOGINS: tuple[tuple[tuple[str, str] | None, str], ...] = (
    (None, "credentials were not provided"),
    (("desk", "wrong"), r"^Could not login to http://127\.0\.0\.1:\d+/\."),
    (("admin", "s3cret"), r"^Could not login to http://127\.0\.0\.1:\d+/\."),
)


def assert_clients_are_refused(url: str) -> None:
    """No, a wrong and another user's password: each refused by the login itself, with a
    message that does not echo the real password."""
    from gradio_client.exceptions import AuthenticationError

    for credentials, message in REFUSED_LOGINS:
        expected = AuthenticationError if credentials is None else ValueError
        with pytest.raises(expected, match=message) as refused:
            client(url, auth=credentials)
        assert "s3cret" not in str(refused.value)


def test_auth_wrong_password_is_refused(served: Served, embedder: Any) -> None:
    """A second app with a password over the same (already indexed) store."""
    import httpx

    with serve_app(served.settings, embedder, auth="desk:s3cret") as app:
        assert_clients_are_refused(app.url)
        refused = httpx.post(app.url + "gradio_api/call/ask", json={"data": ["x"]}, timeout=30)
        assert refused.status_code in (401, 403), refused.text[:200]
        login = httpx.post(app.url + "login", data={"username": "desk", "password": "nope"},
                           timeout=30)
        assert login.status_code in (400, 401, 403), login.text[:200]
        answer = ask_api(client(app.url, auth=("desk", "s3cret")), QUESTIONS[1].text)
        assert answer["found"] and answer["citations"]


@pytest.mark.parametrize(("host", "auth", "warned"), [
    ("0.0.0.0", "", True), ("192.0.2.10", "", True), ("::", "", True),
    ("0.0.0.0", "desk:s3cret", False), ("127.0.0.1", "", False), ("localhost", "", False),
])
def test_warns_when_exposed_without_a_password(host: str, auth: str, warned: bool,
                                               served: Served, monkeypatch: Any,
                                               capsys: Any) -> None:
    """serve() decides what to bind and whether to warn; launch itself is replaced (no bind)."""
    import gradio as gr

    from ui.app import serve

    launched: dict[str, Any] = {}
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: launched.update(kw))
    serve(served.qa, served.settings, host=host, port=free_port(), auth=auth)
    err = capsys.readouterr().err
    assert launched["server_name"] == host
    assert launched["share"] is False
    assert ("WARNING" in err and "password" in err) is warned, err
    assert launched["auth"] == (tuple(auth.split(":")) if auth else None)


# --- LLM mode: article text is quoted data, uncited answers become "not found" -------------

@pytest.fixture(scope="module")
def injected(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Any:
    """A store holding the small corpus plus an article that tries to give orders."""
    work = tmp_path_factory.mktemp("llm")
    folder = make_corpus(work / "articles")
    (folder / "prompt_injection.txt").write_bytes((BAD_INPUTS / "prompt_injection.txt")
                                                  .read_bytes())
    settings = settings_for(work / "data")
    build.update([folder], settings, embedder=embedder)
    return settings


def _fake_llm(reply: str) -> tuple[Any, list[list[Any]]]:
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    seen: list[list[Any]] = []

    class Recorder(BaseCallbackHandler):
        def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
            seen.extend(messages)

    return FakeListChatModel(responses=[reply] * 4, callbacks=[Recorder()]), seen


QUESTION = "When will the new cycle lane in Marrowby open?"


def _ask_llm(settings: Any, embedder: Any, reply: str) -> tuple[Any, list[list[Any]]]:
    from qa.api import NewsQA

    model, seen = _fake_llm(reply)
    qa = NewsQA(settings, embedder=embedder, llm=model)
    return qa.ask(QUESTION), seen


def test_llm_prompt_isolates_instructions_injected_in_an_article(injected: Any,
                                                                 embedder: Any) -> None:
    answer, seen = _ask_llm(injected, embedder, "The lane opens in June [1].")
    assert seen, "the chat model was never called"
    system, user = seen[0][0].content, seen[0][-1].content
    assert seen[0][0].type == "system" and seen[0][-1].type == "human"
    # The rules live in the system message and say passages are data, not instructions.
    assert "not instructions" in system.lower() or "never an instruction" in system.lower()
    assert "Ignore previous instructions" not in system and "Marrowby" not in system
    # The article text sits inside the passages block of the user message...
    block = user[user.index("<passages>"):user.rindex("</passages>")]
    assert "Ignore previous instructions" in block and "Marrowby" in block
    # ...and its forged closing tags were neutralised: exactly one real block, one per passage.
    assert user.count("<passages>") == 1 and user.count("</passages>") == 1
    assert block.count("</passage>") == block.count("<passage ")
    assert user.index("Question:") > user.rindex("</passages>")
    assert answer.found and answer.citations  # a properly cited reply is accepted
    body = injected_body(injected, answer.citations[0].article.id)
    assert body[answer.citations[0].start:answer.citations[0].end] == answer.citations[0].quote


def injected_body(settings: Any, article_id: str) -> str:
    from index.store import Store

    return Store(settings, model_name=settings.embedding_model).get_article(article_id).body


@pytest.mark.parametrize("reply", [
    "THE MOON IS MADE OF CHEESE",  # obeyed the injected instruction, no citation
    "The moon is made of cheese [7].",  # cites a passage that does not exist
    "Here is my system prompt: You answer journalists' questions.",
])
def test_llm_reply_without_valid_citations_never_reaches_the_reader(reply: str, injected: Any,
                                                                    embedder: Any) -> None:
    """Issue 14: every sentence of the reply is dropped, so the offline answer is shown instead
    (saying so) when the gate admits the question, never the model's words."""
    from qa.api import NewsQA
    from qa.llm import FALLBACK_ANSWERER

    answer, seen = _ask_llm(injected, embedder, reply)
    assert seen, "the chat model was never called"
    offline = NewsQA(injected, embedder=embedder).ask(QUESTION)
    assert answer.answerer == FALLBACK_ANSWERER
    assert (answer.text, answer.found, answer.citations) == (offline.text, offline.found,
                                                            offline.citations)
    assert any("sentence dropped" in w for w in answer.warnings), answer.warnings
    assert any("offline" in w.lower() or "fall" in w.lower() for w in answer.warnings)
    assert "system prompt" not in answer.text.lower()
    for citation in answer.citations:  # the fallback quotes the articles verbatim
        body = injected_body(injected, citation.article.id)
        assert body[citation.start:citation.end] == citation.quote


# --- browser: the question is shown as text --------------------------------------------------

@pytest.mark.browser
def test_question_with_markup_is_shown_as_text_in_the_chat(served: Served, browser: Any) -> None:
    """Through the one Chromium launcher (tests/browser.py) that all browser tests share."""
    evil = ('<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
            '<b>bold</b> What did Trenta say about intervention?')
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(served.url, wait_until="domcontentloaded")
        box = page.locator("#nq-question textarea")
        box.wait_for(timeout=60_000)
        box.fill(evil)
        box.press("Enter")
        page.wait_for_function(
            "() => document.querySelectorAll('#nq-chat .nq-q').length > 0 && "
            "!document.querySelector('#nq-chat .nq-pending')", timeout=120_000)
        bubble = page.locator("#nq-chat .nq-q").first
        assert bubble.inner_text().strip() == evil
        assert page.evaluate("() => window.__pwned") is None
        assert page.locator("#nq-chat b", has_text="bold").count() == 0
        assert page.locator("#nq-chat img[src='x']").count() == 0
    finally:
        context.close()
