"""Simulated calls of the assistants people really build (issue 15), started with Vapi's SDK: variables and tools
by id, tool messages, OAuth2, a knowledge base, call endings and the assistant's server messages."""

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
from vapi.tools.types.create_tools_request import CreateToolsRequest_Function
from vapi.types.assistant_overrides import AssistantOverrides
from vapi.types.open_ai_function import OpenAiFunction

from harness.fake_llm import FakeLLMConfig
from harness.fake_llm import create_app as fake_app
from harness.servers import ServerThread
from mock_vapi.api.app import create_app
from mock_vapi.api.llm import RetryPolicy
from mock_vapi.api.store import Store
from tests.token_server import TokenServer

pytestmark = pytest.mark.slow
KEY = "vapi-private-key-15c"
LLM_KEY = "sk-custom-llm-key-15c"
PROMPT = 'Hello {{customerName}}, your plan is {{ plan | default: "basic" }}.'
BOOK: dict[str, Any] = {
    "name": "bookAppointment",
    "description": "Book an appointment.",
    "parameters": {"type": "object", "properties": {"day": {"type": "string"}}, "required": ["day"]},
}
BOOKED = "You're booked for Friday at 3 pm."


class Hooks:
    """The assistant's server URL: answers tool calls with a result and a request-complete message, the
    knowledge base with a document, and records every message."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []

    def types(self) -> list[str]:
        return [body["message"]["type"] for _, body in self.received]

    def app(self) -> Starlette:
        async def endpoint(request: Request) -> JSONResponse:
            body = await request.json()
            self.received.append((dict(request.headers), body))
            message = body["message"]
            if message["type"] == "tool-calls":
                item = {"toolCallId": message["toolCallList"][0]["id"], "result": "booked: friday 15:00",
                        "message": {"type": "request-complete", "content": BOOKED}}  # fmt: skip
                return JSONResponse({"results": [item]})
            if message["type"] == "knowledge-base-request":
                return JSONResponse({"documents": [{"content": "We open at 9.", "similarity": 0.8}]})
            return JSONResponse({})

        return Starlette(routes=[Route("/vapi", endpoint, methods=["POST"])])


@pytest.fixture
def hooks(serve: Callable[[Any], ServerThread]) -> tuple[Hooks, str]:
    made = Hooks()
    return made, f"{serve(made.app()).url}/vapi"


@pytest.fixture
def upstream(serve: Callable[[Any], ServerThread]) -> Callable[..., ServerThread]:
    def start(**config: Any) -> ServerThread:
        config.setdefault("api_key", LLM_KEY)
        return serve(fake_app(FakeLLMConfig(ttft_ms=2, chunk_delay_ms=1, **config)))

    return start


@pytest.fixture
def vapi(serve: Callable[[Any], ServerThread], tmp_path: Path) -> Iterator[tuple[Vapi, httpx.Client]]:
    mock = serve(create_app(Store(tmp_path / "vapi.sqlite3"), KEY))
    with httpx.Client(base_url=mock.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as client:
        yield Vapi(token=KEY, base_url=mock.url, httpx_client=client), client


def with_key(client: httpx.Client) -> None:
    client.post("/credential", json={"provider": "custom-llm", "apiKey": LLM_KEY}).raise_for_status()


def model(server: ServerThread, prompt: str = "You are Ava.", **extra: Any) -> dict[str, Any]:
    system = {"role": "system", "content": prompt}
    return {"provider": "custom-llm", "url": f"{server.url}/v1", "model": "my-model", "messages": [system], **extra}


def start_call(sdk: Vapi, assistant_id: str, turns: list[str], **fields: Any) -> str:
    simulation = {"turns": [{"user": t} for t in turns]}
    options: Any = {"additional_body_parameters": {"simulation": simulation}, "max_retries": 0}
    return str(sdk.calls.create(assistant_id=assistant_id, request_options=options, **fields).id)


def ended(vapi: tuple[Vapi, httpx.Client], call_id: str) -> dict[str, Any]:
    """Wait (bounded) until the SDK sees the call ended; its JSON as the API returned it."""
    sdk, client = vapi
    for _ in range(400):
        if sdk.calls.get(call_id).status == "ended":
            document: dict[str, Any] = client.get(f"/call/{call_id}").json()
            return document
        time.sleep(0.025)
    raise AssertionError(f"call {call_id} did not end")


def reported(hooks: Hooks) -> dict[str, Any]:
    """The end-of-call report, once it came (it follows the call's end)."""
    for _ in range(200):
        if "end-of-call-report" in hooks.types():
            return next(b["message"] for _, b in hooks.received if b["message"]["type"] == "end-of-call-report")
        time.sleep(0.025)
    raise AssertionError(f"no end-of-call report: {hooks.types()}")


def bodies(server: ServerThread) -> list[dict[str, Any]]:
    return [r.body for r in server.app.state.fake.recorded]


def test_a_request_complete_message_is_spoken_with_no_follow_up_request(
    vapi: tuple[Vapi, httpx.Client], upstream: Callable[..., ServerThread], hooks: tuple[Hooks, str]
) -> None:
    sdk, client = vapi
    with_key(client)
    llm = upstream()
    hook, url = hooks
    tool = {"type": "function", "function": BOOK}  # no server of its own: it goes to the assistant's
    assistant = sdk.assistants.create(model=model(llm, tools=[tool]), server={"url": url})
    call = ended(vapi, start_call(sdk, assistant.id, ["Please book Friday.", "Thanks"]))
    assert call["endedReason"] == "customer-ended-call"
    first, second = bodies(llm)  # one request per turn: none followed the tool's result
    assert first["messages"][-1]["content"] == "Please book Friday."
    assert second["messages"][-3:-1] == [
        {"role": "tool", "tool_call_id": second["messages"][-4]["tool_calls"][0]["id"],
         "content": "booked: friday 15:00"},
        {"role": "assistant", "content": BOOKED},
    ]  # fmt: skip
    roles = [(m["role"], m.get("message")) for m in call["messages"]]
    assert roles[:5] == [("system", "You are Ava."), ("user", "Please book Friday."), ("tool_calls", ""),
                         ("tool_call_result", None), ("bot", BOOKED)]  # fmt: skip
    assert f"AI: {BOOKED}\nUser: Thanks\nAI: " in call["artifact"]["transcript"]
    assert reported(hook)["artifact"]["messages"] == call["messages"]


def test_variable_values_and_a_tool_by_id_reach_the_custom_llm_of_a_simulated_call(
    vapi: tuple[Vapi, httpx.Client], upstream: Callable[..., ServerThread], hooks: tuple[Hooks, str]
) -> None:
    sdk, client = vapi
    with_key(client)
    llm = upstream()
    tool = sdk.tools.create(request=CreateToolsRequest_Function(function=OpenAiFunction(**BOOK)))
    assistant = sdk.assistants.create(
        first_message="Hi {{customerName}}!", model=model(llm, PROMPT, toolIds=[tool.id]), server={"url": hooks[1]}
    )
    overrides = AssistantOverrides(variable_values={"customerName": "Ada"})
    call = ended(vapi, start_call(sdk, assistant.id, ["What time do you open?"], assistant_overrides=overrides))
    (body,) = bodies(llm)
    assert body["messages"][:2] == [
        {"role": "system", "content": "Hello Ada, your plan is basic."},
        {"role": "assistant", "content": "Hi Ada!"},
    ]
    assert body["call"]["assistantOverrides"]["variableValues"] == {"customerName": "Ada"}
    assert [t["function"]["name"] for t in body["tools"]] == ["bookAppointment"]
    assert call["assistantOverrides"] == {"variableValues": {"customerName": "Ada"}}
    stored = client.get(f"/assistant/{assistant.id}").json()
    assert stored["model"]["messages"][0]["content"] == PROMPT  # the assistant itself keeps its templates


def test_overrides_are_merged_and_broken_liquid_in_them_is_a_400(
    vapi: tuple[Vapi, httpx.Client], upstream: Callable[..., ServerThread]
) -> None:
    sdk, client = vapi
    with_key(client)
    llm = upstream()
    assistant = sdk.assistants.create(first_message="Hi.", model=model(llm))
    simulation = {"turns": [{"user": "Hi"}]}
    broken = {"firstMessage": "Hi {{ name | nosuch }}"}
    refused = client.post("/call", json={"assistantId": assistant.id, "assistantOverrides": broken,
                                         "simulation": simulation})  # fmt: skip
    assert refused.status_code == 400, refused.text
    assert (
        "assistant.firstMessage: not a valid Liquid template: unknown filter 'nosuch'" in refused.json()["message"][0]
    )
    wrong = client.post("/call", json={"assistantId": assistant.id, "assistantOverrides": {"firstMessage": 3},
                                       "simulation": simulation})  # fmt: skip
    assert wrong.status_code == 400 and "assistantOverrides.firstMessage must be a string" in wrong.text
    merged = {"firstMessage": "Hello {{who}}.", "variableValues": {"who": "Grace"}}
    call = client.post("/call", json={"assistantId": assistant.id, "assistantOverrides": merged,
                                      "simulation": simulation}).json()  # fmt: skip
    ended(vapi, call["id"])
    assert bodies(llm)[0]["messages"][1] == {"role": "assistant", "content": "Hello Grace."}


def test_the_assistants_server_gets_its_messages_and_a_complete_report(
    vapi: tuple[Vapi, httpx.Client], upstream: Callable[..., ServerThread], hooks: tuple[Hooks, str]
) -> None:
    sdk, client = vapi
    with_key(client)
    llm = upstream(reply="All set, goodbye for now.")
    hook, url = hooks
    assistant = sdk.assistants.create(model=model(llm), server={"url": url}, end_call_phrases=["goodbye for now"])
    customer = {"number": "+15550100200"}
    call = ended(vapi, start_call(sdk, assistant.id, ["That's all.", "Hello?"], customer=customer))
    assert call["endedReason"] == "assistant-said-end-call-phrase" and len(bodies(llm)) == 1
    report = reported(hook)
    assert hook.types() == ["status-update", "conversation-update", "status-update", "end-of-call-report"]
    assert report["endedReason"] == "assistant-said-end-call-phrase"
    assert report["analysis"] == {"summary": "", "successEvaluation": None}
    assert report["customer"]["number"] == customer["number"] and report["phoneNumber"]["number"]
    assert report["assistant"]["id"] == assistant.id and report["call"]["id"] == call["id"]
    only = sdk.assistants.create(model=model(llm), server={"url": url}, server_messages=["end-of-call-report"])
    hook.received.clear()
    ended(vapi, start_call(sdk, only.id, ["Hi"]))
    reported(hook)
    assert hook.types() == ["end-of-call-report"]


def test_a_knowledge_base_and_the_transcriber_extras_in_a_simulated_call(
    vapi: tuple[Vapi, httpx.Client], upstream: Callable[..., ServerThread], hooks: tuple[Hooks, str]
) -> None:
    sdk, client = vapi
    with_key(client)
    llm = upstream()
    hook, url = hooks
    knowledge = {"provider": "custom-knowledge-base", "server": {"url": url}}
    extras: dict[str, Any] = {"knowledgeBase": knowledge, "wordLevelConfidenceEnabled": True}
    assistant = client.post("/assistant", json={"model": model(llm, **extras)}).json()
    ended(vapi, start_call(sdk, assistant["id"], ["When do you open?"]))
    (body,) = bodies(llm)
    assert body["messages"][1] == {"role": "system", "content": "Context:\nWe open at 9."}
    user = body["messages"][2]
    assert user["content"] == "When do you open?" and len(user["metadata"]["wordLevelConfidence"]) == 4
    assert hook.types() == ["knowledge-base-request"]


@pytest.mark.parametrize("status", [200, 503])
def test_a_simulated_call_sends_the_oauth2_token_or_ends_when_there_is_none(
    status: int,
    vapi: tuple[Vapi, httpx.Client],
    upstream: Callable[..., ServerThread],
    tokens: Callable[..., tuple[TokenServer, str]],
) -> None:
    sdk, client = vapi
    server, url = tokens(status=status)
    plan = {"type": "oauth2", "url": url, "clientId": server.client_id, "clientSecret": server.client_secret}
    client.post("/credential", json={"provider": "custom-llm", "apiKey": "static-key", "authenticationPlan": plan})
    llm = upstream(api_key="token-1")
    assistant = sdk.assistants.create(model=model(llm))
    call = ended(vapi, start_call(sdk, assistant.id, ["Hi", "And tomorrow?"]))
    if status == 200:
        assert call["endedReason"] == "customer-ended-call"
        assert [r.authorized for r in llm.app.state.fake.recorded] == [True, True] and server.granted == 1
    else:
        assert call["endedReason"] == "pipeline-error-custom-llm-llm-failed"
        assert not llm.app.state.fake.recorded  # the model is never called without a token
    assert server.client_secret not in str(call) and "static-key" not in str(call)


class Flaky:
    """An ASGI wrapper answering the first `failures` completions with HTTP 429 and `Retry-After-Ms: 1`."""

    def __init__(self, app: Any, failures: int) -> None:
        self.app = app
        self.failures = failures
        self.seen = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/chat/completions"):
            self.seen += 1
            if self.seen <= self.failures:
                headers = [(b"content-type", b"application/json"), (b"retry-after-ms", b"1")]
                await send({"type": "http.response.start", "status": 429, "headers": headers})
                await send({"type": "http.response.body", "body": b'{"error": {"message": "slow down"}}'})
                return
        await self.app(scope, receive, send)


@pytest.mark.parametrize(("retries", "reason"), [(0, "pipeline-error-custom-llm-429-exceeded-quota"),
                                                 (2, "customer-ended-call")])  # fmt: skip
def test_the_retry_switch_covers_simulated_calls(
    retries: int, reason: str, serve: Callable[[Any], ServerThread], tmp_path: Path
) -> None:
    flaky = Flaky(fake_app(FakeLLMConfig(ttft_ms=2, chunk_delay_ms=1)), failures=2)
    llm = serve(flaky)
    mock = serve(create_app(Store(tmp_path / "vapi.sqlite3"), KEY, retries=RetryPolicy(max_retries=retries)))
    with httpx.Client(base_url=mock.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as client:
        sdk = Vapi(token=KEY, base_url=mock.url, httpx_client=client)
        assistant = sdk.assistants.create(model=model(llm))
        call = ended((sdk, client), start_call(sdk, assistant.id, ["Hi"]))
        sent = client.get("/debug/requests").json()
    assert call["endedReason"] == reason
    statuses = [e["response"]["status"] for e in sent if e["for"]["id"] == call["id"]]
    assert sorted(statuses) == ([429] if retries == 0 else [200, 429, 429])  # every attempt is listed
