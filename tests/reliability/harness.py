"""Shared tools for the reliability checks: corpora, CLI subprocesses, store inspection, clients.

Everything here runs on loopback and in temporary folders; nothing downloads.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from index.settings import BUNDLED_MODEL, OFFLINE_ENV, Settings, apply_offline_env

apply_offline_env()

ROOT = Path(__file__).resolve().parent.parent.parent
HERE = Path(__file__).resolve().parent
SEEDS = ROOT / "seeds"
CORPUS_BASE = HERE / "corpus" / "base"
CORPUS_LATE = HERE / "corpus" / "late"
BAD_INPUTS = ROOT / "tests" / "fixtures" / "bad_inputs"
NEWSQA = [sys.executable, "-m", "ui.cli"]


@dataclass(frozen=True)
class Question:
    """A question, the article (file stem) that answers it and the phrase that answers it."""

    text: str
    article: str | None = None
    phrase: str = ""


#: Answerable from seeds/ + corpus/base (and one that is not answerable at all).
QUESTIONS: tuple[Question, ...] = (
    Question("What did Trenta say about military intervention in Libya?",
             "000_e1213e88b6fc4d83", "option does not exist"),
    Question("What pay rise ended the dock strike in Port Halvering?", "harbour_strike",
             "6 percent"),
    Question("Who is the union leader of the Port Halvering dock workers?", "harbour_strike",
             "Kostadin"),
    Question("What caused the fire at the Orlen County library?", "library_fire",
             "dehumidifier"),
    Question("How many parish registers had been digitised before the library fire?",
             "library_fire", "300"),
    Question("How long is the Kestrel Ridge rail tunnel?", "rail_tunnel", "14-kilometre"),
    Question("What nickname did the crew give the Kestrel Ridge tunnel boring machine?",
             "rail_tunnel", "Big Hilde"),
    Question("By how much did the TMV-3 malaria vaccine cut severe cases in Tamberu?",
             "vaccine_trial", "71 percent"),
    Question("Who led the malaria vaccine trial in the Tamberu highlands?", "vaccine_trial",
             "Achterberg"),
    Question("What is the population of the Ares Prime colony on Mars?", None, ""),
)

#: Answerable only once corpus/late has been indexed.
LATE_QUESTIONS: tuple[Question, ...] = (
    Question("Who runs the glacier observatory on Mount Orrin?", "glacier_observatory",
             "Zelvanic"),
    Question("Who won the Brisk City chess championship?", "chess_final", "Quintavalle"),
    Question("How much did each Sorrowby villager pay for a share of the bakery?",
             "bakery_cooperative", "100 pounds"),
)


# --- corpora and settings ----------------------------------------------------------------------

def make_corpus(folder: Path, *, late: bool = False) -> Path:
    """Copy the seed article and the small base corpus (plus the late one) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = [*SEEDS.glob("*.txt"), *CORPUS_BASE.glob("*.txt")]
    if late:
        sources += list(CORPUS_LATE.glob("*.txt"))
    for path in sources:
        shutil.copy2(path, folder / path.name)
    return folder


def make_bulk_corpus(folder: Path, count: int, *, start: int = 0) -> Path:
    """`count` small distinct articles (varied sentences), for crash and lock runs."""
    folder.mkdir(parents=True, exist_ok=True)
    towns = ["Ambry", "Lowmarsh", "Easterby", "Farnley", "Gallow", "Halloway", "Marrowby",
             "Westbrook", "Sorrowby", "Pellow", "Brennstadt", "Orlen"]
    topics = ["a new bridge", "the school budget", "a flood barrier", "the summer festival",
              "a hospital wing", "bus timetables", "a wind farm", "the market square"]
    for i in range(start, start + count):
        town, topic = towns[i % len(towns)], topics[(i * 7) % len(topics)]
        sentences = [f"Council report {i} from {town}.", "",
                     f"The {town} council discussed {topic} at meeting number {i} on Monday."]
        for j in range(6 + i % 5):
            sentences.append(
                f"Speaker {j} said item {i}-{j} about {topic} would cost {(i + 1) * (j + 3)} "
                f"thousand euros and that residents of {town} had sent {i * 11 + j} letters.")
        (folder / f"report_{i:04d}.txt").write_text("\n".join(sentences) + "\n",
                                                    encoding="utf-8")
    return folder


def settings_for(data_dir: Path, **changes: Any) -> Settings:
    """Settings over `data_dir` with the seeds folder pointing at the repository's seeds."""
    return Settings(data_dir=data_dir, seeds_dir=SEEDS).replace(**changes)


# --- CLI subprocesses --------------------------------------------------------------------------

