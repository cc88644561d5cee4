"""Replies that are not HTTP, or that never end: each is named for what it is, and reading it stays bounded.

Every server here is a raw TCP server on loopback, so it can send what no HTTP library would.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest

from harness.checks import CheckContext, Expect, Status, Thresholds, run_checks
from harness.metrics import exchange_metrics
from harness.protocol import SSEDecoder, schema_errors
from mock_vapi import CustomLLMModel, MetadataSendMode, build_request
from mock_vapi.exchange import INVALID_JSON, Exchange, Outcome
from mock_vapi.reader import ReadLimits, new_session, read_into

pytestmark = pytest.mark.slow

Reply = Callable[["RawServer", asyncio.StreamWriter, bytes], Awaitable[None]]
MESSAGES = [{"role": "user", "content": "What time do you open?"}]
TINY_EVENT = (
    b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m",'
    b'"choices":[{"index":0,"delta":{"content":"a"}}]}\n\n'
)
SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"


class RawServer:
    """A TCP server that reads each HTTP request (head and Content-Length body) and lets `reply` answer it."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.sent_bytes = 0  # what `stream` managed to write before the client went away
        self.connections: set[asyncio.Task[None]] = set()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.connections.add(task)
        try:
            while True:  # keep-alive: a redirect's next request may come on the same connection
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                await self.reply(self, writer, head)
                if writer.is_closing():
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def stream(self, writer: asyncio.StreamWriter, block: bytes, total_bytes: int) -> None:
        """Write `block` again and again, up to `total_bytes`, while the client reads; then close."""
        try:
            while self.sent_bytes < total_bytes:
                writer.write(block)
                self.sent_bytes += len(block)
                await writer.drain()
        except ConnectionError:
            pass
        writer.close()


@asynccontextmanager
async def raw_server(reply: Reply) -> AsyncIterator[tuple[str, RawServer]]:
    """`(base_url, server)` for a raw server on a free loopback port."""
    server = RawServer(reply)
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1", server
    finally:
        listener.close()
        await listener.wait_closed()
        if server.connections:  # let each handler see the client hang up, so `sent_bytes` is final
            await asyncio.wait(server.connections, timeout=10.0)


async def read_reply(reply: Reply, limits: ReadLimits | None = None) -> tuple[Exchange, RawServer]:
    async with raw_server(reply) as (url, server), new_session() as session:
        model = CustomLLMModel(url=url, model="m", timeout_s=5.0, metadata_send_mode=MetadataSendMode.OFF)
        exchange = Exchange(build_request(model, MESSAGES), 0.0)
        await read_into(session, exchange, limits or ReadLimits(deadline_s=10.0))
        return exchange, server


def test_a_redirect_loop_is_called_a_redirect_loop_and_its_hops_are_recorded() -> None:
    async def ping_pong(server: RawServer, writer: asyncio.StreamWriter, head: bytes) -> None:
        target = b"/a" if b" /b " in head or b" /v1/" in head else b"/b"
        writer.write(b"HTTP/1.1 307 Temporary Redirect\r\nLocation: " + target + b"\r\nContent-Length: 0\r\n\r\n")

    exchange, _ = asyncio.run(read_reply(ping_pong))
    assert exchange.outcome is Outcome.REDIRECT_LOOP
    assert exchange.status is None
    assert len(exchange.redirects) == 10
    assert exchange.redirects[0].endswith("/v1/chat/completions")
    assert [url[-2:] for url in exchange.redirects[1:4]] == ["/a", "/b", "/a"]
    assert exchange.error is not None
    assert exchange.error.startswith("Redirect loop: http://127.0.0.1:")
    assert "/chat/completions -> " in exchange.error and "/a -> " in exchange.error
    assert exchange.error.endswith("... (10 redirects)")
    assert "message=" not in exchange.error and "closed" not in exchange.error


def test_a_redirect_chain_longer_than_the_limit_is_not_called_a_loop() -> None:
    async def onward(server: RawServer, writer: asyncio.StreamWriter, head: bytes) -> None:
        hop = len(head)  # a new path every time
        writer.write(b"HTTP/1.1 302 Found\r\nLocation: /hop%d\r\nContent-Length: 0\r\n\r\n" % hop)

    exchange, _ = asyncio.run(read_reply(onward, ReadLimits(deadline_s=10.0, max_redirects=3)))
    assert exchange.outcome is Outcome.REDIRECT_LOOP
    assert exchange.error is not None and exchange.error.startswith("Too many redirects: ")
    assert "(3 redirects without a response)" in exchange.error


