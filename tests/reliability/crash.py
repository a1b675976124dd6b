"""Crash the indexer with kill -9 at random (seeded) moments and check the store converges.

Each cycle starts `newsqa index` as a separate process, kills it (SIGKILL, no clean-up) at a
random moment (during start-up, embedding, the writes of article records, or the keyword index
and generation stamp), checks that the store still opens and that
readers see no half-written article, then re-runs the indexer to completion and checks the
store holds exactly what a clean build holds: same article ids, same chunk ids, no orphan
chunks, no duplicate ordinals, and a keyword index over exactly those chunks.

    python -m tests.reliability.crash --kills 10 --seed 7
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import fcntl
import json
import os
import pty
import random
import re
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.reliability.harness import (
    StoreSnapshot,
    index_json,
    loopback_only,
    make_bulk_corpus,
    make_corpus,
    popen_cli,
    run_cli,
    settings_for,
    snapshot,
    stderr_line,
)

_COUNT = re.compile(r"(\d+)/(\d+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\[A")


@dataclass
class Kill:
    """One kill -9: when, in which stage (last progress line), what the store looked like."""

    cycle: int
    after_s: float
    where: str
    stage: str
    finished_first: bool
    after_kill: dict[str, Any]
    after_rerun: dict[str, Any]
    problems: list[str] = field(default_factory=list)


@dataclass
class CrashReport:
    """The reference build and every kill with its outcome."""

    seed: int
    files: int
    reference: dict[str, Any]
    clean_build_s: float
    kills: list[Kill] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [f"cycle {k.cycle} (kill after {k.after_s:.1f}s, {k.where}): {p}"
                for k in self.kills for p in k.problems]

    def summary(self) -> dict[str, Any]:
        real = [k for k in self.kills if not k.finished_first]
        modes: dict[str, int] = {}
        for k in real:
            mode = k.where.split("+")[0]
            modes[mode] = modes.get(mode, 0) + 1
        reference_articles = self.reference.get("articles", 0)
        return {"seed": self.seed, "files": self.files, "reference": self.reference,
                "clean_build_s": round(self.clean_build_s, 1), "kills": len(real),
                "runs_that_finished_before_the_kill": len(self.kills) - len(real),
                "kills_by_moment": modes,
                "kills_leaving_a_partial_store": sum(
                    1 for k in real if 0 < k.after_kill.get("articles", 0) < reference_articles
                    or k.after_kill.get("orphans", 0)),
                "kills_leaving_orphan_chunks": sum(1 for k in real
                                                   if k.after_kill.get("orphans", 0)),
                "orphan_chunks_left_by_kills": sum(k.after_kill.get("orphans", 0)
                                                   for k in real),
                "converged": sum(1 for k in self.kills if not k.problems),
                "problems": self.problems}


class _StderrWatcher:
    """Reads a child's stderr (tqdm bars) in the background and notes when stages begin.

    Events: "embed" (first embedding progress), "embed_done" (all chunks embedded: the store
    writes follow), "keyword" (keyword index and generation stamp).
    """

    def __init__(self, stream: Any) -> None:
        self.events: dict[str, float] = {}
        self.last = ""
        self.text: list[str] = []
        self._began = time.monotonic()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    @property
    def writing_after(self) -> float | None:
        return self.events.get("embed")

    def _note(self, line: str) -> None:
        if not line:
            return
        self.last = line
        now = time.monotonic() - self._began
        if line.startswith("embed"):
            self.events.setdefault("embed", now)
            count = _COUNT.search(line)
            if count and count.group(1) == count.group(2) and count.group(2) != "0":
                self.events.setdefault("embed_done", now)
        elif line.startswith(("cleanup", "keyword")):
            self.events.setdefault("embed", now)
            self.events.setdefault("embed_done", now)
            if line.startswith("keyword"):
                self.events.setdefault("keyword", now)

    def _read(self, stream: Any) -> None:
        buffer = ""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            try:
                raw = stream.read(1)
            except OSError:  # EIO: the terminal's last writer has exited
                raw = b""
            if not raw:
                stream.close()
                return
            piece = decoder.decode(raw)
            if not piece:
                continue
            self.text.append(piece)
            if piece in "\r\n":
                self._note(_ANSI.sub("", buffer).strip())
                buffer = ""
                continue
            buffer += piece
            if piece == "]":  # a tqdm line is complete: "embed: 100%|…| 54/54 [00:01<00:00]"
                self._note(_ANSI.sub("", buffer).strip())

    def stage(self) -> str:
        """The last progress line as 'stage done/total' ('embed 54/54' = writing the store)."""
        if not self.last:
            return "start-up"
        name = self.last.split(":", 1)[0].strip()[:40] or "start-up"
        count = _COUNT.search(self.last)
        return f"{name} {count.group(0)}" if count else name

    def join(self) -> str:
        self._thread.join(timeout=10)
        return "".join(self.text)


def _index_process(paths: list[Path], data_dir: Path) -> tuple[subprocess.Popen, Any]:
    """`newsqa index PATHS --json` with stderr on a pseudo-terminal, as in a desk's terminal
    (progress bars are drawn only on a terminal); returns the process and the terminal side."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    try:
        proc = popen_cli("index", *map(str, paths), "--json", data_dir=data_dir,
                         stdout=subprocess.PIPE, stderr=slave)
    finally:
        os.close(slave)
    return proc, open(master, "rb", buffering=0)


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL the child's whole process group (it was started in its own session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def clean_build(paths: list[Path], data_dir: Path) -> tuple[StoreSnapshot, float, float]:
    """A build nobody interrupts: (snapshot, seconds, seconds spent chunking and writing)."""
    began = time.monotonic()
    proc, terminal = _index_process(paths, data_dir)
    watcher = _StderrWatcher(terminal)
    out, _ = proc.communicate(timeout=900)
    errors = watcher.join()
    elapsed = time.monotonic() - began
    if proc.returncode != 0:
        raise RuntimeError(f"clean build failed ({proc.returncode}): {errors[-2000:]}")
    report = json.loads(out)
    if report.get("errors"):
        raise RuntimeError(f"clean build reported errors: {report['errors']}")
    writing = elapsed - (watcher.writing_after or 0.0)
    return snapshot(settings_for(data_dir)), elapsed, writing


