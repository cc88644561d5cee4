"""Binding a server's port: every server of ours starts on a socket made here, so all of them fail the same way.

The socket is bound and listening before the server says where it is, so a line naming the URL is never printed
for a server that then fails to start. `SO_REUSEADDR` is set (as uvicorn and asyncio set it, on POSIX), so a
server restarts on its port at once after a stop that left connections in TIME_WAIT; `SO_REUSEPORT` is not, so
two live servers never share a port by accident.
"""

from __future__ import annotations

import errno
import os
import socket
from typing import Any

__all__ = ["ListenError", "host_port", "listen_socket"]

_BACKLOG = 2048  # uvicorn's default; aiohttp's (128) is too few for a load test's burst of connects
_REASONS = {
    errno.EADDRINUSE: "the address is already in use",
    errno.EADDRNOTAVAIL: "the address is not one of this machine's",
    errno.EACCES: "permission denied (ports below 1024 need privileges)",
}


class ListenError(OSError):
    """A server could not listen; the message is one line: `cannot listen on HOST:PORT: REASON`."""

    def __init__(self, host: str, port: int, reason: str, code: int | None = None) -> None:
        super().__init__(f"cannot listen on {host_port(host, port)}: {reason}")
        self.errno = code
        self.host = host
        self.port = port
        self.reason = reason


def host_port(host: str, port: int) -> str:
    """`host:port`, with an IPv6 host in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _address(host: str, port: int) -> tuple[socket.AddressFamily, Any]:
    """The family and address to bind: IPv4 first for a name that has both (`localhost`), a literal as given."""
    if not 0 <= port <= 65535:  # getaddrinfo would wrap 70000 round to 4464
        raise ListenError(host, port, "the port is not between 0 and 65535")
    try:
        found = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ListenError(host, port, f"the host does not resolve ({reason})") from None
    family, _, _, _, address = min(found, key=lambda info: info[0] != socket.AF_INET)
    return family, address


def listen_socket(host: str, port: int, backlog: int = _BACKLOG) -> socket.socket:
    """A TCP socket bound to (`host`, `port`), listening and non-blocking; port 0 picks a free one.

    Raises `ListenError` naming host:port and the operating system's reason: the port is taken, the address is
    not this machine's, the name does not resolve. Read the port back with `sock.getsockname()[1]`.
    """
    family, address = _address(host, port)
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say so, and without it Nagle's algorithm
    # holds a stream's small chunks back for the peer's delayed ACK (40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if os.name == "posix":  # on Windows SO_REUSEADDR would let a second server take a port in use
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        raise ListenError(host, port, _REASONS.get(exc.errno or 0) or exc.strerror or str(exc), exc.errno) from None
    sock.setblocking(False)
    return sock
