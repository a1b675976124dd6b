"""Where the web chat binds and who may open it: loopback check, exposure warning, USER:PASS,
and a clear error when the address cannot be bound (instead of Gradio's traceback)."""

from __future__ import annotations

import errno
import ipaddress
import socket

from index.errors import SettingsError


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this machine."""
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, credentials: tuple[str, str] | None) -> str:
    """The warning to print when the chat is reachable from other machines without a password."""
    if credentials is not None or is_loopback(host):
        return ""
    return (f"newsqa: WARNING: serving on {host} without a password; anyone who can reach this "
            "machine can read and add articles. Set NEWSQA_AUTH=USER:PASS (or --auth).")


def parse_auth(auth: str) -> tuple[str, str] | None:
    """"USER:PASS" -> (user, pass); "" -> None."""
    if not auth:
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise SettingsError("auth must look like USER:PASS with both parts non-empty")
    return user, password


def bind_error(host: str, port: int, exc: OSError) -> SettingsError:
    """The one-line error for an address the web chat cannot listen on."""
    reason = exc.strerror or str(exc)
    return SettingsError(f"cannot serve the web chat on {host}:{port}: {reason} "
                         "(another program may be using it; choose another with --port "
                         "or NEWSQA_PORT)")


#: Bind failures that mean "not this port" (taken, or privileged); other failures (an address
#: this machine does not have) are left to the launch, which reports them the same way.
_PORT_ERRORS = frozenset({errno.EADDRINUSE, errno.EACCES})


def check_bindable(host: str, port: int) -> None:
    """Raise SettingsError naming host:port when that port is taken (or privileged).

    Checked before the first-start indexing, so a busy port fails at once and clearly rather
    than after minutes of indexing. Port 0 (any free port) always works.
    """
    if port == 0:
        return
    address = host.strip("[]")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((address, port))
    except OSError as exc:
        if exc.errno in _PORT_ERRORS:
            raise bind_error(host, port, exc) from None
