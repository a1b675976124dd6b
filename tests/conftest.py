"""Shared fixtures: offline environment, a recording guard against non-loopback sockets, one
model, one browser, and `require` for parts a test cannot run without."""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from index.settings import Settings, apply_offline_env

apply_offline_env()

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_ARTICLE = SEEDS / "000_e1213e88b6fc4d83.txt"
SHARED_EVAL = ROOT.parent / "shared" / "eval" / "realtimeqa"
TEST_OUTPUT = ROOT / "test-output"


def in_ci() -> bool:
    """True in CI (`CI=true`), where a missing part is a failure, not a skip."""
    return os.environ.get("CI") == "true"


def require(condition: bool, what: str) -> None:
    """Run the test only when `condition` holds: skip locally, fail in CI (`CI=true`), so
    that a green CI run means every test really ran. `what` names the missing part."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"required in CI but missing: {what}", pytrace=False)
    pytest.skip(f"missing: {what}")


# --- the in-process network guard (the second net; the first is the network namespace) -------

def is_loopback_address(address: object) -> bool:
    """True for AF_UNIX paths and loopback hosts; anything else is off limits in tests."""
    if isinstance(address, (str, bytes)):
        return True
    if not isinstance(address, tuple) or not address:
        return False
    host = str(address[0]).split("%", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NetworkGuard:
    """Refuses non-loopback connects and sends, and records every attempt, so that a test
    fails at teardown even when a library swallowed the refusal."""

    def __init__(self) -> None:
        self.attempts: list[str] = []
        self._lock = threading.Lock()
        self._real = {name: getattr(socket.socket, name)
                      for name in ("connect", "connect_ex", "sendto")}
        self.connect = self._wrap("connect")
        self.connect_ex = self._wrap("connect_ex")
        self.sendto = self._wrap("sendto")

    def _refuse(self, call: str, address: object) -> None:
        message = (f"test tried socket.{call} to {address!r} (thread "
                   f"{threading.current_thread().name}); newsqa must work offline")
        with self._lock:
            self.attempts.append(message)
        raise RuntimeError(message)

    def _wrap(self, call: str) -> Any:
        real = self._real[call]
        guard = self

        def guarded(sock: socket.socket, *args: Any) -> Any:
            address = args[-1]  # connect(addr), connect_ex(addr), sendto(data[, flags], addr)
            if not is_loopback_address(address):
                guard._refuse(call, address)
            return real(sock, *args)

        guarded.__name__ = call
        return guarded

    def install(self) -> None:
        socket.socket.connect = self.connect  # type: ignore[method-assign]
        socket.socket.connect_ex = self.connect_ex  # type: ignore[method-assign]
        socket.socket.sendto = self.sendto  # type: ignore[method-assign]

    def installed(self) -> bool:
        return socket.socket.connect is self.connect and socket.socket.sendto is self.sendto

    def take(self) -> list[str]:
        """The attempts recorded since the last call (and forget them)."""
        with self._lock:
            taken, self.attempts = self.attempts, []
        return taken


NETWORK_GUARD = NetworkGuard()


def install_socket_guard() -> None:
    """Refuse (and record) non-loopback connections in this process."""
    NETWORK_GUARD.install()


install_socket_guard()


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    """Autouse: every test runs with the guard in place; any non-loopback attempt during the
    test (from any thread, caught or not) fails it at teardown."""
    install_socket_guard()
    earlier = NETWORK_GUARD.take()  # attempts between tests (e.g. a session fixture's)
    yield
    attempts = earlier + NETWORK_GUARD.take()
    assert NETWORK_GUARD.installed(), "a test removed the network guard"
    if attempts:
        pytest.fail("non-loopback network attempts:\n" + "\n".join(attempts[:20]),
                    pytrace=False)


# --- real parts, loaded once -------------------------------------------------------------------

@pytest.fixture(scope="session")
def embedder():
    """The real bundled all-MiniLM-L6-v2, loaded once for the whole session."""
    from index.embedding import get_embedder

    model = get_embedder()
    model.warm_up()
    return model


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for every browser test (tests/browser.py launches it)."""
    from tests.browser import chromium

    with chromium() as launched:
        yield launched


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings writing into a fresh temporary data folder."""
    return Settings(data_dir=tmp_path / "data", seeds_dir=SEEDS)