def cli_env(data_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **OFFLINE_ENV, "NEWSQA_DATA_DIR": str(data_dir),
           "PYTHONPATH": str(ROOT)}
    env.pop("NEWSQA_AUTH", None)
    return {**env, **(extra or {})}


def run_cli(*args: str, data_dir: Path, timeout: float = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `newsqa ARGS` as a separate process (like a user at a terminal); never raises."""
    return subprocess.run([*NEWSQA, *args], capture_output=True, text=True, cwd=ROOT,
                          env=cli_env(data_dir, env), timeout=timeout)


def popen_cli(*args: str, data_dir: Path, env: dict[str, str] | None = None,
              stdout: Any = subprocess.PIPE, stderr: Any = subprocess.PIPE) -> subprocess.Popen:
    """Start `newsqa ARGS` in the background (its own process group, so kill -9 is clean)."""
    return subprocess.Popen([*NEWSQA, *args], stdout=stdout, stderr=stderr, text=True,
                            cwd=ROOT, env=cli_env(data_dir, env), start_new_session=True)


def index_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON report printed by `newsqa index --json` (with stderr in the error if absent)."""
    try:
        return json.loads(result.stdout)
    except json.JSONDecodeError:
        raise AssertionError(f"no JSON report (exit {result.returncode}):\n"
                             f"stdout: {result.stdout[-2000:]}\nstderr: {result.stderr[-3000:]}"
                             ) from None


# --- store inspection --------------------------------------------------------------------------

@dataclass(frozen=True)
class StoreSnapshot:
    """Raw contents of both collections, including what readers would never see (orphans)."""

    article_ids: frozenset[str]
    chunk_ids: frozenset[str]
    chunk_count: int
    orphan_chunks: tuple[str, ...]
    duplicate_ordinals: tuple[str, ...]
    incomplete_articles: tuple[str, ...]
    opened: bool = True
    error: str = ""

    @property
    def article_count(self) -> int:
        return len(self.article_ids)

    def problems(self) -> list[str]:
        """Everything that would make this store inconsistent; empty when it is sound."""
        out = []
        if not self.opened:
            out.append(f"store does not open: {self.error}")
        if self.chunk_count != len(self.chunk_ids):
            out.append(f"{self.chunk_count} chunk rows but {len(self.chunk_ids)} distinct ids")
        if self.orphan_chunks:
            out.append(f"{len(self.orphan_chunks)} orphan chunks (no article record), e.g. "
                       f"{self.orphan_chunks[0]}")
        if self.duplicate_ordinals:
            out.append(f"duplicate chunk ordinals: {list(self.duplicate_ordinals)[:3]}")
        if self.incomplete_articles:
            out.append(f"articles whose chunk_count differs from their stored chunks: "
                       f"{list(self.incomplete_articles)[:3]}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"articles": self.article_count, "chunks": self.chunk_count,
                "orphans": len(self.orphan_chunks), "problems": self.problems()}


def evict_chroma(path: Path) -> None:
    """Make the next Chroma client in this process re-read `path` (and every other embedded
    store) from disk."""
    from index.store import forget_cached_clients

    forget_cached_clients()


def snapshot(settings: Settings, *, model_name: str = BUNDLED_MODEL) -> StoreSnapshot:
    """Read both collections straight from disk (fresh Chroma system) and check invariants."""
    from index.store import Store

    evict_chroma(settings.chroma_path)
    store = Store(settings, model_name=model_name)
    try:
        collections = store._collections()
        if collections is None:
            return StoreSnapshot(frozenset(), frozenset(), 0, (), (), ())
        chunk_col, article_col = collections
        articles = article_col.get(include=["metadatas"])
        chunks = chunk_col.get(include=["metadatas"])
        # A query proves the vector index loads, not only the SQL tables.
        if chunk_col.count():
            import numpy as np

            dimension = int((chunk_col.metadata or {}).get("dimension") or 384)
            probe = np.full(dimension, 1 / np.sqrt(dimension), dtype="float32")
            chunk_col.query(query_embeddings=[probe.tolist()], n_results=1, include=[])
    except Exception as exc:  # a store that does not open is exactly what we look for
        return StoreSnapshot(frozenset(), frozenset(), 0, (), (), (), opened=False,
                             error=f"{type(exc).__name__}: {exc}")
    finally:
        store.reopen()
    article_ids = frozenset(articles["ids"])
    expected = {aid: int(meta.get("chunk_count") or 0)
                for aid, meta in zip(articles["ids"], articles["metadatas"], strict=True)}
    per_article: dict[str, list[int]] = defaultdict(list)
    orphans = []
    for cid, meta in zip(chunks["ids"], chunks["metadatas"], strict=True):
        per_article[meta["article_id"]].append(int(meta["ordinal"]))
        if meta["article_id"] not in article_ids:
            orphans.append(cid)
    duplicates = [f"{aid}#{ordinal}" for aid, ordinals in per_article.items()
                  for ordinal, n in Counter(ordinals).items() if n > 1]
    incomplete = [aid for aid, n in expected.items() if len(per_article.get(aid, ())) != n]
    return StoreSnapshot(article_ids, frozenset(chunks["ids"]), len(chunks["ids"]),
                         tuple(sorted(orphans)), tuple(sorted(duplicates)),
                         tuple(sorted(incomplete)))


def article_bodies(settings: Settings, article_ids: Iterable[str]) -> dict[str, str]:
    """Bodies of the given articles, read from a fresh view of the store."""
    from index.store import Store

    evict_chroma(settings.chroma_path)
    store = Store(settings, model_name=BUNDLED_MODEL)
    try:
        out = {}
        for aid in set(article_ids):
            article = store.get_article(aid)
            if article is not None:
                out[aid] = article.body
        return out
    finally:
        store.reopen()


# --- answers -----------------------------------------------------------------------------------

def citation_problems(answer: dict[str, Any], bodies: dict[str, str]) -> list[str]:
    """Why an Answer.to_dict() is not properly cited (empty list when it is)."""
    problems = []
    citations = answer.get("citations") or []
    if answer.get("found") and not citations:
        problems.append("found but no citation")
    if not answer.get("found") and citations:
        problems.append("not found but has citations")
    for c in citations:
        body = bodies.get(c["article_id"])
        if body is None:
            problems.append(f"[{c['number']}] cites unknown article {c['article_id']}")
        elif body[c["start"]:c["end"]] != c["quote"]:
            problems.append(f"[{c['number']}] quote is not body[{c['start']}:{c['end']}]")
        elif f"[{c['number']}]" not in answer.get("text", ""):
            problems.append(f"[{c['number']}] is not referenced in the answer text")
    return problems


def cites_expected(answer: dict[str, Any], question: Question) -> bool:
    """True when the answer is found and cites the expected article (any passage of it).

    The web API names the article's file `file` (gradio_client would try to download a `path`).
    """
    if question.article is None:
        return True
    return bool(answer.get("found")) and any(
        question.article in (c.get("path") or c.get("file") or "")
        for c in answer.get("citations") or [])


def quotes_phrase(answer: dict[str, Any], question: Question) -> bool:
    """True when a citation quotes the key phrase (a stricter, reported-only measure)."""
    return any(question.phrase and question.phrase in c["quote"]
               for c in answer.get("citations") or [])


def answer_signature(answer: dict[str, Any]) -> tuple[Any, ...]:
    """What must not differ between two users asking the same question of the same store."""
    return (answer.get("found"), answer.get("text"),
            tuple((c["article_id"], c["start"], c["end"]) for c in answer.get("citations") or []))


# --- servers and clients -----------------------------------------------------------------------

def loopback_only() -> None:
    """Scripts: refuse any non-loopback connection, like the test suite does."""
    from tests.conftest import install_socket_guard

    install_socket_guard()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Block until 127.0.0.1:port accepts connections (or the server process died)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with status {proc.returncode}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f}s")