def test_an_endless_status_line_is_a_malformed_status_line() -> None:
    async def endless(server: RawServer, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(b"HTTP/1.1 200 ")
        await server.stream(writer, b"x" * 65536, 100 * 1024 * 1024)

    exchange, server = asyncio.run(read_reply(endless))
    assert exchange.outcome is Outcome.BAD_RESPONSE
    assert exchange.error is not None
    assert exchange.error.startswith("Malformed status line: 'xxxx")
    assert "(longer than 8190 bytes)" in exchange.error
    assert len(exchange.error) < 200
    assert server.sent_bytes < 50 * 1024 * 1024  # the reader hung up long before the 100 MB


@pytest.mark.parametrize("shape", ["one header", "many headers"])
def test_a_100_mb_header_section_is_too_large_and_the_reader_stops_early(shape: str) -> None:
    async def huge(server: RawServer, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
        if shape == "one header":
            writer.write(b"X-Padding: ")
            await server.stream(writer, b"y" * 65536, 100 * 1024 * 1024)
        else:
            await server.stream(writer, b"".join(b"X-Pad-%d: %s\r\n" % (i, b"y" * 1000) for i in range(64)), 100 << 20)

    exchange, server = asyncio.run(read_reply(huge))
    assert exchange.outcome is Outcome.BAD_RESPONSE
    assert exchange.error is not None
    assert exchange.error.startswith("The response's header section is too large (")
    expected = "a header line over 16384 bytes" if shape == "one header" else "over 128 header lines"
    assert expected in exchange.error
    assert server.sent_bytes < 50 * 1024 * 1024


@pytest.mark.parametrize(
    ("status_line", "quoted", "why"),
    [
        (b"HELLO WORLD", "'HELLO WORLD'", "expected HTTP/"),
        (b"HTTP/1.1 abc OK", "'HTTP/1.1 abc OK'", "invalid status code"),
        (b"\x15\x03\x01\x00\x02\x02\x50", "'\\x15\\x03\\x01\\x00\\x02\\x02P'", "the endpoint speaks HTTPS"),
    ],
    ids=["not-http", "bad-status-code", "tls"],
)
def test_a_malformed_status_line_is_quoted(status_line: bytes, quoted: str, why: str) -> None:
    async def garbage(server: RawServer, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(status_line + b"\r\nContent-Length: 0\r\n\r\n")
        writer.close()

    exchange, _ = asyncio.run(read_reply(garbage))
    assert exchange.outcome is Outcome.BAD_RESPONSE
    assert exchange.error is not None
    assert exchange.error.startswith(f"Malformed status line: {quoted}")
    assert why in exchange.error


def test_a_bad_header_line_is_not_valid_http() -> None:
    async def bad_header(server: RawServer, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nthis is no header\r\nContent-Length: 0\r\n\r\n")
        writer.close()

    exchange, _ = asyncio.run(read_reply(bad_header))
    assert exchange.outcome is Outcome.BAD_RESPONSE
    assert exchange.error is not None
    assert exchange.error.startswith("The response is not valid HTTP: ")
    assert "'this is no header'" in exchange.error


def test_a_close_inside_the_head_says_so() -> None:
    async def half_a_head(server: RawServer, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
        writer.close()

    exchange, _ = asyncio.run(read_reply(half_a_head))
    assert exchange.outcome is Outcome.BROKEN
    assert exchange.error is not None
    assert exchange.error.endswith(
        "failed: the connection closed inside the response's head, after the status line 'HTTP/1.1 200 OK' and "
        "1 header line (no blank line ended the headers)"
    )


def test_a_close_before_any_byte_is_still_a_broken_connection() -> None:
    async def hang_up(server: RawServer, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.close()

    exchange, _ = asyncio.run(read_reply(hang_up))
    assert exchange.outcome is Outcome.BROKEN
    assert exchange.status is None and not exchange.redirects
    assert exchange.error is not None
    assert exchange.error.startswith("The request to http://127.0.0.1:")
    assert exchange.error.endswith("failed: Server disconnected")


# Floods: cut short, judged, and kept in bounded memory


def chunk_event(content: str) -> bytes:
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    body["choices"] = [{"index": 0, "delta": {"content": content}, "finish_reason": None}]
    return b"data: " + json.dumps(body).encode() + b"\n\n"


FLOODS = {
    "one tiny event repeated": TINY_EVENT * 500,
    "every event different": b"".join(chunk_event(f"word {i} ") for i in range(5000)),
}


@pytest.mark.parametrize("flood", list(FLOODS), ids=["repeated", "different"])
def test_a_1_gib_flood_of_events_is_cut_and_judged_in_bounded_memory(flood: str) -> None:
    block = FLOODS[flood]

    async def flood_of_events(server: RawServer, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(SSE_HEAD)
        await server.stream(writer, block, 1 << 30)

    async def read_and_judge() -> tuple[Exchange, RawServer, list[Any], int, int]:
        schema_errors("chunk", {})  # the schemas are built once per process, not per exchange
        gc.collect()
        tracemalloc.start()
        try:
            exchange, server = await read_reply(flood_of_events)
            findings = run_checks(CheckContext("flood", Expect.TURN, Thresholds()), exchange)
            exchange_metrics(exchange)
            gc.collect()
            kept, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return exchange, server, findings, kept, peak

    limits = ReadLimits()
    exchange, server, findings, kept_bytes, peak_bytes = asyncio.run(read_and_judge())
    assert exchange.outcome is Outcome.TOO_LARGE
    assert exchange.error is not None and exchange.error.startswith(f"The stream exceeded {limits.max_events} events (")
    assert len(exchange.events) == limits.max_events
    assert server.sent_bytes < 100 * 1024 * 1024
    # What stays (the exchange: its events and the first 64 KiB of its body, ~2.5 MB; and the trees of the payloads
    # read last, at most 5,000 for the whole process) and the most reading and judging took. Before the bounds,
    # one such exchange kept 25,000 to 35,000 events, its 4 MiB body and a JSON tree per event: 50 to 60 MB.
    assert exchange.body_cut and len(exchange.body) == 64 * 1024 and exchange.body_bytes > len(exchange.body)
    assert kept_bytes < 16 * 1024 * 1024, kept_bytes
    assert peak_bytes < 32 * 1024 * 1024, peak_bytes
    verdicts = {f.check: f.status for f in findings}
    assert verdicts["chunks_match_openai_schema"] is Status.PASSED
    assert verdicts["body_within_size_limit"] is Status.FAILED


def test_an_sse_body_that_is_cut_still_reads_as_not_json_and_its_excerpt_says_it_goes_on() -> None:
    async def flood_of_events(server: RawServer, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(SSE_HEAD)
        await server.stream(writer, TINY_EVENT * 500, 8 * 1024 * 1024)

    exchange, _ = asyncio.run(read_reply(flood_of_events))
    assert exchange.body_cut
    assert exchange.body_json is INVALID_JSON
    assert exchange.body_excerpt(100).endswith("…")


def test_a_deviation_repeated_on_every_line_is_kept_100_times_and_counted_every_time() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"event: x\n" * 10_000 + b"data: {}\n\n", 1.0)
    assert decoder.deviation_counts == {"event_field": 10_000}
    assert len(decoder.deviations) == 100


def test_chunks_of_one_shape_get_one_verdict() -> None:
    # A chunk found valid is remembered by its shape (numbers, and strings the schema does not name, blurred);
    # a chunk of the same shape must then get the same verdict, or remembering it would change one.
    verdicts = set()
    deltas = [{"content": "hi"}, {"content": None}, {"role": "assistant"}, {"role": "robot"}, {"content": 3}]
    for delta, finish, created, kind in itertools.product(
        deltas, [None, "stop", "tool_calls", "done", 1], [1, 2.0, 1.5, "1", True], ["chat.completion.chunk", "other"]
    ):
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        chunk = {"id": "c1", "object": kind, "created": created, "model": "m", "choices": [choice]}
        valid = schema_errors("chunk", chunk) == []
        assert (schema_errors("chunk", chunk) == []) is valid  # now remembered, if valid
        text = json.dumps(chunk).replace('"hi"', '"other words"').replace('"c1"', '"c2"').replace(": 2.0", ": 7.0")
        assert (schema_errors("chunk", json.loads(text)) == []) is valid, text
        verdicts.add(valid)
    assert verdicts == {True, False}


# JSON nested past what Python's parser can follow: a finding that says so, never a RecursionError

DEEP = 100_000


def _deep_stream(data: bytes) -> Reply:
    async def reply(server: RawServer, writer: asyncio.StreamWriter, head: bytes) -> None:
        writer.write(SSE_HEAD + b"data: " + data + b"\n\ndata: [DONE]\n\n")
        writer.close()

    return reply


def test_an_event_nested_100000_deep_is_not_json_and_says_why() -> None:
    nested = b'{"choices":[{"index":0,"delta":{"content":' + b"[" * DEEP + b"]" * DEEP + b"}}]}"
    exchange, _ = asyncio.run(read_reply(_deep_stream(nested)))
    findings = {f.check: f for f in run_checks(CheckContext("deep", Expect.TURN, Thresholds()), exchange)}
    assert findings["sse_data_is_json"].status is Status.FAILED
    assert "nested too deep to parse" in findings["sse_data_is_json"].detail


def test_tool_call_arguments_nested_100000_deep_are_not_json_and_say_why() -> None:
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": "[" * DEEP}}
    delta = {"role": "assistant", "tool_calls": [call]}
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": None}]
    done = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}
    data = json.dumps(chunk).encode() + b"\n\ndata: " + json.dumps(done).encode()
    exchange, _ = asyncio.run(read_reply(_deep_stream(data)))
    findings = {f.check: f for f in run_checks(CheckContext("deep", Expect.TURN, Thresholds()), exchange)}
    assert findings["tool_calls_assemble"].status is Status.FAILED
    assert "nested too deep to parse" in findings["tool_calls_assemble"].detail
