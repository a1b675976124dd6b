"""Many journalists at once: the real server, N gradio_client users, M questions each.

Starts `newsqa serve` as its own process on 127.0.0.1 (a free port) over a temporary data folder
(seeds/ plus a few small articles, indexed on first start), then lets N users ask M questions
each through the named `/ask` endpoint, all at once. Checks: no request fails, every found answer
cites at least one passage whose quote is exactly body[start:end] of its article, and the same
question gets the same answer whoever asks. Reports p50/p95 latency.

With --reindex, a separate `newsqa index` process adds new articles while the users ask; the
new articles must become answerable without restarting the server.

    python -m tests.reliability.load --users 20 --questions 10
    python -m tests.reliability.load --users 10 --questions 6 --reindex
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tests.reliability.harness import (
    CORPUS_LATE,
    LATE_QUESTIONS,
    QUESTIONS,
    ROOT,
    ask_api,
    check_load,
    cites_expected,
    cli_env,
    client,
    free_port,
    loopback_only,
    make_corpus,
    popen_cli,
    quotes_phrase,
    run_cli,
    run_users,
    settings_for,
    snapshot,
    stderr_line,
    wait_for_port,
)


def start_server(data_dir: Path, seeds: Path, port: int, *, auth: str = "",
                 log_file: Path | None = None, concurrency: int | None = None
                 ) -> subprocess.Popen:
    """`newsqa serve` on 127.0.0.1:port over data_dir, indexing `seeds` on first start.

    `concurrency` overrides ui.app.CONCURRENCY (Gradio's default_concurrency_limit) to compare
    queue settings; None runs the command exactly as users do.
    """
    env = {"NEWSQA_SEEDS_DIR": str(seeds)}
    if auth:
        env["NEWSQA_AUTH"] = auth
    out = open(log_file, "w") if log_file else subprocess.DEVNULL  # noqa: SIM115
    args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    if concurrency is None:
        return popen_cli(*args, data_dir=data_dir, env=env, stdout=out,
                         stderr=subprocess.STDOUT)
    code = (f"import sys, ui.app; ui.app.CONCURRENCY = {int(concurrency)}; "
            f"from ui.cli import main; main(sys.argv[1:])")
    return subprocess.Popen([sys.executable, "-c", code, *args], stdout=out,
                            stderr=subprocess.STDOUT, cwd=ROOT, env=cli_env(data_dir, env),
                            start_new_session=True)


def stop_server(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group, SIGKILL if it does not stop within 20 s."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)


def run_load(work: Path, *, users: int, questions: int, time_limit: float,
             reindex: bool = False, concurrency: int | None = None,
             log: Any = None) -> dict[str, Any]:
    """Start the server, run the users (and the indexer), return the figures and problems."""
    log = log or stderr_line
    seeds = make_corpus(work / "articles")
    data_dir = work / "data"
    settings = settings_for(data_dir, seeds_dir=seeds)
    port = free_port()
    server_log = work / "server.log"
    began = time.monotonic()
    server = start_server(data_dir, seeds, port, log_file=server_log, concurrency=concurrency)
    problems: list[str] = []
    figures: dict[str, Any] = {}
    try:
        wait_for_port(port, timeout=600, proc=server)
        url = f"http://127.0.0.1:{port}/"
        warm = client(url)
        ask_api(warm, QUESTIONS[0].text)  # the first question waits for the model warm-up
        figures["server_ready_s"] = round(time.monotonic() - began, 1)
        before = snapshot(settings)
        figures["store_before"] = before.to_dict()
        log(f"server ready on {url} after {figures['server_ready_s']}s; "
            f"store {before.to_dict()}")

        indexer: dict[str, Any] = {}

        def run_indexer() -> None:
            began_index = time.monotonic()
            result = run_cli("index", str(CORPUS_LATE), "--json", "--quiet",
                             data_dir=data_dir, timeout=900)
            indexer.update(seconds=round(time.monotonic() - began_index, 1),
                           exit=result.returncode, stderr=result.stderr[-1000:],
                           report=json.loads(result.stdout) if result.stdout.strip() else {})

        thread = threading.Thread(target=run_indexer, daemon=True)
        if reindex:
            thread.start()
        # With --reindex, rounds of questions repeat until the indexer has finished, so that
        # users are asking during all of its run (model load, embedding, writes, publication).
        report = run_users(url, users, QUESTIONS, per_user=questions, time_limit=time_limit)
        rounds = 1
        while reindex and thread.is_alive() and rounds < 50:
            more = run_users(url, users, QUESTIONS, per_user=questions, time_limit=time_limit)
            report.results += more.results
            report.wall_seconds += more.wall_seconds
            report.timed_out |= more.timed_out
            report.questions_per_user += questions
            rounds += 1
        figures["rounds"] = rounds
        if reindex:
            thread.join(timeout=900)
            figures["indexer"] = indexer
            if indexer.get("exit") != 0:
                problems.append(f"indexer failed while serving: {indexer}")
        figures["load"] = report.summary()
        problems += check_load(report, settings, same_answers=not reindex)
        misses = sorted({r.question.text for r in report.results
                         if r.answer and not cites_expected(r.answer, r.question)})
        figures["questions_not_answered_from_the_expected_article"] = misses
        problems += [f"not answered from the expected article: {q!r}" for q in misses]
        figures["answers_quoting_the_key_phrase"] = sum(
            1 for r in report.results if r.answer and quotes_phrase(r.answer, r.question))
        if reindex:
            late = []
            for question in LATE_QUESTIONS:
                answer = ask_api(warm, question.text)
                late.append({"question": question.text, "found": answer["found"],
                             "expected_article_cited": cites_expected(answer, question)})
                if not cites_expected(answer, question):
                    problems.append(f"new article not answerable after re-index without "
                                    f"restart: {question.text!r} -> {answer['text'][:120]!r}")
            figures["late_questions"] = late
        after = snapshot(settings)
        figures["store_after"] = after.to_dict()
        problems += [f"store after the run: {p}" for p in after.problems()]
        if after.article_count < before.article_count or after.chunk_count < before.chunk_count:
            problems.append(f"articles lost: before {before.to_dict()}, after {after.to_dict()}")
        if server.poll() is not None:
            problems.append(f"server exited during the run with status {server.returncode}")
    finally:
        stop_server(server)
    figures["problems"] = problems
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--questions", type=int, default=10, help="questions per user")
    parser.add_argument("--time-limit", type=float, default=900,
                        help="seconds for the whole run of questions")
    parser.add_argument("--reindex", action="store_true",
                        help="index new articles from another process while users ask")
    parser.add_argument("--concurrency", type=int,
                        help="override the server's Gradio concurrency limit (default: as shipped)")
    parser.add_argument("--work", type=Path, help="keep data and server log here")
    args = parser.parse_args(argv)
    loopback_only()
    with tempfile.TemporaryDirectory(prefix="newsqa-load-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        figures = run_load(work, users=args.users, questions=args.questions,
                           time_limit=args.time_limit, reindex=args.reindex,
                           concurrency=args.concurrency)
    print(json.dumps(figures, indent=2))
    return 1 if figures["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
