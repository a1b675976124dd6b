"""An OpenAI- and Ollama-compatible chat server on 127.0.0.1 over one LangChain chat model.

Tests point `openai:MODEL` / `ollama:MODEL` with NEWSQA_LLM_BASE_URL at it, so the provider
adapters talk real HTTP (JSON, SSE, NDJSON) to the same loaded local model the in-process
tests use. Routes: POST /v1/chat/completions (plain and `stream: true`), GET /v1/models,
POST /api/chat (Ollama, NDJSON stream by default), GET /api/tags.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

MESSAGE_TYPES = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}


def to_messages(turns: list[dict[str, Any]]) -> list[BaseMessage]:
    """OpenAI/Ollama role+content dicts as LangChain messages (text parts joined)."""
    messages = []
    for turn in turns:
        content = turn.get("content") or ""
        if isinstance(content, list):
            content = "".join(part.get("text", "") for part in content)
        messages.append(MESSAGE_TYPES[turn["role"]](content=content))
    return messages


class ChatServer:
    """The server: start() binds a free loopback port, stop() shuts it down; `requests`
    records each (path, body) received, for tests to check what a client sent."""

    def __init__(self, chat_model: Any, model_name: str = "smollm2") -> None:
        self.chat_model = chat_model
        self.model_name = model_name
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def ollama_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ChatServer:
        server = self

        class Handler(_Handler):
            owner = server

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="llm-server",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    # --- replies ---------------------------------------------------------------------------

    def pieces(self, body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        """(text piece, usage) from the chat model's stream; usage only on the last chunk."""
        for chunk in self.chat_model.stream(to_messages(body.get("messages", []))):
            yield str(chunk.content), dict(getattr(chunk, "usage_metadata", None) or {})


class _Handler(BaseHTTPRequestHandler):
    owner: ChatServer
    protocol_version = "HTTP/1.0"  # a streamed body ends when the connection closes

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        return

    def do_GET(self) -> None:
        name = self.owner.model_name
        if self.path == "/v1/models":
            self._json({"object": "list", "data": [
                {"id": name, "object": "model", "created": 0, "owned_by": "newsqa-tests"}]})
        elif self.path == "/api/tags":
            self._json({"models": [{"name": name, "model": name}]})
        else:
            self._json({"error": {"message": f"no route {self.path}"}}, status=404)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.owner.requests.append((self.path, body))
        if self.path == "/v1/chat/completions":
            if body.get("stream"):
                self._openai_stream(body)
            else:
                self._json(openai_completion(self.owner, body))
        elif self.path == "/api/chat":
            self._ollama(body)
        else:
            self._json({"error": {"message": f"no route {self.path}"}}, status=404)

    def _json(self, payload: dict[str, Any], status: int = 200) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start_stream(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()

    def _openai_stream(self, body: dict[str, Any]) -> None:
        self._start_stream("text/event-stream")
        for event in openai_events(self.owner, body):
            self.wfile.write(f"data: {event}\n\n".encode())
            self.wfile.flush()

    def _ollama(self, body: dict[str, Any]) -> None:
        if body.get("stream", True) is False:
            text, usage = _collect(self.owner.pieces(body))
            self._json(ollama_line(self.owner, text, usage, done=True))
            return
        self._start_stream("application/x-ndjson")
        for piece, usage in self.owner.pieces(body):
            line = ollama_line(self.owner, piece, usage, done=False) if piece else None
            if line is not None:
                self.wfile.write((json.dumps(line) + "\n").encode())
                self.wfile.flush()
            if usage:
                final = ollama_line(self.owner, "", usage, done=True)
                self.wfile.write((json.dumps(final) + "\n").encode())


def _collect(pieces: Iterator[tuple[str, dict[str, Any]]]) -> tuple[str, dict[str, Any]]:
    text, usage = [], {}
    for piece, piece_usage in pieces:
        text.append(piece)
        usage = piece_usage or usage
    return "".join(text), usage


def _openai_usage(usage: dict[str, Any]) -> dict[str, int]:
    return {"prompt_tokens": usage.get("input_tokens", 0),
            "completion_tokens": usage.get("output_tokens", 0),
            "total_tokens": usage.get("total_tokens", 0)}


def openai_completion(server: ChatServer, body: dict[str, Any]) -> dict[str, Any]:
    """A non-streamed chat.completion object."""
    text, usage = _collect(server.pieces(body))
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", server.model_name),
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": _openai_usage(usage)}


def openai_events(server: ChatServer, body: dict[str, Any]) -> Iterator[str]:
    """The SSE data lines of a streamed completion: role, text deltas, finish, usage, [DONE]."""
    base = {"id": "chatcmpl-test", "object": "chat.completion.chunk",
            "created": int(time.time()), "model": body.get("model", server.model_name)}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        return json.dumps({**base, "choices": [{"index": 0, "delta": delta,
                                                "finish_reason": finish}]})

    yield chunk({"role": "assistant", "content": ""})
    usage: dict[str, Any] = {}
    for piece, piece_usage in server.pieces(body):
        usage = piece_usage or usage
        if piece:
            yield chunk({"content": piece})
    yield chunk({}, finish="stop")
    if (body.get("stream_options") or {}).get("include_usage"):
        yield json.dumps({**base, "choices": [], "usage": _openai_usage(usage)})
    yield "[DONE]"


def ollama_line(server: ChatServer, text: str, usage: dict[str, Any],
                *, done: bool) -> dict[str, Any]:
    """One Ollama /api/chat response object (a stream line, or the whole reply)."""
    line: dict[str, Any] = {"model": server.model_name,
                            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "message": {"role": "assistant", "content": text}, "done": done}
    if done:
        line.update(done_reason="stop", prompt_eval_count=usage.get("input_tokens", 0),
                    eval_count=usage.get("output_tokens", 0))
    return line