def client(url: str, auth: tuple[str, str] | None = None) -> Any:
    """A gradio_client Client for a local newsqa server (quiet, no analytics, no downloads)."""
    from gradio_client import Client

    return Client(url, auth=auth, verbose=False, analytics_enabled=False, download_files=False)


@dataclass
class Result:
    """One question asked by one simulated user."""

    user: int
    question: Question
    seconds: float
    answer: dict[str, Any] | None = None
    error: str = ""


@dataclass
class LoadReport:
    """What a load run measured."""

    users: int
    questions_per_user: int
    results: list[Result] = field(default_factory=list)
    wall_seconds: float = 0.0
    timed_out: bool = False

    @property
    def errors(self) -> list[Result]:
        return [r for r in self.results if r.error]

    def latency(self, quantile: float) -> float:
        values = sorted(r.seconds for r in self.results if not r.error)
        if not values:
            return float("nan")
        if len(values) == 1:
            return values[0]
        return statistics.quantiles(values, n=100, method="inclusive")[int(quantile * 100) - 1]

    def summary(self) -> dict[str, Any]:
        ok = [r for r in self.results if not r.error]
        return {"users": self.users, "questions_per_user": self.questions_per_user,
                "requests": len(self.results), "errors": len(self.errors),
                "found": sum(1 for r in ok if r.answer and r.answer.get("found")),
                "p50_s": round(self.latency(0.50), 2), "p95_s": round(self.latency(0.95), 2),
                "max_s": round(max((r.seconds for r in ok), default=float("nan")), 2),
                "wall_s": round(self.wall_seconds, 1),
                "throughput_qps": round(len(ok) / self.wall_seconds, 2)
                if self.wall_seconds else 0.0,
                "timed_out": self.timed_out}


