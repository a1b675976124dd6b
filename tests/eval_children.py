"""Child-process targets for the tests of qa.eval.machine.in_child (importable when spawned)."""

from __future__ import annotations

import os
from typing import Any


def report_answer(value: int, queue: Any) -> None:
    queue.put({"answer": value * 2})


def die_silently(queue: Any) -> None:
    os._exit(3)
