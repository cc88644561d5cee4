"""The reference proxy between real servers on loopback: the fake LLM upstream, the proxy, and our checker."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from harness.fake_llm import FakeLLMConfig
from harness.fake_llm import create_app as fake_app
from harness.servers import ServerThread
from reference_proxy.app import VAPI_FIELDS, create_app
from reference_proxy.hooks import HookError, VapiContext
from reference_proxy.settings import ProxySettings

pytestmark = pytest.mark.slow
KEY = "sk-proxy-0123456789"
FAST = ("--timeout-s", "3", "--close-grace-s", "0.5")


@pytest.fixture
def upstream(serve: Callable[[Any], ServerThread]) -> Callable[..., ServerThread]:
    def start(**config: Any) -> ServerThread:
        config.setdefault("ttft_ms", 2.0)
        config.setdefault("chunk_delay_ms", 2.0)
        config["faults"] = frozenset(config.get("faults", ()))
        return serve(fake_app(FakeLLMConfig(**config)))

    return start


@pytest.fixture
def proxy(serve: Callable[[Any], ServerThread]) -> Callable[..., ServerThread]:
    def start(upstream: ServerThread | str, hook: Any = None, **settings: Any) -> ServerThread:
        url = upstream if isinstance(upstream, str) else f"{upstream.url}/v1"
        return serve(create_app(ProxySettings(upstream_url=url, **settings), hook))

    return start


def post(url: str, body: Any, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    async def go() -> tuple[int, bytes]:
        async with aiohttp.ClientSession() as session:
            data = io.BytesIO(body if isinstance(body, bytes) else json.dumps(body).encode())
            async with session.post(url, data=data, headers=headers or {}) as response:
                return response.status, await response.read()

    return asyncio.run(go())


VAPI_BODY = {
    "model": "m",
    "messages": [{"role": "user", "content": "Hi"}],
    "stream": True,
    "call": {"id": "call-1"},
    "customer": {"number": "+15551234567"},
    "metadata": {"tenant": "acme"},
    "tenant": "acme",
}


@pytest.mark.parametrize("mode", ["variable", "off", "destructured"])
def test_proxy_passes_strict_check_in_every_metadata_mode(
    mode: str, upstream: Callable[..., ServerThread], proxy: Callable[..., ServerThread], run_cli: Callable[..., Any]
) -> None:
    server = upstream(faults={"reject-extra-fields"})  # a strict upstream, like a fine-tuned OpenAI model
    result = run_cli("check", "--url", f"{proxy(server).url}/v1", "--strict", "--metadata-send-mode", mode, *FAST)
    assert result.code == 0, result.out
    received = [r.body for r in server.app.state.fake.recorded if isinstance(r.body, dict)]
    assert received
    assert all(not (set(body) & VAPI_FIELDS) and "tenant" not in body for body in received)


def test_auth_and_bad_bodies_get_openai_envelopes(
    upstream: Callable[..., ServerThread], proxy: Callable[..., ServerThread]
) -> None:
    server = proxy(upstream(), api_key=KEY)
    url = f"{server.url}/chat/completions"
    status, body = post(url, VAPI_BODY, {"Authorization": "Bearer nope"})
    assert status == 401 and json.loads(body)["error"]["type"] == "authentication_error"
    status, body = post(url, b"{not json", {"Authorization": f"Bearer {KEY}"})
    assert status == 400 and "not valid JSON" in json.loads(body)["error"]["message"]
    status, body = post(url, {"model": "m"}, {"Authorization": f"Bearer {KEY}"})
    assert status == 400 and "messages" in json.loads(body)["error"]["message"]
    status, body = post(url, b" " * (17 * 1024 * 1024), {"Authorization": f"Bearer {KEY}"})
    assert status == 413 and "16 MiB" in json.loads(body)["error"]["message"]
    status, body = post(url, VAPI_BODY, {"Authorization": f"Bearer {KEY}"})
    assert status == 200 and b"data: [DONE]" in body


def test_upstream_failures_map_to_statuses_vapi_reads(
    upstream: Callable[..., ServerThread], proxy: Callable[..., ServerThread]
) -> None:
    unreachable = proxy("http://127.0.0.1:9/v1")
    status, body = post(f"{unreachable.url}/v1/chat/completions", VAPI_BODY)
    assert status == 502 and json.loads(body)["error"]["code"] == "upstream_unreachable"
    failing = proxy(upstream(faults={"status-500"}))
    status, body = post(f"{failing.url}/v1/chat/completions", VAPI_BODY)
    assert status == 500 and "error" in json.loads(body)
    slow = proxy(upstream(faults={"hang"}), first_byte_timeout_s=0.3)
    status, body = post(f"{slow.url}/v1/chat/completions", VAPI_BODY)
    assert status == 504 and json.loads(body)["error"]["code"] == "upstream_timeout"


def test_a_break_mid_stream_ends_with_an_error_chunk(
    upstream: Callable[..., ServerThread], proxy: Callable[..., ServerThread]
) -> None:
    server = proxy(upstream(faults={"drop-mid-stream"}))
    status, body = post(f"{server.url}/v1/chat/completions", VAPI_BODY)
    assert status == 200
    events = [line[6:] for line in body.decode().split("\n\n") if line.startswith("data: ")]
    assert json.loads(events[-1])["error"]["type"] == "upstream_error"


def test_a_stall_mid_stream_ends_with_a_timeout_chunk(
    upstream: Callable[..., ServerThread], proxy: Callable[..., ServerThread]
) -> None:
    server = proxy(upstream(faults={"stall"}), idle_timeout_s=0.3)  # the upstream pauses 1.5 s mid-reply
    status, body = post(f"{server.url}/v1/chat/completions", VAPI_BODY)
    assert status == 200
    events = [json.loads(line[6:]) for line in body.decode().split("\n\n") if line.startswith("data: ")]
    assert any(e.get("choices") and e["choices"][0]["delta"].get("content") for e in events[:-1])
    assert events[-1]["error"]["code"] == "upstream_timeout"


def test_stream_is_relayed_chunk_by_chunk(
    upstream: Callable[..., ServerThread], proxy: Callable[..., ServerThread], run_cli: Callable[..., Any]
) -> None:
    server = proxy(upstream(chunk_delay_ms=20))
    result = run_cli("check", "--url", f"{server.url}/v1", *FAST)
    stream = next(e for e in result.report["exchanges"] if e["probe"] == "stream_basic")
    reads = [item for item in stream["timeline"] if item["kind"] == "bytes"]
    contents = [item for item in stream["timeline"] if item.get("content")]
    # Buffering would deliver the whole reply in one or two reads; relaying gives one read per paced chunk.
    assert len(reads) >= len(contents) - 2
    assert result.check("stream_is_incremental")["status"] == "passed"
    # The spacing survives the proxy: the median gap between content arrivals stays near the upstream's 20 ms
    # (a buffering proxy would make it ~0). Half of it is the bar, so a noisy machine cannot fail it.
    gaps = sorted(b["t_ms"] - a["t_ms"] for a, b in itertools.pairwise(contents))
    assert gaps[len(gaps) // 2] >= 10


def test_client_disconnect_cancels_the_upstream_request(
    upstream: Callable[..., ServerThread], proxy: Callable[..., ServerThread]
) -> None:
    up = upstream(chunk_delay_ms=200)
    server = proxy(up)

    async def barge_in() -> float:
        async with aiohttp.ClientSession() as session:
            response = await session.post(f"{server.url}/v1/chat/completions", json=VAPI_BODY)
            async for _ in response.content.iter_any():
                break
            response.close()
            return time.perf_counter()

    closed_at = asyncio.run(barge_in())
    recorded = up.app.state.fake.recorded
    for _ in range(100):  # bounded wait for the upstream to notice
        if recorded[-1].t_closed is not None:
            break
        time.sleep(0.01)
    assert recorded[-1].outcome == "client_disconnected"
    assert recorded[-1].t_closed is not None
    assert (recorded[-1].t_closed - closed_at) * 1000 < 50


def test_hook_rewrites_the_body_and_can_refuse(
    upstream: Callable[..., ServerThread], proxy: Callable[..., ServerThread]
) -> None:
    async def hook(body: dict[str, Any], context: VapiContext) -> dict[str, Any]:
        if context.customer and context.customer.get("number") == "+10000000000":
            raise HookError("Blocked caller.", status=403, code="blocked")
        note = {"role": "system", "content": f"Caller: {context.customer and context.customer.get('number')}"}
        return {**body, "messages": [note, *body["messages"]]}

    up = upstream()
    server = proxy(up, hook)
    status, _ = post(f"{server.url}/v1/chat/completions", VAPI_BODY)
    assert status == 200
    assert up.app.state.fake.recorded[-1].body["messages"][0] == {"role": "system", "content": "Caller: +15551234567"}
    status, body = post(f"{server.url}/v1/chat/completions", {**VAPI_BODY, "customer": {"number": "+10000000000"}})
    assert status == 403 and json.loads(body)["error"]["code"] == "blocked"


def test_force_include_usage(upstream: Callable[..., ServerThread], proxy: Callable[..., ServerThread]) -> None:
    up = upstream()
    server = proxy(up, force_include_usage=True)
    status, body = post(f"{server.url}/v1/chat/completions", VAPI_BODY)
    assert status == 200 and b'"usage"' in body
    assert up.app.state.fake.recorded[-1].body["stream_options"] == {"include_usage": True}


def test_barge_ins_leave_no_stream_behind(
    upstream: Callable[..., ServerThread], proxy: Callable[..., ServerThread]
) -> None:
    up = upstream(chunk_delay_ms=100)
    server = proxy(up)

    async def barge_ins(count: int) -> None:
        async with aiohttp.ClientSession() as session:
            for _ in range(count):
                response = await session.post(f"{server.url}/v1/chat/completions", json=VAPI_BODY)
                async for _ in response.content.iter_any():
                    break
                response.close()

    asyncio.run(barge_ins(10))
    health: dict[str, Any] = {}
    for _ in range(200):  # bounded wait for the proxy to wind the streams down and the upstream to notice
        _, body = asyncio.run(_get(f"{server.url}/healthz"))
        health = json.loads(body)
        # The upstream learns of a closed stream only at its next write (up to a chunk delay later).
        settled = all(r.outcome != "pending" for r in up.app.state.fake.recorded)
        if health["active_streams"] == 0 and settled:
            break
        time.sleep(0.01)
    assert health["active_streams"] == 0
    assert [r.outcome for r in up.app.state.fake.recorded] == ["client_disconnected"] * 10


def test_shutdown_lets_a_stream_in_flight_finish(
    upstream: Callable[..., ServerThread], proxy: Callable[..., ServerThread]
) -> None:
    server = proxy(upstream(chunk_delay_ms=15))

    async def read_while_stopping() -> bytes:
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{server.url}/v1/chat/completions", json=VAPI_BODY) as response:
                first = await response.content.readany()
                await asyncio.to_thread(server.stop)  # waits for the server to drain (bounded)
                return first + await response.read()

    body = asyncio.run(read_while_stopping())
    assert body.rstrip().endswith(b"data: [DONE]")


async def _get(url: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.read()
