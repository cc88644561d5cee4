"""The stream reader against real servers on loopback: bounds, barge-in, and agreement with the openai SDK."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from harness.servers import ServerThread
from mock_vapi import CustomLLMModel, MetadataSendMode, VapiRequest, build_request
from mock_vapi.exchange import Exchange, Outcome
from mock_vapi.reader import Abort, ReadLimits, new_session, read_into

pytestmark = pytest.mark.slow
MESSAGES = [{"role": "user", "content": "What time do you open?"}]
SDK_MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What time do you open?"}]


def request_for(base_url: str, *, stream: bool = True, timeout_s: float = 2.0) -> VapiRequest:
    model = CustomLLMModel(url=base_url, model="m", timeout_s=timeout_s, metadata_send_mode=MetadataSendMode.OFF)
    return build_request(model, MESSAGES, stream=stream)


def read(request: VapiRequest, limits: ReadLimits, **kwargs: Any) -> Exchange:
    async def go() -> Exchange:
        async with new_session() as session:
            return await read_into(session, Exchange(request, 0.0), limits, **kwargs)

    return asyncio.run(go())


def streaming_app(body: Callable[[], AsyncIterator[bytes]]) -> Starlette:
    async def endpoint(request: Request) -> Response:
        await request.body()
        return StreamingResponse(body(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", endpoint, methods=["POST"])])


def test_endless_stream_stops_at_the_deadline(serve: Callable[[Any], ServerThread]) -> None:
    async def endless() -> AsyncIterator[bytes]:
        for _ in range(100_000):
            yield b'data: {"choices":[{"index":0,"delta":{"content":"la "}}]}\n\n'
            await asyncio.sleep(0.01)

    server = serve(streaming_app(endless))
    exchange = read(request_for(f"{server.url}/v1"), ReadLimits(deadline_s=1.0))
    assert exchange.outcome is Outcome.DEADLINE
    assert exchange.content_events


def test_stream_that_stalls_stops_at_the_idle_bound(serve: Callable[[Any], ServerThread]) -> None:
    async def stall() -> AsyncIterator[bytes]:
        yield b'data: {"choices":[{"index":0,"delta":{"content":"Hello"}}]}\n\n'
        await asyncio.sleep(30)

    server = serve(streaming_app(stall))
    exchange = read(request_for(f"{server.url}/v1"), ReadLimits(idle_s=0.3, deadline_s=10))
    assert exchange.outcome is Outcome.IDLE_TIMEOUT
    assert exchange.text == "Hello"


def test_open_stream_after_done_stops_at_close_grace(serve: Callable[[Any], ServerThread]) -> None:
    async def lingering() -> AsyncIterator[bytes]:
        yield b'data: {"choices":[{"index":0,"delta":{"content":"Hi."},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
        await asyncio.sleep(30)

    server = serve(streaming_app(lingering))
    exchange = read(request_for(f"{server.url}/v1"), ReadLimits(close_grace_s=0.2, deadline_s=10))
    assert exchange.outcome is Outcome.CLOSE_TIMEOUT


def test_huge_body_stops_at_the_size_bound(serve: Callable[[Any], ServerThread]) -> None:
    async def huge() -> AsyncIterator[bytes]:
        for _ in range(10_000):
            yield b'data: {"choices":[{"index":0,"delta":{"content":"' + b"x" * 4000 + b'"}}]}\n\n'

    server = serve(streaming_app(huge))
    exchange = read(request_for(f"{server.url}/v1"), ReadLimits(max_body_bytes=100_000))
    assert exchange.outcome is Outcome.TOO_LARGE
    assert exchange.body_bytes <= 100_000 + 70_000


def test_barge_in_closes_the_connection_and_the_server_sees_it(fake_llm: Callable[..., ServerThread]) -> None:
    server = fake_llm(chunk_delay_ms=50)
    exchange = read(request_for(f"{server.url}/v1"), ReadLimits(), abort=Abort.AT_FIRST_DELTA)
    assert exchange.outcome is Outcome.ABORTED
    assert len(exchange.content_events) == 1
    recorded = server.app.state.fake.recorded
    for _ in range(200):
        if recorded[-1].outcome != "pending":
            break
        time.sleep(0.01)
    assert recorded[-1].outcome == "client_disconnected"


def test_connection_refused_is_an_outcome() -> None:
    exchange = read(request_for("http://127.0.0.1:9/v1"), ReadLimits())
    assert exchange.outcome is Outcome.CONNECT_ERROR
    assert "connection refused" in (exchange.error or "")


def test_timestamps_follow_the_servers_pacing(fake_llm: Callable[..., ServerThread]) -> None:
    server = fake_llm(ttft_ms=100, chunk_delay_ms=40)
    exchange = read(request_for(f"{server.url}/v1"), ReadLimits())
    assert exchange.outcome is Outcome.COMPLETE
    times = [e.sse.t for e in exchange.content_events]
    assert times == sorted(times)
    # Causality, not speed: nothing can arrive before the server's 100 ms wait has passed.
    assert (exchange.ms(times[0]) or 0.0) >= 100


@pytest.mark.parametrize("quirks", [set(), {"crlf", "no-space", "keepalive", "usage-chunk"}], ids=["plain", "quirky"])
def test_our_reader_and_the_openai_sdk_read_the_same_text(
    quirks: set[str], fake_llm: Callable[..., ServerThread]
) -> None:
    server = fake_llm(quirks=quirks)
    exchange = read(request_for(f"{server.url}/v1"), ReadLimits())
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    with client.chat.completions.create(model="m", messages=SDK_MESSAGES, stream=True) as stream:
        sdk_text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    client.close()
    assert exchange.text == sdk_text
    assert sdk_text.startswith("Sure!")


@pytest.mark.parametrize("fault", ["error-chunk", "invalid-json"])
def test_streams_our_checks_fail_also_break_the_openai_sdk(fault: str, fake_llm: Callable[..., ServerThread]) -> None:
    server = fake_llm(faults={fault})
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    with pytest.raises((openai.APIError, ValueError)):
        with client.chat.completions.create(model="m", messages=SDK_MESSAGES, stream=True) as stream:
            for _ in stream:
                pass
    client.close()


def test_the_sdk_drops_an_unterminated_last_event_as_our_reader_says(fake_llm: Callable[..., ServerThread]) -> None:
    server = fake_llm(faults={"unterminated-event"})
    exchange = read(request_for(f"{server.url}/v1"), ReadLimits())
    lost = [e for e in exchange.events if not e.sse.terminated]
    assert lost and "Goodbye" in lost[0].content
    client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
    with client.chat.completions.create(model="m", messages=SDK_MESSAGES, stream=True) as stream:
        sdk_text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    client.close()
    assert "Goodbye" not in sdk_text
    assert sdk_text == exchange.text


def test_fake_llm_receives_exactly_the_vapi_request(fake_llm: Callable[..., ServerThread]) -> None:
    server = fake_llm()
    model = CustomLLMModel(url=f"{server.url}/v1", model="acme", headers={"X-Tenant": "acme"})
    request = build_request(model, MESSAGES, api_key="sk-abc-123")
    read(request, ReadLimits())
    received = server.app.state.fake.recorded[-1]
    assert received.path == "/v1/chat/completions"
    assert received.headers["accept"] == "application/json"
    assert received.headers["user-agent"].startswith("OpenAI/JS ")
    assert received.headers["x-stainless-lang"] == "js"
    assert received.headers["x-tenant"] == "acme"
    assert received.headers["authorization"] == "[redacted]"
    assert received.body == request.json_body
    assert {"call", "phoneNumber", "customer", "metadata"} <= set(received.body)
