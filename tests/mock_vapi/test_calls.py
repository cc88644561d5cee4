"""Simulated calls through the mock Vapi API: Vapi's SDK starts them, the user's LLM and webhooks see Vapi."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from vapi import Vapi

from harness.fake_llm import FakeLLMConfig
from harness.fake_llm import create_app as fake_app
from harness.servers import ServerThread
from mock_vapi.api.app import create_app
from mock_vapi.api.store import Store

pytestmark = pytest.mark.slow
KEY = "vapi-private-key-2"
LLM_KEY = "sk-custom-llm-key-77"
OPENAI_FIELDS = {"model", "messages", "temperature", "max_tokens", "stream"}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}


@pytest.fixture
def upstream(serve: Callable[[Any], ServerThread]) -> Callable[..., ServerThread]:
    def start(**config: Any) -> ServerThread:
        config["faults"] = frozenset(config.get("faults", ()))
        return serve(fake_app(FakeLLMConfig(ttft_ms=2, chunk_delay_ms=1, api_key=LLM_KEY, **config)))

    return start


@pytest.fixture
def webhooks(serve: Callable[[Any], ServerThread]) -> tuple[ServerThread, list[tuple[dict[str, str], Any]]]:
    """The assistant's server URL: answers tool calls, records every message."""
    received: list[tuple[dict[str, str], Any]] = []

    async def server(request: Request) -> JSONResponse:
        body = await request.json()
        received.append((dict(request.headers), body))
        if body["message"]["type"] == "tool-calls":
            call_id = body["message"]["toolCallList"][0]["id"]
            return JSONResponse({"results": [{"toolCallId": call_id, "result": "Rainy, 9 degrees."}]})
        return JSONResponse({})

    return serve(Starlette(routes=[Route("/vapi", server, methods=["POST"])])), received