def keyword_problems(data_dir: Path, expected: frozenset[str]) -> list[str]:
    """The published keyword index must cover exactly the store's chunks."""
    from index.keyword import KeywordIndex

    index = KeywordIndex.load(settings_for(data_dir).keyword_dir)
    if index is None:
        return ["no keyword index published"]
    got = frozenset(index.chunk_ids)
    if got != expected:
        return [f"keyword index has {len(got)} chunks, store {len(expected)} "
                f"(missing {len(expected - got)}, extra {len(got - expected)})"]
    return []


def converge_problems(data_dir: Path, reference: StoreSnapshot) -> tuple[StoreSnapshot, list[str]]:
    """Compare a finished store with the clean build."""
    snap = snapshot(settings_for(data_dir))
    problems = snap.problems()
    if snap.article_ids != reference.article_ids:
        problems.append(f"articles differ from the clean build: "
                        f"missing {sorted(reference.article_ids - snap.article_ids)[:3]}, "
                        f"extra {sorted(snap.article_ids - reference.article_ids)[:3]}")
    if snap.chunk_ids != reference.chunk_ids:
        problems.append(f"chunks differ from the clean build: {snap.chunk_count} vs "
                        f"{reference.chunk_count}")
    problems += keyword_problems(data_dir, snap.chunk_ids)
    return snap, problems


def _kill_at_random(paths: list[Path], data_dir: Path, rng: random.Random,
                    write_window: float, startup_share: float, write_delay: float = 0.6
                    ) -> tuple[float, str, str, bool]:
    """Start an indexer and SIGKILL it at a random moment.

    Returns (seconds, where: the anchor, last progress line, finished before the kill).

    Where: during start-up (`startup_share`), or just after embedding finished (while article
    records are written), anywhere in the measured write window after embedding began, or
    while the keyword index and generation stamp are published.
    """
    began = time.monotonic()
    proc, terminal = _index_process(paths, data_dir)
    watcher = _StderrWatcher(terminal)
    pick = rng.random()
    if pick < startup_share:
        anchor, delay = "", rng.uniform(0.3, 6.0)
    elif pick < startup_share + 0.4:
        anchor, delay = "embed_done", rng.uniform(0.0, write_delay)
    elif pick < startup_share + 0.65:
        anchor, delay = "embed", rng.uniform(0.0, write_window)
    else:
        anchor, delay = "keyword", rng.uniform(0.0, 0.4)
    finished = False
    while True:
        if proc.poll() is not None:
            finished = True
            break
        start = 0.0 if not anchor else watcher.events.get(anchor)
        if start is not None and time.monotonic() - began >= start + delay:
            break
        time.sleep(0.01)
    stage = watcher.stage()
    after = time.monotonic() - began
    if not finished:
        kill_group(proc)
    watcher.join()
    return after, f"{anchor or 'start-up'}+{delay:.2f}s", stage, finished