def ask_api(api: Any, question: str) -> dict[str, Any]:
    """Ask through the named `/ask` endpoint; the reply is Answer.to_dict()."""
    reply = api.predict(question, api_name="/ask")
    if isinstance(reply, str):
        reply = json.loads(reply)
    if not isinstance(reply, dict):
        raise TypeError(f"/ask returned {type(reply).__name__}, not a dict")
    return reply


def call_raw(url: str, api_name: str, data: list[Any], *, timeout: float = 120
             ) -> tuple[str, Any]:
    """Call a named endpoint over Gradio's plain HTTP API with ASCII-escaped JSON (so even a
    lone surrogate, which gradio_client cannot send, reaches the server). (event, data)."""
    import httpx

    body = json.dumps({"data": data}, ensure_ascii=True)
    with httpx.Client(timeout=timeout) as http:
        posted = http.post(f"{url}gradio_api/call/{api_name}", content=body,
                           headers={"content-type": "application/json"})
        if posted.status_code != 200:
            return f"http {posted.status_code}", posted.text
        event_id = posted.json()["event_id"]
        event, payload = "", None
        with http.stream("GET", f"{url}gradio_api/call/{api_name}/{event_id}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    raw = line.split(":", 1)[1].strip()
                    try:
                        payload = json.loads(raw)
                    except json.JSONDecodeError:
                        payload = raw
                    if event in ("complete", "error"):
                        return event, payload
    return event or "no event", payload


def run_users(url: str, users: int, questions: Sequence[Question], *, per_user: int,
              time_limit: float, auth: tuple[str, str] | None = None,
              between: Callable[[int, int], None] | None = None) -> LoadReport:
    """`users` threads, each its own gradio client, asking `per_user` questions in turn.

    User u starts at question u (so different users ask different things at the same moment).
    The whole run stops early (remaining requests counted as errors) after `time_limit` s.
    """
    report = LoadReport(users, per_user)
    lock = threading.Lock()
    deadline = time.monotonic() + time_limit
    start_gate = threading.Barrier(users)

    def user(u: int) -> None:
        try:
            api = client(url, auth)
        except Exception as exc:  # a client that cannot connect is an error like any other
            with lock:
                report.results.extend(Result(u, questions[(u + i) % len(questions)], 0.0,
                                             error=f"connect: {exc!r}")
                                      for i in range(per_user))
            return
        with contextlib.suppress(threading.BrokenBarrierError):
            start_gate.wait(timeout=120)
        for i in range(per_user):
            question = questions[(u + i) % len(questions)]
            if time.monotonic() > deadline:
                with lock:
                    report.timed_out = True
                    report.results.append(Result(u, question, 0.0, error="time limit"))
                continue
            if between is not None:
                between(u, i)
            began = time.perf_counter()
            try:
                answer = ask_api(api, question.text)
                result = Result(u, question, time.perf_counter() - began, answer)
            except Exception as exc:
                result = Result(u, question, time.perf_counter() - began, error=repr(exc))
            with lock:
                report.results.append(result)
        close = getattr(api, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()

    began = time.perf_counter()
    threads = [threading.Thread(target=user, args=(u,), daemon=True) for u in range(users)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(1.0, deadline - time.monotonic() + 60))
    report.wall_seconds = time.perf_counter() - began
    return report


def check_load(report: LoadReport, settings: Settings, *, same_answers: bool = True) -> list[str]:
    """Every problem in a load run: errors, badly cited answers, answers differing by user."""
    problems = [f"user {r.user} {r.question.text!r}: {r.error}" for r in report.errors]
    answers = [r for r in report.results if r.answer is not None]
    ids = {c["article_id"] for r in answers for c in r.answer.get("citations") or []}
    bodies = article_bodies(settings, ids)
    by_question: dict[str, set[tuple[Any, ...]]] = defaultdict(set)
    for r in answers:
        problems += [f"{r.question.text!r}: {p}" for p in citation_problems(r.answer, bodies)]
        by_question[r.question.text].add(answer_signature(r.answer))
    if same_answers:
        problems += [f"{q!r}: {len(sigs)} different answers to the same question"
                     for q, sigs in by_question.items() if len(sigs) > 1]
    return problems


def stderr_line(message: str) -> None:
    """Progress for the scripts: one flushed line on stderr, stdout stays JSON."""
    print(message, file=sys.stderr, flush=True)
