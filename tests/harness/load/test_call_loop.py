"""The call loop runs coroutines on its own thread for greenlets, and stops them when the greenlet is killed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import aiohttp
import gevent
import pytest

from harness.load.call_loop import CallLoop


@pytest.fixture
def call_loop() -> Iterator[CallLoop]:
    loop = CallLoop()
    yield loop
    loop.close()


def test_work_runs_on_another_thread_and_its_result_comes_back(call_loop: CallLoop) -> None:
    async def work(session: aiohttp.ClientSession) -> tuple[int, bool]:
        await asyncio.sleep(0.01)
        return threading.get_ident(), isinstance(session, aiohttp.ClientSession)

    ident, has_session = gevent.spawn(call_loop.run, work).get(timeout=10)
    assert ident != threading.get_ident() and has_session


def test_an_exception_in_the_work_reaches_the_greenlet(call_loop: CallLoop) -> None:
    async def work(session: aiohttp.ClientSession) -> None:
        raise LookupError("no such turn")

    with pytest.raises(LookupError, match="no such turn"):
        gevent.spawn(call_loop.run, work).get(timeout=10)


def test_killing_the_greenlet_cancels_the_work(call_loop: CallLoop) -> None:
    started, cancelled = threading.Event(), threading.Event()

    async def work(session: aiohttp.ClientSession) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    greenlet = gevent.spawn(call_loop.run, work)
    for _ in range(200):  # bounded: until the work is running
        if started.is_set():
            break
        gevent.sleep(0.01)
    greenlet.kill(timeout=10)
    assert started.is_set() and cancelled.wait(10)
