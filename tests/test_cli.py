"""The `newsqa` command as a user runs it: real subprocesses, real model, real Chroma."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from index.settings import OFFLINE_ENV
from tests.conftest import SEEDS

NEWSQA = [sys.executable, "-m", "ui.cli"]
COMMANDS = ["index", "ask", "serve", "stats", "eval", "bench"]


def run(*args: str, data_dir: Path, check: bool = True, env: dict[str, str] | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **OFFLINE_ENV, "NEWSQA_DATA_DIR": str(data_dir), **(env or {})}
    result = subprocess.run([*NEWSQA, *args], capture_output=True, text=True, env=full_env,
                            cwd=Path(__file__).resolve().parent.parent, timeout=timeout)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_help_lists_real_commands_with_examples(tmp_path: Path) -> None:
    out = run("--help", data_dir=tmp_path).stdout
    for command in COMMANDS:
        assert f"  {command} " in out
        sub = run(command, "--help", data_dir=tmp_path).stdout
        assert "Examples:" in sub and f"newsqa {command}" in sub


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("cli") / "data"
    report = json.loads(run("index", str(SEEDS), "--json", "--quiet", data_dir=data_dir).stdout)
    assert report["indexed"] == 1 and report["errors"] == []
    return data_dir


def test_index_json_report_and_incremental_rerun(indexed: Path) -> None:
    again = run("index", str(SEEDS), "--json", data_dir=indexed)
    report = json.loads(again.stdout)
    for key in ("indexed", "updated", "unchanged", "skipped", "removed"):
        assert isinstance(report[key], int)
    assert (report["indexed"], report["unchanged"]) == (0, 1)


def test_stats_json(indexed: Path) -> None:
    stats = json.loads(run("stats", "--json", data_dir=indexed).stdout)
    assert stats["articles"] == 1 and stats["chunks"] >= 3


def test_ask_prints_one_json_answer_with_a_verbatim_citation(indexed: Path) -> None:
    result = run("ask", "What did Trenta say about intervention?", "--json", data_dir=indexed)
    answer = json.loads(result.stdout)
    assert answer["found"] is True
    quotes = " ".join(c["quote"] for c in answer["citations"])
    assert "the option does not exist" in quotes
    body = (SEEDS / "000_e1213e88b6fc4d83.txt").read_text()
    for citation in answer["citations"]:
        assert body[citation["start"]:citation["end"]] == citation["quote"]


def test_ask_plain_text_lists_sources(indexed: Path) -> None:
    out = run("ask", "What did Trenta say about intervention?", data_dir=indexed).stdout
    assert "[1]" in out and "Sources:" in out


@pytest.mark.parametrize("args,env,fragment", [
    (["index", "/no/such/folder"], {}, "/no/such/folder"),
    (["ask", "   "], {}, "question"),
    (["stats"], {"NEWSQA_TOP_K": "lots"}, "NEWSQA_TOP_K"),
    (["stats"], {"NEWSQA_CHROMA_URL": "not a url"}, "chroma_url"),
])
def test_user_mistakes_give_a_clear_line_and_no_traceback(
        tmp_path: Path, args: list[str], env: dict[str, str], fragment: str) -> None:
    result = run(*args, data_dir=tmp_path / "data", check=False, env=env)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert fragment in result.stderr


# --- `newsqa serve` fails with one line and exit status 2, never a traceback or a broken chat

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_briefly(data_dir: Path, port: int, env: dict[str, str]
                  ) -> subprocess.CompletedProcess[str]:
    """`newsqa serve --port PORT`, expected to stop by itself; a server that keeps running
    (the old behaviour for these cases) fails the test instead of hanging it."""
    try:
        return run("serve", "--host", "127.0.0.1", "--port", str(port), data_dir=data_dir,
                   check=False, env=env, timeout=240)
    except subprocess.TimeoutExpired:
        pytest.fail("newsqa serve kept running instead of exiting with a clear error")


def assert_one_clear_line(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("newsqa: error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0]


def test_serve_on_a_taken_port_names_it(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = serve_briefly(tmp_path / "data", port, {"NEWSQA_SEEDS_DIR": str(seeds)})
    assert_one_clear_line(result, f"127.0.0.1:{port}")
    assert "first start" not in result.stderr  # refused before indexing anything


def test_serve_first_start_without_the_articles_folder(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-seeds"
    result = serve_briefly(tmp_path / "data", free_port(), {"NEWSQA_SEEDS_DIR": str(missing)})
    assert_one_clear_line(result, str(missing), "NEWSQA_SEEDS_DIR")


def test_serve_with_a_model_that_cannot_load(tmp_path: Path) -> None:
    """The warm-up (which loads the model) fails: the server stops with the reason."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()  # empty: the first start indexes nothing and never needs the model
    model = tmp_path / "no-such-model"
    result = serve_briefly(tmp_path / "data", free_port(),
                           {"NEWSQA_SEEDS_DIR": str(seeds), "NEWSQA_EMBEDDING_MODEL": str(model)})
    assert_one_clear_line(result, str(model))


def test_index_names_a_duplicate_and_whose_metadata_was_kept(tmp_path: Path) -> None:
    articles = tmp_path / "articles"
    articles.mkdir()
    body = ("The harbour council voted to rebuild the lighthouse, said councillor Mirela "
            "Okonjo, and the work will start in the spring.")
    (articles / "a.txt").write_text(f"Lighthouse vote\n\n{body}\n", encoding="utf-8")
    (articles / "b.json").write_text(json.dumps({"title": "Council backs lighthouse",
                                                 "source": "Harbour Post", "body": body}))
    result = run("index", str(articles), "--quiet", data_dir=tmp_path / "data")
    lines = [line for line in result.stderr.splitlines() if line.startswith("duplicate ")]
    assert len(lines) == 1, result.stderr
    assert str(articles / "b.json") in lines[0] and str(articles / "a.txt") in lines[0]
    assert "1 duplicates" in result.stdout or "1 duplicate" in result.stdout
