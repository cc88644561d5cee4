"""The upstream of `loadgen.py`: the fake LLM's streamed reply, each chunk sent on a precise schedule.

The benchmark counts a late chunk as the load generator's timing error, so its upstream must be far more
punctual than the 2 ms the targets allow. `vapi-harness fake-llm` (Starlette on uvicorn) is not at 200 open
streams, 9,500 chunks a second: a lean asyncio client sees its chunks up to 15 ms late at p99 on a 2-core
machine. This server sends the same bytes (`harness.fake_llm.script.plan_reply` plans them), each frame due at
a fixed time from the request's arrival (the first content to within µs), and speaks only the HTTP/1.1 a
benchmark needs: keep-alive requests with a Content-Length body, chunked replies.

    python -m benchmarks.paced_upstream --port 8000 --ttft-ms 50 --chunk-delay-ms 20 --reply "w0 w1 w2"
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time

from harness.fake_llm.app import sleep_precisely
from harness.fake_llm.script import FakeLLMConfig, plan_reply

__all__ = ["main"]

_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
_MAX_HEAD = 64 * 1024


class _Connection(asyncio.Protocol):
    def __init__(self, config: FakeLLMConfig, ids: itertools.count[int]) -> None:
        self.config = config
        self.ids = ids
        self.buffer = b""
        self.transport: asyncio.WriteTransport | None = None
        self.playing: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a TCP transport: it writes

    def connection_lost(self, exc: Exception | None) -> None:
        if self.playing is not None:
            self.playing.cancel()

    def data_received(self, data: bytes) -> None:
        arrived = time.perf_counter()
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buffer) > _MAX_HEAD and self.transport is not None:
                self.transport.close()
            return
        length = 0
        for line in self.buffer[:end].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(self.buffer) < end + 4 + length:
            return
        body, self.buffer = self.buffer[end + 4 : end + 4 + length], self.buffer[end + 4 + length :]
        self.playing = asyncio.get_running_loop().create_task(self._play(json.loads(body), arrived))

    async def _play(self, body: dict[str, object], arrived: float) -> None:
        transport = self.transport
        assert transport is not None
        transport.write(_HEAD)
        due = arrived
        for i, frame in enumerate(plan_reply(self.config, body, f"chatcmpl-paced-{next(self.ids)}")):
            due += frame.delay_s
            wait = due - time.perf_counter()
            if wait > 0:  # the role chunk and the first word to the µs (a timer alone is up to 1 ms late)
                await (sleep_precisely(wait) if i < 2 else asyncio.sleep(wait))
            if frame.data:
                transport.write(b"%x\r\n%s\r\n" % (len(frame.data), frame.data))
        transport.write(b"0\r\n\r\n")
        self.playing = None


async def _serve(port: int, config: FakeLLMConfig) -> None:
    ids = itertools.count()
    server = await asyncio.get_running_loop().create_server(lambda: _Connection(config, ids), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.paced_upstream", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ttft-ms", type=float, default=50.0)
    parser.add_argument("--chunk-delay-ms", type=float, default=20.0)
    parser.add_argument("--reply", default="w0 w1 w2")
    args = parser.parse_args(argv)
    config = FakeLLMConfig(ttft_ms=args.ttft_ms, chunk_delay_ms=args.chunk_delay_ms, reply=args.reply)
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(args.port, config))
    else:
        uvloop.run(_serve(args.port, config))


if __name__ == "__main__":
    main()
