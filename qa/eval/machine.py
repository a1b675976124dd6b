"""The machine a figure was measured on, process memory, and running a step in a fresh child.

Benchmarks run each timed step in a spawned child process so that its memory peak is its own;
`in_child` never waits forever on a child that died before reporting.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import platform
import queue as queue_module
import resource
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from index.settings import Settings
from qa.errors import EvalError

CHILD_POLL_SECONDS = 2.0
CHILD_JOIN_SECONDS = 120.0


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else platform's guess)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def total_ram_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def environment(settings: Settings) -> dict[str, Any]:
    """Python, platform, cores, CPU, RAM and model: the context an eval report records."""
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpu_cores": os.cpu_count() or 0, "processor": cpu_model(),
            "ram_gib": round(total_ram_bytes() / 2**30, 1),
            "embedding_model": settings.embedding_model}


def machine_info(settings: Settings) -> dict[str, Any]:
    """Cores, CPU model, RAM, Python and library versions: the context of every benchmark."""
    info = environment(settings)
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    with contextlib.suppress(metadata.PackageNotFoundError):  # the version, not an import
        info["chromadb"] = metadata.version("chromadb")
    info["load_average"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    return info


def memory() -> dict[str, int]:
    """Current and peak resident memory of this process, in bytes (Linux /proc)."""
    out = {"rss": 0, "peak": 0}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                out["rss"] = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                out["peak"] = int(line.split()[1]) * 1024
    except OSError:
        out["peak"] = out["rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def peak_rss_mb() -> float:
    """This process's peak resident memory in MiB (getrusage; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def dir_bytes(path: Path) -> int:
    """Bytes of all files under `path` (files that vanish meanwhile count as 0)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).stat().st_size
    return total


def in_child(target: Callable[..., None], *args: Any,
             poll_seconds: float = CHILD_POLL_SECONDS) -> dict[str, Any]:
    """Run `target(*args, queue)` in a fresh spawned process and return what it put on the
    queue; EvalError when the child dies (or exits non-zero) before reporting."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=target, args=(*args, results))
    process.start()
    try:
        result = _wait_for_result(process, results, target.__name__, poll_seconds)
    finally:
        process.join(timeout=CHILD_JOIN_SECONDS)
    if process.exitcode not in (0, None):
        raise EvalError(f"benchmark child {target.__name__} failed (exit code "
                        f"{process.exitcode}) after reporting")
    return result


def _wait_for_result(process: Any, results: Any, name: str, poll_seconds: float
                     ) -> dict[str, Any]:
    while True:
        try:
            return results.get(timeout=poll_seconds)
        except queue_module.Empty:
            if not process.is_alive():
                raise EvalError(f"benchmark child {name} died (exit code "
                                f"{process.exitcode}) before reporting") from None