def run_crashes(work: Path, *, kills: int, seed: int, extra_articles: int = 24,
                kills_per_cycle: int = 2, startup_share: float = 0.2,
                reference_builder: Callable[[list[Path]], StoreSnapshot] | None = None,
                write_window: float | None = None, write_delay: float = 0.6,
                log: Any = None) -> CrashReport:
    """`kills` kill -9s, in cycles of up to `kills_per_cycle` kills on one data folder (each
    kill hits the re-run of the previous one), each cycle ending with a complete re-run.

    The reference is a clean build by the CLI (which also measures the write window), or
    what `reference_builder(paths)` returns (e.g. an in-process build with a loaded model).
    """
    log = log or stderr_line
    corpus = make_corpus(work / "articles")
    make_bulk_corpus(work / "articles", extra_articles)
    paths = [corpus]
    clean_s = 0.0
    if reference_builder is not None:
        reference = reference_builder(paths)
    else:
        reference, clean_s, measured = clean_build(paths, work / "clean")
        write_window = write_window or measured
        log(f"clean build: {reference.article_count} articles, {reference.chunk_count} chunks "
            f"in {clean_s:.1f}s ({measured:.1f}s of it chunking, embedding and writing)")
    write_window = write_window or 5.0
    if reference.problems():
        raise RuntimeError(f"the clean build itself is inconsistent: {reference.problems()}")
    report = CrashReport(seed, len(list(corpus.iterdir())), reference.to_dict(), clean_s)
    rng = random.Random(seed)
    done, cycle = 0, 0
    while done < kills and cycle < kills * 3:
        cycle += 1
        data_dir = work / f"crash-{cycle:02d}"
        kill: Kill | None = None
        for _ in range(min(kills_per_cycle, kills - done)):
            after_s, where, stage, finished = _kill_at_random(
                paths, data_dir, rng, write_window, startup_share, write_delay)
            after = snapshot(settings_for(data_dir))
            problems = [] if after.opened else [f"store does not open after kill: {after.error}"]
            if after.incomplete_articles:
                problems.append(f"visible articles missing chunks after the kill: "
                                f"{list(after.incomplete_articles)[:3]}")
            kill = Kill(cycle, after_s, where, stage, finished, after.to_dict(), {}, problems)
            report.kills.append(kill)
            done += 0 if finished else 1
            log(f"cycle {cycle}: {'finished before the kill' if finished else 'killed'} after "
                f"{after_s:.1f}s ({where}; last progress: {stage}); store {after.to_dict()}")
            if finished or after.chunk_ids == reference.chunk_ids:
                break  # nothing left for another kill to interrupt in this folder
        assert kill is not None
        rerun = None
        if not kill.finished_first:  # a run that finished needs no re-run, only the check
            rerun = run_cli("index", *map(str, paths), "--json", "--quiet",
                            data_dir=data_dir, timeout=900)
        snap, problems = converge_problems(data_dir, reference)
        if rerun is not None and rerun.returncode != 0:
            problems.insert(0, f"re-run exited {rerun.returncode}: {rerun.stderr[-500:]}")
        elif rerun is not None:
            index_json(rerun)
        kill.after_rerun = snap.to_dict()
        kill.problems += problems
        log(f"cycle {cycle}: re-run -> {snap.to_dict()}"
            + (f" PROBLEMS: {problems}" if problems else " converged"))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--articles", type=int, default=60,
                        help="generated articles besides the seed and the small corpus")
    parser.add_argument("--work", type=Path, help="keep the stores here (default: a temp dir)")
    args = parser.parse_args(argv)
    loopback_only()
    with tempfile.TemporaryDirectory(prefix="newsqa-crash-") as tmp:
        work = args.work or Path(tmp)
        report = run_crashes(work, kills=args.kills, seed=args.seed,
                             extra_articles=args.articles)
    print(json.dumps(report.summary(), indent=2))
    return 1 if report.problems or not report.kills else 0


if __name__ == "__main__":
    sys.exit(main())
