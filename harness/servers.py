"""Run an ASGI app on uvicorn, on a free loopback port, in a background thread."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

__all__ = ["ServerThread", "base_url", "free_port", "serve_in_thread"]

_STARTUP_TIMEOUT_S = 10.0


def base_url(host: str, port: int) -> str:
    """`http://host:port`, with an IPv6 host in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free on `host` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class ServerThread:
    """A uvicorn server in its own thread and event loop, so it never shares a loop with the client it serves."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level=log_level,
            lifespan="auto",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.app = app
        self.host = host
        self.port = port
        self._thread = threading.Thread(target=self._run, name="vapi-harness-server", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            asyncio.run(self.server.serve())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc

    def start(self) -> ServerThread:
        """Start and wait until the socket is bound (bounded wait)."""
        self._thread.start()
        for _ in range(int(_STARTUP_TIMEOUT_S / 0.01)):
            if self.server.started or self._error or not self._thread.is_alive():
                break
            self._thread.join(0.01)
        if not self.server.started:
            raise RuntimeError(f"The server on {self.host} did not start: {self._error!r}")
        sockets = self.server.servers[0].sockets
        self.port = sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:54321`."""
        return base_url(self.host, self.port)

    def stop(self) -> None:
        """Ask the server to exit and wait for it (bounded)."""
        self.server.should_exit = True
        self._thread.join(_STARTUP_TIMEOUT_S)
        if self._thread.is_alive():
            self.server.force_exit = True
            self._thread.join(_STARTUP_TIMEOUT_S)
            logging.getLogger(__name__).warning("The server thread did not stop in time")


@contextmanager
def serve_in_thread(app: Any, host: str = "127.0.0.1", port: int = 0) -> Iterator[ServerThread]:
    """Serve `app` for the duration of the block."""
    server = ServerThread(app, host, port).start()
    try:
        yield server
    finally:
        server.stop()
