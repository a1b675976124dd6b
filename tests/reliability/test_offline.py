"""Offline by construction: `make test` runs pytest in a network namespace that holds only
loopback, so every process the tests start is offline for real; the in-process guard is the
second net and fails a test even when a library swallowed its refusal."""

from __future__ import annotations

import contextlib
import errno
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import NETWORK_GUARD, ROOT, require

#: TEST-NET-1 (RFC 5737): never routed; inside the namespace there is no route at all.
UNROUTABLE = ("192.0.2.1", 80)

CONNECT = f"""
import socket, sys
try:
    socket.create_connection({UNROUTABLE!r}, timeout=5)
except OSError as exc:
    print(exc.errno, type(exc).__name__, exc)
    sys.exit(0)
print("connected")
sys.exit(1)
"""


def network_interfaces() -> list[str]:
    """Interfaces of this process's network namespace (/sys/class/net shows the host's)."""
    return sorted(name for _, name in socket.if_nameindex())


def in_loopback_namespace() -> bool:
    return network_interfaces() == ["lo"]


def test_tests_run_in_a_loopback_only_network_namespace() -> None:
    require(in_loopback_namespace(),
            f"a loopback-only network namespace (`make test` as root); interfaces here: "
            f"{network_interfaces()}")


def test_a_subprocess_cannot_reach_the_network() -> None:
    """A child process (no pytest guard in it) gets "network is unreachable"."""
    require(in_loopback_namespace(), "a loopback-only network namespace (`make test` as root)")
    child = subprocess.run([sys.executable, "-c", CONNECT], capture_output=True, text=True,
                           timeout=60)
    assert child.returncode == 0, (child.stdout, child.stderr)
    number = int(child.stdout.split()[0])
    assert number == errno.ENETUNREACH, child.stdout


def test_loopback_still_works_in_the_namespace() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            conn, _ = server.accept()
            conn.close()


def test_guard_records_a_refused_connect_even_when_it_is_swallowed() -> None:
    """A library that catches the refusal does not hide it: the attempt is recorded, and the
    autouse fixture would fail the test at teardown (here the record is taken first)."""
    NETWORK_GUARD.take()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        with contextlib.suppress(Exception):  # what a careless library does
            sock.connect(UNROUTABLE)
        with contextlib.suppress(Exception):
            sock.sendto(b"x", UNROUTABLE)
    finally:
        sock.close()
    attempts = NETWORK_GUARD.take()
    assert len(attempts) == 2, attempts
    assert all("192.0.2.1" in attempt for attempt in attempts), attempts


def test_guard_refuses_before_any_packet_is_sent() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, \
            pytest.raises(RuntimeError, match="must work offline"):
        sock.connect(UNROUTABLE)
    assert NETWORK_GUARD.take()


SWALLOWING_TEST = """
import contextlib
import socket


def test_swallows_the_refusal():
    with socket.socket() as sock, contextlib.suppress(Exception):
        sock.connect(("192.0.2.1", 80))
"""


def test_a_swallowed_attempt_fails_the_test_at_teardown(tmp_path: Path) -> None:
    """A separate pytest run with this suite's conftest: the test body passes, its teardown
    reports the attempt, and the run fails."""
    (tmp_path / "test_swallow.py").write_text(SWALLOWING_TEST, encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "tests.conftest", "-q",
                          "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
                          str(tmp_path / "test_swallow.py")],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 1, run.stdout[-2000:]
    assert "1 passed, 1 error" in run.stdout, run.stdout[-2000:]
    assert "non-loopback network attempts" in run.stdout and "192.0.2.1" in run.stdout
