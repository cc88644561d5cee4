"""Run a server app on a free loopback port in a background thread (an ASGI app on uvicorn, or an aiohttp app),
or an ASGI app in the foreground on a socket of `harness.protocol.listen_socket` (the CLI's servers).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from aiohttp import web

from harness.protocol import host_port, listen_socket

__all__ = ["ServerThread", "base_url", "free_port", "serve_in_thread", "serve_on"]

_STARTUP_TIMEOUT_S = 10.0
_GRACEFUL_SHUTDOWN_S = 1.0


def base_url(host: str, port: int) -> str:
    """`http://host:port`, with an IPv6 host in brackets."""
    return f"http://{host_port(host, port)}"


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free on `host` right now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _uvicorn(app: Any, log_level: str, graceful_shutdown_s: float) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        log_level=log_level,
        lifespan="auto",
        access_log=False,
        timeout_graceful_shutdown=max(int(graceful_shutdown_s), 1),
    )
    return uvicorn.Server(config)


def serve_on(sock: socket.socket, app: Any, log_level: str = "warning", graceful_shutdown_s: float = 5.0) -> None:
    """Serve an ASGI app on uvicorn on a listening `sock` in this thread, until SIGINT or SIGTERM.

    Stopping closes the socket at once (a new server can bind the port), then gives requests in flight
    `graceful_shutdown_s` to finish: a client that never finishes its request does not keep the process alive.
    """
    try:
        _uvicorn(app, log_level, graceful_shutdown_s).run(sockets=[sock])
    except KeyboardInterrupt:  # as uvicorn.run does
        pass
    finally:
        sock.close()


class ServerThread:
    """A server in its own thread and event loop, so it never shares a loop with the client it serves.

    ASGI apps run on uvicorn (with their lifespan); `aiohttp.web.Application`s on aiohttp's own server, with
    handler cancellation on, as `vapi-harness proxy` serves them. The socket is bound by `start`, in the
    caller's thread, so a port in use raises `harness.protocol.ListenError` there. Stopping is graceful:
    streams in flight get a second to finish.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        if not isinstance(app, web.Application):
            self._server = _uvicorn(app, log_level, _GRACEFUL_SHUTDOWN_S)
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vapi-harness-server", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc

    async def _serve(self) -> None:
        assert self._sock is not None
        if self._server is not None:
            await self._server.serve(sockets=[self._sock])
            return
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = web.AppRunner(
            self.app, access_log=None, handler_cancellation=True, shutdown_timeout=_GRACEFUL_SHUTDOWN_S
        )
        await runner.setup()
        try:
            await web.SockSite(runner, self._sock).start()
            self._started.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()

    @property
    def started(self) -> bool:
        """Whether the socket is bound."""
        return self._server.started if self._server is not None else self._started.is_set()

    def start(self) -> ServerThread:
        """Bind, start and wait until the server accepts (bounded wait)."""
        self._sock = listen_socket(self.host, self.port)
        self.port = self._sock.getsockname()[1]
        self._thread.start()
        for _ in range(int(_STARTUP_TIMEOUT_S / 0.01)):
            if self.started or self._error or not self._thread.is_alive():
                break
            self._thread.join(0.01)
        if not self.started:
            self._sock.close()
            raise RuntimeError(f"The server on {self.url} did not start: {self._error!r}")
        return self

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:54321`."""
        return base_url(self.host, self.port)

    def stop(self) -> None:
        """Ask the server to exit and wait for it (bounded); stopping twice is harmless."""
        if not self._thread.is_alive():
            return
        if self._server is not None:
            self._server.should_exit = True
        elif self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(_STARTUP_TIMEOUT_S)
        if self._thread.is_alive():
            if self._server is not None:
                self._server.force_exit = True
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
