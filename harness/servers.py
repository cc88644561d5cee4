"""Run a server app on a free loopback port in a background thread: an ASGI app on uvicorn, or an aiohttp app."""

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

__all__ = ["ServerThread", "base_url", "free_port", "serve_in_thread"]

_STARTUP_TIMEOUT_S = 10.0
_GRACEFUL_SHUTDOWN_S = 1.0


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
    """A server in its own thread and event loop, so it never shares a loop with the client it serves.

    ASGI apps run on uvicorn (with their lifespan); `aiohttp.web.Application`s on aiohttp's own server, with
    handler cancellation on, as `vapi-harness proxy` serves them. Stopping is graceful: streams in flight get
    a second to finish.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.app = app
        self.host = host
        self.port = port
        self._server: uvicorn.Server | None = None
        if not isinstance(app, web.Application):
            config = uvicorn.Config(
                app,
                host=host,
                port=port,
                log_level=log_level,
                lifespan="auto",
                access_log=False,
                timeout_graceful_shutdown=int(_GRACEFUL_SHUTDOWN_S),
            )
            self._server = uvicorn.Server(config)
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
        if self._server is not None:
            await self._server.serve()
            return
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = web.AppRunner(
            self.app, access_log=None, handler_cancellation=True, shutdown_timeout=_GRACEFUL_SHUTDOWN_S
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
            self.port = runner.addresses[0][1]
            self._started.set()
            await self._stop.wait()
        finally:
            await runner.cleanup()

    @property
    def started(self) -> bool:
        """Whether the socket is bound."""
        return self._server.started if self._server is not None else self._started.is_set()

    def start(self) -> ServerThread:
        """Start and wait until the socket is bound (bounded wait)."""
        self._thread.start()
        for _ in range(int(_STARTUP_TIMEOUT_S / 0.01)):
            if self.started or self._error or not self._thread.is_alive():
                break
            self._thread.join(0.01)
        if not self.started:
            raise RuntimeError(f"The server on {self.host} did not start: {self._error!r}")
        if self._server is not None:
            self.port = self._server.servers[0].sockets[0].getsockname()[1]
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
