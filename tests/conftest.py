"""Shared fixtures: offline environment, a guard against non-loopback sockets, one model."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from index.settings import Settings, apply_offline_env

apply_offline_env()

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SEED_ARTICLE = SEEDS / "000_e1213e88b6fc4d83.txt"
SHARED_EVAL = ROOT.parent / "shared" / "eval" / "realtimeqa"
TEST_OUTPUT = ROOT / "test-output"

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


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


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not is_loopback_address(address):
        raise RuntimeError(f"test tried to open a network connection to {address!r}; "
                           "newsqa must work offline")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not is_loopback_address(address):
        raise RuntimeError(f"test tried to open a network connection to {address!r}; "
                           "newsqa must work offline")
    return _real_connect_ex(self, address)


def install_socket_guard() -> None:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


install_socket_guard()


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    """Autouse: every test runs with the loopback-only guard in place (re-installed if undone)."""
    install_socket_guard()
    yield
    assert socket.socket.connect is _guarded_connect, "a test removed the network guard"


@pytest.fixture(scope="session")
def embedder():
    """The real bundled all-MiniLM-L6-v2, loaded once for the whole session."""
    from index.embedding import get_embedder

    model = get_embedder()
    model.warm_up()
    return model


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings writing into a fresh temporary data folder."""
    return Settings(data_dir=tmp_path / "data", seeds_dir=SEEDS)