@pytest.fixture
def vapi(serve: Callable[[Any], ServerThread], tmp_path: Path) -> Iterator[tuple[Vapi, httpx.Client]]:
    mock = serve(create_app(Store(tmp_path / "vapi.sqlite3"), KEY))
    with httpx.Client(base_url=mock.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as client:
        client.post("/credential", json={"provider": "custom-llm", "apiKey": LLM_KEY}).raise_for_status()
        yield Vapi(token=KEY, base_url=mock.url, httpx_client=client), client


def start_call(vapi: Vapi, assistant_id: str, simulation: dict[str, Any], **fields: Any) -> str:
    options: Any = {"additional_body_parameters": {"simulation": simulation}, "max_retries": 0}
    call = vapi.calls.create(assistant_id=assistant_id, request_options=options, **fields)
    assert call.status == "queued"
    return str(call.id)


def ended(vapi: tuple[Vapi, httpx.Client], call_id: str) -> dict[str, Any]:
    """Wait (bounded) until the SDK sees the call ended; its JSON as the API returned it."""
    sdk, client = vapi
    for _ in range(400):
        call = sdk.calls.get(call_id)
        if call.status == "ended":
            assert call.id == call_id and call.ended_reason
            document: dict[str, Any] = client.get(f"/call/{call_id}").json()
            return document
        time.sleep(0.025)
    raise AssertionError(f"call {call_id} did not end: {call.status}")


def model(server: ServerThread, **extra: Any) -> dict[str, Any]:
    system = {"role": "system", "content": "You are Ava."}
    return {"provider": "custom-llm", "url": f"{server.url}/v1", "model": "my-model", "messages": [system], **extra}


def test_a_simulated_call_with_a_tool_and_the_end_of_call_report(
    vapi: tuple[Vapi, httpx.Client],
    upstream: Callable[..., ServerThread],
    webhooks: tuple[ServerThread, list[tuple[dict[str, str], Any]]],
) -> None:
    sdk, _ = vapi
    llm = upstream()
    hook_server, received = webhooks
    assistant = sdk.assistants.create(
        model=model(llm, tools=[WEATHER, {"type": "endCall"}]),
        first_message="Hi, this is Ava.",
        server={"url": f"{hook_server.url}/vapi", "secret": "hook-secret"},
    )
    turns = [{"user": "What's the weather in Oslo?"}, {"user": "Thanks, goodbye"}]
    call = ended(vapi, start_call(sdk, assistant.id, {"turns": turns}))
    assert call["endedReason"] == "assistant-ended-call" and call["status"] == "ended"
    artifact = call["artifact"]
    roles = [m["role"] for m in artifact["messages"]]
    assert roles == [
        "system",
        "user",
        "tool_calls",
        "tool_call_result",
        "bot",
        "user",
        "tool_calls",
        "tool_call_result",
    ]
    assert artifact["messages"][3]["result"] == "Rainy, 9 degrees."
    assert "AI: Thanks for waiting, I have the answer now. Rainy, 9 degrees." in artifact["transcript"]
    assert artifact["performanceMetrics"]["turnLatencies"][0]["ttft_ms"] > 0
    tool_headers, tool_call = next((h, b) for h, b in received if b["message"]["type"] == "tool-calls")
    assert tool_headers["x-vapi-secret"] == "hook-secret"
    assert tool_call["message"]["call"]["id"] == call["id"]
    for _ in range(200):  # the report follows the call's end
        if received[-1][1]["message"]["type"] == "end-of-call-report":
            break
        time.sleep(0.025)
    report_headers, report = received[-1]
    assert report["message"]["type"] == "end-of-call-report" and report_headers["x-vapi-secret"] == "hook-secret"
    assert report["message"]["endedReason"] == "assistant-ended-call"
    assert report["message"]["analysis"] == {"summary": "", "successEvaluation": None}
    assert report["message"]["assistant"]["id"] == assistant.id and "phoneNumber" not in report["message"]
    kinds = [b["message"]["type"] for _, b in received]
    assert kinds[0] == "status-update" and kinds[-2:] == ["status-update", "end-of-call-report"]
    assert [b["message"]["status"] for _, b in received if b["message"]["type"] == "status-update"] == [
        "in-progress",
        "ended",
    ]
    assert kinds.count("conversation-update") == 2  # one per turn
    assert llm.app.state.fake.recorded[0].authorized is True


@pytest.mark.parametrize("mode", ["off", "variable", "destructured"])
def test_the_llm_receives_vapis_fields_for_each_metadata_send_mode(
    mode: str, vapi: tuple[Vapi, httpx.Client], upstream: Callable[..., ServerThread]
) -> None:
    sdk, _ = vapi
    llm = upstream()
    assistant = sdk.assistants.create(
        model=model(llm, metadataSendMode=mode), metadata={"tenant": "acme", "plan": "gold"}
    )
    customer = {"number": "+15550100200"}
    call_id = start_call(sdk, assistant.id, {"turns": [{"user": "Hi"}]}, customer=customer)
    assert ended(vapi, call_id)["endedReason"] == "customer-ended-call"
    body = llm.app.state.fake.recorded[-1].body
    if mode == "off":
        assert set(body) == OPENAI_FIELDS
    elif mode == "variable":
        assert set(body) == OPENAI_FIELDS | {"metadata", "call", "phoneNumber", "customer"}
        assert body["metadata"] == {"tenant": "acme", "plan": "gold"}
    else:
        assert set(body) == OPENAI_FIELDS | {"tenant", "plan", "call", "phoneNumber", "customer"}
        assert (body["tenant"], body["plan"]) == ("acme", "gold")
    if mode != "off":
        assert body["call"]["id"] == call_id and body["call"]["type"] == "inboundPhoneCall"
        assert body["customer"]["number"] == customer["number"] and body["phoneNumber"]["number"]
        assert {"listenUrl", "controlUrl"} <= set(body["call"]["monitor"])
    assert (
        body["messages"]
        == [
            {"role": "system", "content": "You are Ava."},
            {"role": "user", "content": "Hi"},
        ]
        and body["stream"] is True
    )


def test_a_failing_model_ends_the_call_with_vapis_reason(
    vapi: tuple[Vapi, httpx.Client], upstream: Callable[..., ServerThread]
) -> None:
    sdk, client = vapi
    assistant = sdk.assistants.create(model=model(upstream(faults={"status-500"})))
    call = ended(vapi, start_call(sdk, assistant.id, {"turns": [{"user": "Hi"}, {"user": "Hello?"}]}))
    assert call["endedReason"] == "pipeline-error-custom-llm-500-server-error"
    sent = client.get("/debug/requests").json()
    assert [e["response"]["status"] for e in sent if e["for"]["id"] == call["id"]] == [500]
    assert [c.id for c in sdk.calls.list()] == [call["id"]]


def test_a_call_without_a_simulation_or_with_a_bad_one_is_refused(
    vapi: tuple[Vapi, httpx.Client], upstream: Callable[..., ServerThread]
) -> None:
    sdk, client = vapi
    assistant = sdk.assistants.create(model=model(upstream()))
    no_simulation = client.post("/call", json={"assistantId": assistant.id})
    assert no_simulation.status_code == 400 and "simulation must be an object" in no_simulation.json()["message"][0]
    typo = client.post("/call", json={"assistantId": assistant.id, "simulation": {"turns": [{"usr": "Hi"}]}})
    assert typo.status_code == 400
    assert "turns[0]: missing required key 'user'" in typo.json()["message"][0]
