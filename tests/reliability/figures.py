"""The reliability figures of a test run, written to test-output/reliability.md as the tests
go (`make reliability-report` copies them into docs/reliability.md; tests never write tracked
files)."""

from __future__ import annotations

import json
import os
import platform
import socket
import time
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Where the figures go (git-ignored).
FIGURES_FILE = "reliability.md"
#: How many of the slowest tests the wall-time table lists.
SLOWEST = 15


def _cell(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, (str, int, bool)) or value is None:
        text = str(value)
    else:
        text = json.dumps(value, ensure_ascii=False)
    return text.replace("|", "\\|").replace("\n", " ")


def figures_markdown(title: str, figures: Mapping[str, Any]) -> str:
    """One test's figures: a two-column table; long nested values as a JSON block below it."""
    rows, blocks = [], []
    for key, value in figures.items():
        cell = _cell(value)
        if isinstance(value, (dict, list, tuple)) and len(cell) > 120:
            blocks.append(f"{key}:\n\n```json\n{json.dumps(value, indent=2, ensure_ascii=False)}"
                          "\n```\n")
        else:
            rows.append(f"| {_cell(key)} | {cell} |")
    table = "| figure | value |\n|---|---|\n" + "\n".join(rows) + "\n" if rows else ""
    return f"### {title}\n\n{table}\n" + "\n".join(blocks)


class FiguresReport:
    """Appends each test's figures to one Markdown file, started afresh by the first test of
    a run that reports anything; at the end, the wall time of every reliability test."""

    def __init__(self, path: Path, command: str) -> None:
        self.path = path
        self.command = command
        self.started = False
        self.began = time.gmtime()
        self.load = os.getloadavg()
        self.seconds: dict[str, float] = defaultdict(float)
        self.outcomes: dict[str, str] = {}

    def _start(self) -> None:
        if self.started:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        load = ", ".join(f"{x:.1f}" for x in self.load)
        interfaces = sorted(name for _, name in socket.if_nameindex())
        network = ("a loopback-only network namespace" if interfaces == ["lo"]
                   else f"NO network namespace (interfaces {', '.join(interfaces)})")
        self.path.write_text(
            "## Figures from the last test run\n\n"
            f"Run started {time.strftime('%Y-%m-%d %H:%M UTC', self.began)} on "
            f"{platform.node()} ({os.cpu_count()} cores, load average {load} at the start), "
            f"in {network}: `{self.command}`. Written by the tests to "
            f"test-output/{FIGURES_FILE}.\n\n", encoding="utf-8")
        self.started = True

    def add(self, title: str, figures: Mapping[str, Any]) -> None:
        self._start()
        with self.path.open("a", encoding="utf-8") as out:
            out.write(figures_markdown(title, figures) + "\n")

    def timed(self, nodeid: str, seconds: float, outcome: str, phase: str) -> None:
        """One phase (setup, call, teardown) of a test: its time, and the outcome so far (a
        failed setup or teardown is an "error")."""
        if outcome == "failed" and phase != "call":
            outcome = "error"
        self.seconds[nodeid] += seconds
        if outcome != "passed" or nodeid not in self.outcomes:
            self.outcomes[nodeid] = outcome

    def finish(self) -> None:
        """Wall time per test file, and of the slowest tests (setup and teardown included)."""
        if not self.seconds:
            return
        self._start()
        per_file: dict[str, float] = defaultdict(float)
        for nodeid, seconds in self.seconds.items():
            per_file[nodeid.split("::")[0]] += seconds
        lines = ["### Wall time", "", "| file | seconds |", "|---|---|"]
        lines += [f"| {name} | {seconds:.0f} |" for name, seconds in sorted(per_file.items())]
        lines += [f"| all | {sum(per_file.values()):.0f} |", "",
                  f"The {SLOWEST} slowest tests:", "", "| test | outcome | seconds |",
                  "|---|---|---|"]
        slowest = sorted(self.seconds.items(), key=lambda item: -item[1])[:SLOWEST]
        lines += [f"| {_cell(nodeid.split('/')[-1])} | {self.outcomes.get(nodeid, '?')} | "
                  f"{seconds:.1f} |" for nodeid, seconds in slowest]
        with self.path.open("a", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")
