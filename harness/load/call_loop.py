"""Where a load run's calls play: one OS thread per Locust process running asyncio, beside gevent's hub.

Locust's users are greenlets; their calls do not do I/O on gevent. Each call goes to this thread, where
`CallSimulator` plays it with `mock_vapi.reader.read_into` on one aiohttp session, and the greenlet waits.
Measured (docs/performance.md): reading paced streams on gevent, the first chunk reached our clock tens of
ms late at 200 users, while asyncio (uvloop) on its own thread timed it within a millisecond at less CPU.

Results come back to the hub through one gevent async watcher: the thread queues a callback and wakes the
hub, which runs it among the greenlets, so Locust's stats are only ever touched by the hub.
"""

from __future__ import annotations

import asyncio
import collections
import gc
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import aiohttp
import gevent
import gevent.event
from gevent import monkey

from mock_vapi.reader import new_session

__all__ = ["CallLoop"]

T = TypeVar("T")
_GC_THRESHOLD = 50_000


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # Windows: the standard loop
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class CallLoop:
    """An asyncio loop on a real OS thread with one aiohttp session; greenlets hand it coroutines and wait."""

    def __init__(self) -> None:
        # The collector pauses both threads while it runs, and a late chunk is a wrong measurement. What is alive
        # by the first call (modules, Locust, the users) stays alive: frozen, no collection scans it again. The
        # streams' objects die by reference counting; with the first threshold above what 200 open streams hold
        # (~35,000 objects), a collection runs only once cyclic garbage has grown that much: one ~20 ms pause
        # every several seconds instead of ~10 ms ones every second that scan every open stream.
        gc.freeze()
        gc.set_threshold(_GC_THRESHOLD, *gc.get_threshold()[1:])
        self._loop = _new_loop()
        self._session: aiohttp.ClientSession | None = None
        self._inbox: collections.deque[tuple[Callable[..., None], tuple[Any, ...]]] = collections.deque()
        self._wakeup = gevent.get_hub().loop.async_()
        self._wakeup.start(self._drain)
        # Locust patched `threading` to make greenlets: the original starts a thread of the OS.
        start_new_thread = monkey.get_original("_thread", "start_new_thread")
        start_new_thread(self._serve, ())

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def to_hub(self, callback: Callable[..., None], *args: Any) -> None:
        """From the loop's thread: run `callback(*args)` in gevent's hub, soon."""
        self._inbox.append((callback, args))
        self._wakeup.send()

    def _drain(self) -> None:
        for _ in range(len(self._inbox)):  # what is queued now; later arrivals wake the hub again
            callback, args = self._inbox.popleft()
            callback(*args)

    def run(self, work: Callable[[aiohttp.ClientSession], Coroutine[Any, Any, T]]) -> T:
        """In a greenlet: run `work(session)` on the loop and wait for it; killing the greenlet cancels it."""
        result: gevent.event.AsyncResult = gevent.event.AsyncResult()
        tasks: list[asyncio.Task[T]] = []

        def settle(task: asyncio.Task[T]) -> None:  # in the hub
            if task.cancelled():
                result.set_exception(asyncio.CancelledError())
            elif task.exception() is not None:
                result.set_exception(task.exception())
            else:
                result.set(task.result())

        async def start() -> T:
            if self._session is None:
                self._session = new_session(limit=0)
            return await work(self._session)

        def schedule() -> None:  # in the loop's thread
            task = self._loop.create_task(start())
            tasks.append(task)
            task.add_done_callback(lambda done: self.to_hub(settle, done))

        self._loop.call_soon_threadsafe(schedule)
        try:
            value: T = result.get()
        except BaseException:  # GreenletExit when Locust stops the user: the call stops too
            self._loop.call_soon_threadsafe(lambda: [task.cancel() for task in tasks])
            raise
        return value

    def close(self, timeout_s: float = 5.0) -> None:
        """In a greenlet: close the session (waiting at most `timeout_s`), then stop the loop and its thread."""

        async def shutdown(session: aiohttp.ClientSession) -> None:
            await session.close()

        if self._session is not None:
            with gevent.Timeout(timeout_s, False):
                self.run(shutdown)
        self._loop.call_soon_threadsafe(self._loop.stop)
