"""Issue 15 in the mock Vapi API: variables and overrides in `/chat`, the `/tool` API and `model.toolIds`, OAuth2
credentials and the retries switch, driven by Vapi's Python SDK (raw HTTP where it has no client) on loopback."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from vapi import Vapi
from vapi.core.api_error import ApiError
from vapi.tools.types.create_tools_request import CreateToolsRequest_Function
from vapi.tools.types.update_tools_request_body import UpdateToolsRequestBody_Function
from vapi.types.assistant_overrides import AssistantOverrides
from vapi.types.create_function_tool_dto_messages_item import CreateFunctionToolDtoMessagesItem_RequestStart
from vapi.types.open_ai_function import OpenAiFunction

from harness.fake_llm import DEFAULT_REPLY, FakeLLMConfig
from harness.fake_llm import create_app as fake_app
from harness.servers import ServerThread
from mock_vapi.api.app import create_app
from mock_vapi.api.llm import RetryPolicy, TokenSources
from mock_vapi.api.store import Store
from tests.token_server import TokenServer

pytestmark = pytest.mark.slow
KEY = "vapi-private-key-15"
LLM_KEY = "sk-custom-llm-key-15"
NO_RETRY: Any = {"max_retries": 0}
PROMPT = 'Hello {{customerName}}, your plan is {{ plan | default: "basic" }}.'
LOOKUP: dict[str, Any] = {
    "name": "lookup_plan",
    "description": "Look up the caller's plan.",
    "parameters": {"type": "object", "properties": {"account": {"type": "string"}}, "required": ["account"]},
}


class HeaderTap:
    """An ASGI wrapper that keeps the Authorization header of every request before the fake LLM sees it (the
    fake keeps only whether it matched its own key)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.authorization: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            self.authorization.append(headers.get(b"authorization", b"").decode())
        await self.app(scope, receive, send)


class Flaky:
    """An ASGI wrapper answering the first `failures` completions with `status` and `Retry-After-Ms: 1`."""

    def __init__(self, app: Any, failures: int, status: int = 429) -> None:
        self.app = app
        self.failures = failures
        self.status = status
        self.seen = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/chat/completions"):
            self.seen += 1
            if self.seen <= self.failures:
                body = b'{"error": {"message": "slow down", "type": "rate_limit_error"}}'
                headers = [(b"content-type", b"application/json"), (b"retry-after-ms", b"1")]
                await send({"type": "http.response.start", "status": self.status, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


class Clock:
    """The token cache's clock, moved by the test (no test waits for a token to expire)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fake(**config: Any) -> Any:
    return fake_app(FakeLLMConfig(ttft_ms=2, chunk_delay_ms=1, **config))


@pytest.fixture
def upstream(serve: Callable[[Any], ServerThread]) -> ServerThread:
    return serve(fake(api_key=LLM_KEY))


@pytest.fixture
def start_mock(serve: Callable[[Any], ServerThread], tmp_path: Path) -> Callable[..., ServerThread]:
    def start(**options: Any) -> ServerThread:
        return serve(create_app(Store(tmp_path / f"vapi-{len(list(tmp_path.iterdir()))}.sqlite3"), KEY, **options))

    return start


@pytest.fixture
def mock(start_mock: Callable[..., ServerThread]) -> ServerThread:
    return start_mock()


@contextmanager
def sdk(server: ServerThread) -> Iterator[Vapi]:
    with httpx.Client(timeout=30) as client:
        yield Vapi(token=KEY, base_url=server.url, httpx_client=client)


def http(mock: ServerThread) -> httpx.Client:
    return httpx.Client(base_url=mock.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)


def custom_llm(upstream: ServerThread, prompt: str = "You are Ava.", **extra: Any) -> dict[str, Any]:
    system = {"role": "system", "content": prompt}
    return {"provider": "custom-llm", "url": f"{upstream.url}/v1", "model": "my-model", "messages": [system], **extra}


def received(upstream: ServerThread) -> Any:
    return upstream.app.state.fake.recorded[-1].body


# --- the "Done when", with Vapi's SDK ---


def test_a_tool_by_id_and_variables_reach_the_custom_llm(mock: ServerThread, upstream: ServerThread) -> None:
    with http(mock) as client:
        client.post("/credential", json={"provider": "custom-llm", "apiKey": LLM_KEY})
    with sdk(mock) as vapi:
        tool = vapi.tools.create(request=CreateToolsRequest_Function(function=OpenAiFunction(**LOOKUP)))
        assert tool.id and tool.type == "function" and tool.org_id and tool.created_at
        assistant = vapi.assistants.create(name="Ava", model=custom_llm(upstream, PROMPT, toolIds=[tool.id]))
        chat = vapi.chats.create(
            assistant_id=assistant.id,
            input="What time do you open?",
            assistant_overrides=AssistantOverrides(variable_values={"customerName": "Ada"}),
        )
    assert chat.output is not None and chat.output[0].content == DEFAULT_REPLY.strip()
    body = received(upstream)
    assert body["messages"][0] == {"role": "system", "content": "Hello Ada, your plan is basic."}
    assert body["tools"] == [{"type": "function", "function": LOOKUP}]
    assert body["call"]["assistantOverrides"]["variableValues"] == {"customerName": "Ada"}
    assert chat.assistant_overrides is not None
    with http(mock) as client:
        stored = client.get(f"/assistant/{assistant.id}").json()
    assert stored["model"]["toolIds"] == [tool.id] and stored["model"]["messages"][0]["content"] == PROMPT


def test_a_continued_chat_keeps_the_first_values_until_new_ones_are_given(
    mock: ServerThread, upstream: ServerThread
) -> None:
    with http(mock) as client:
        client.post("/credential", json={"provider": "custom-llm", "apiKey": LLM_KEY})
    with sdk(mock) as vapi:
        assistant = vapi.assistants.create(model=custom_llm(upstream, PROMPT))
        first = vapi.chats.create(
            assistant_id=assistant.id, input="Hi", session_id="s-1",
            assistant_overrides=AssistantOverrides(variable_values={"customerName": "Ada"}),
        )  # fmt: skip
        vapi.chats.create(previous_chat_id=first.id, input="And now?")
        kept = received(upstream)
        vapi.chats.create(
            session_id="s-1",
            input="I upgraded.",
            assistant_overrides=AssistantOverrides(variable_values={"plan": "pro"}),
        )
        merged = received(upstream)
    assert kept["messages"][0]["content"] == "Hello Ada, your plan is basic."
    assert kept["call"]["assistantOverrides"]["variableValues"] == {"customerName": "Ada"}
    assert merged["messages"][0]["content"] == "Hello Ada, your plan is pro."
    assert merged["call"]["assistantOverrides"]["variableValues"] == {"customerName": "Ada", "plan": "pro"}


def test_built_in_variables_fill_the_prompt(mock: ServerThread, upstream: ServerThread) -> None:
    prompt = "Year {{year}}. Caller {{ customer.number | default: 'unknown' }}. Day {{ day }}."
    with http(mock) as client:
        client.post("/credential", json={"provider": "custom-llm", "apiKey": LLM_KEY})
        inline = {"name": "Ava", "model": custom_llm(upstream, prompt)}
        sms = {"type": "twilio.sms", "customer": {"number": "+15550100200"}}
        assert client.post("/chat", json={"assistant": inline, "input": "Hi", "transport": sms}).status_code == 200
        with_number = received(upstream)["messages"][0]["content"]
        assert client.post("/chat", json={"assistant": inline, "input": "Hi"}).status_code == 200
        without = received(upstream)["messages"][0]["content"]
    assert re.fullmatch(r"Year 2\d{3}\. Caller \+15550100200\. Day \d\d\.", with_number), with_number
    assert "Caller unknown." in without


def test_overrides_merge_into_the_assistant_and_are_validated(mock: ServerThread, upstream: ServerThread) -> None:
    with http(mock) as client:
        client.post("/credential", json={"provider": "custom-llm", "apiKey": LLM_KEY})
        assistant = client.post(
            "/assistant", json={"model": custom_llm(upstream, "For {{name}}"), "metadata": {"tenant": "acme"}}
        ).json()
        overrides = {
            "metadata": {"region": "eu"},
            "model": {"messages": [{"role": "system", "content": "Short answers for {{name}}."}], "temperature": 0.1},
            "variableValues": {"name": "Ada"},
        }
        ok = client.post("/chat", json={"assistantId": assistant["id"], "input": "Hi", "assistantOverrides": overrides})
        assert ok.status_code == 200, ok.text
        body = received(upstream)
        assert body["messages"][0]["content"] == "Short answers for Ada." and body["temperature"] == 0.1
        assert body["metadata"] == {"tenant": "acme", "region": "eu"}
        assert ok.json()["assistantOverrides"] == overrides
        cases = {
            "unknown": ({"colour": "red"}, "assistantOverrides.property colour should not exist"),
            "bad-model": ({"model": {"metadataSendMode": "loud"}}, "model.metadataSendMode must be one of"),
            "bad-liquid": ({"model": {"messages": [{"role": "system", "content": "Hi {{ name | nosuch }}"}]}},
                           "model.messages[0].content: "),
            "bad-tool": ({"model": {"tools": [{"type": "fax"}]}}, "model.tools[0].type: 'fax' is not a Vapi tool"),
            "missing-tool": ({"model": {"toolIds": ["no-such-tool"]}}, "model.toolIds: tool no-such-tool does not"),
        }  # fmt: skip
        for name, (bad, message) in cases.items():
            refused = client.post(
                "/chat", json={"assistantId": assistant["id"], "input": "Hi", "assistantOverrides": bad}
            )
            assert refused.status_code == 400, (name, refused.text)
            assert refused.json()["error"] == "Bad Request" and refused.json()["statusCode"] == 400
            assert any(m.startswith(message) for m in refused.json()["message"]), (name, refused.json())


def test_a_first_message_with_broken_liquid_is_a_400_naming_it(mock: ServerThread, upstream: ServerThread) -> None:
    with http(mock) as client:
        client.post("/credential", json={"provider": "custom-llm", "apiKey": LLM_KEY})
        inline = {"firstMessage": "Hi {% if %}", "model": custom_llm(upstream)}
        refused = client.post("/chat", json={"assistant": inline, "input": "Hi"})
    assert refused.status_code == 400 and refused.json()["message"][0].startswith("firstMessage: ")


# --- /tool ---


def test_tools_crud_with_the_sdk(mock: ServerThread, upstream: ServerThread) -> None:
    start = CreateFunctionToolDtoMessagesItem_RequestStart(content="One moment, {{customerName}}.")
    with sdk(mock) as vapi:
        created = vapi.tools.create(
            request=CreateToolsRequest_Function(function=OpenAiFunction(**LOOKUP), messages=[start])
        )
        assert [t.id for t in vapi.tools.list()] == [created.id]
        got = vapi.tools.get(created.id)
        assert got.function is not None and got.function.name == "lookup_plan"
        assert got.messages is not None and got.messages[0].content == "One moment, {{customerName}}."  # kept as given
        renamed = {**LOOKUP, "name": "find_plan"}
        updated = vapi.tools.update(
            created.id, request=UpdateToolsRequestBody_Function(function=OpenAiFunction(**renamed))
        )
        assert updated.function is not None and updated.function.name == "find_plan"
        assert updated.created_at == created.created_at and updated.updated_at >= created.updated_at
        assert vapi.tools.delete(created.id).id == created.id
        with pytest.raises(ApiError) as missing:
            vapi.tools.get(created.id, request_options=NO_RETRY)
    assert missing.value.status_code == 404
    assert missing.value.body["message"] == f"Couldn't find tool with id {created.id}"


def test_tool_types_and_their_400s(mock: ServerThread, upstream: ServerThread) -> None:
    with http(mock) as client:
        end_call = client.post("/tool", json={"type": "endCall"})
        assert end_call.status_code == 201 and end_call.json()["type"] == "endCall"
        google = client.post("/tool", json={"type": "google.calendar.event.create"})
        assert google.status_code == 201
        cases = [
            ({"type": "fax"}, "type must be one of the following values: function, endCall"),
            ({"function": {"name": "x"}}, "type must be one of the following values"),
            ({"type": "function"}, "tool.function.name: required for a function tool"),
            ({"type": "function", "function": {"name": "has space"}}, "function.name must be a-z"),
            ({"type": "function", "function": {"name": "f"}, "messages": [{"type": "hello"}]},
             "messages[0].type must be one of the following values: request-start"),
            ({"type": "function", "function": {"name": "f"}, "server": {"url": "nope"}}, "server.url must be a URL"),
            ({"type": "function", "function": {"name": "f"}, "async": "yes"}, "async must be a boolean value"),
            ([1], "body must be an object"),
        ]  # fmt: skip
        for body, message in cases:
            refused = client.post("/tool", json=body)
            assert refused.status_code == 400, (body, refused.text)
            assert refused.json()["statusCode"] == 400 and refused.json()["message"][0].startswith(message), body
        changed = client.patch(f"/tool/{end_call.json()['id']}", json={"type": "function"})
        assert changed.status_code == 400 and changed.json()["message"] == [
            "type cannot be changed (this tool is endCall)"
        ]
        assert client.patch("/tool/nope", json={}).status_code == 404
        listed = client.get("/tool", params={"limit": 1}).json()
        assert [t["id"] for t in listed] == [google.json()["id"]]


def test_tools_by_id_join_inline_tools_and_a_deleted_one_is_a_400(mock: ServerThread, upstream: ServerThread) -> None:
    with http(mock) as client:
        client.post("/credential", json={"provider": "custom-llm", "apiKey": LLM_KEY})
        transfer = client.post(
            "/tool", json={"type": "transferCall", "destinations": [{"type": "number", "number": "+15550101"}]}
        ).json()
        lookup = client.post("/tool", json={"type": "function", "function": LOOKUP}).json()
        model = custom_llm(upstream, tools=[{"type": "endCall"}], toolIds=[lookup["id"], transfer["id"]],
                           toolRefs=[{"toolId": lookup["id"], "version": 1}])  # fmt: skip
        missing = client.post("/assistant", json={"model": {**model, "toolIds": ["gone"]}})
        assert missing.status_code == 400 and missing.json()["message"] == ["model.toolIds: tool gone does not exist"]
        bad_inline = client.post("/assistant", json={"model": {**model, "tools": [{"type": "fax"}]}})
        assert bad_inline.status_code == 400 and "'fax' is not a Vapi tool type" in bad_inline.json()["message"][0]
        assistant = client.post("/assistant", json={"model": model}).json()
        assert client.post("/chat", json={"assistantId": assistant["id"], "input": "Hi"}).status_code == 200
        names = [t["function"]["name"] for t in received(upstream)["tools"]]
        assert names == ["endCall", "lookup_plan", "transferCall"]
        client.delete(f"/tool/{lookup['id']}")
        refused = client.post("/chat", json={"assistantId": assistant["id"], "input": "Hi"})
    assert refused.status_code == 400 and refused.json()["message"] == [
        f"model.toolIds: tool {lookup['id']} does not exist"
    ]


def test_a_stored_assistant_with_an_unsendable_tool_is_a_400_not_a_500(
    mock: ServerThread, upstream: ServerThread, tmp_path: Path
) -> None:
    """An assistant stored before its tools were validated (an older mock's file) still gets a 400."""
    with http(mock) as client:
        client.post("/credential", json={"provider": "custom-llm", "apiKey": LLM_KEY})
        assistant = client.post("/assistant", json={"model": custom_llm(upstream)}).json()
    store = Store(next(tmp_path.glob("vapi-*.sqlite3")))
    store.replace("assistant", {**assistant, "model": {**assistant["model"], "tools": [{"type": "fax"}]}})
    with http(mock) as client:
        refused = client.post("/chat", json={"assistantId": assistant["id"], "input": "Hi"})
    assert refused.status_code == 400 and "'fax' is not a Vapi tool type" in refused.json()["message"][0]


# --- OAuth2 ---


def oauth2_credential(server: TokenServer, url: str, **extra: Any) -> dict[str, Any]:
    plan = {"type": "oauth2", "url": url, "clientId": server.client_id, "clientSecret": server.client_secret, **extra}
    return {"provider": "custom-llm", "apiKey": LLM_KEY, "authenticationPlan": plan}


@pytest.mark.parametrize("client_auth", ["body", "basic"])
def test_an_oauth2_credential_sends_the_fetched_token_until_it_expires(
    serve: Callable[[Any], ServerThread], start_mock: Callable[..., ServerThread],
    tokens: Callable[..., tuple[TokenServer, str]], client_auth: Any,
) -> None:  # fmt: skip
    tap = HeaderTap(fake())
    upstream = serve(tap)
    server, url = tokens(expires_in=6)  # with the 5 s margin, a token is used for 1 s of the clock
    clock = Clock()
    mock = start_mock(tokens=TokenSources(client_auth=client_auth, clock=clock))
    with http(mock) as client:
        credential = client.post("/credential", json=oauth2_credential(server, url, scope="llm"))
        assert credential.status_code == 201 and server.client_secret not in credential.text
        assistant = client.post("/assistant", json={"model": custom_llm(upstream)}).json()
        chat = {"assistantId": assistant["id"], "input": "Hi"}
        assert client.post("/chat", json=chat).status_code == 200
        clock.now += 0.5
        assert client.post("/chat", json={**chat, "stream": True}).status_code == 200
        clock.now += 1.0
        assert client.post("/chat", json=chat).status_code == 200
        sent = client.get("/debug/requests").text
        listed = client.get("/credential").text
    assert tap.authorization == ["Bearer token-1", "Bearer token-1", "Bearer token-2"]
    assert server.granted == 2 and server.requests[0]["form"]["scope"] == "llm"
    assert server.requests[0]["basic"] is (client_auth == "basic")
    for secret in ("token-1", "token-2", server.client_secret, LLM_KEY):
        assert secret not in sent and secret not in listed


def test_one_token_serves_chats_of_every_assistant_on_the_credential(
    serve: Callable[[Any], ServerThread], start_mock: Callable[..., ServerThread],
    tokens: Callable[..., tuple[TokenServer, str]],
) -> None:  # fmt: skip
    tap = HeaderTap(fake())
    upstream = serve(tap)
    server, url = tokens(expires_in=3600)
    mock = start_mock()
    with http(mock) as client:
        credential = client.post("/credential", json=oauth2_credential(server, url)).json()
        for name in ("one", "two"):
            model = custom_llm(upstream)
            assistant = client.post("/assistant", json={"name": name, "model": model,
                                                        "credentialIds": [credential["id"]]}).json()  # fmt: skip
            assert client.post("/chat", json={"assistantId": assistant["id"], "input": "Hi"}).status_code == 200
    assert tap.authorization == ["Bearer token-1", "Bearer token-1"] and server.granted == 1


def test_a_failing_token_endpoint_ends_the_chat_with_vapis_error(
    serve: Callable[[Any], ServerThread], mock: ServerThread, tokens: Callable[..., tuple[TokenServer, str]]
) -> None:
    tap = HeaderTap(fake())
    upstream = serve(tap)
    server, url = tokens(status=503)
    with http(mock) as client:
        client.post("/credential", json=oauth2_credential(server, url))
        assistant = client.post("/assistant", json={"model": custom_llm(upstream)}).json()
        for stream in (False, True):
            failed = client.post("/chat", json={"assistantId": assistant["id"], "input": "Hi", "stream": stream})
            assert failed.status_code == 500, failed.text
            message = failed.json()["message"]
            assert message.startswith("pipeline-error-custom-llm-llm-failed: could not get an OAuth2 token: ")
            assert f"the token endpoint {url} answered HTTP 503" in message
            assert server.client_secret not in failed.text
        chats = client.get("/chat").json()["results"]
    assert tap.authorization == []  # the model is never called without a token
    assert [c["error"] for c in chats] == [message.removeprefix("pipeline-error-custom-llm-llm-failed: ")] * 2


# --- retries ---


def test_retries_are_off_by_default_and_on_with_the_switch(
    serve: Callable[[Any], ServerThread], start_mock: Callable[..., ServerThread]
) -> None:
    flaky = Flaky(fake(), failures=2)
    upstream = serve(flaky)
    for retries, expected in ((0, 500), (2, 200)):
        flaky.seen = 0
        mock = start_mock(retries=RetryPolicy(max_retries=retries))
        with http(mock) as client:
            assistant = client.post("/assistant", json={"model": custom_llm(upstream)}).json()
            answer = client.post("/chat", json={"assistantId": assistant["id"], "input": "Hi"})
            sent = client.get("/debug/requests").json()
        assert answer.status_code == expected, answer.text
        counts = [s["headers"]["X-Stainless-Retry-Count"] for s in sent]
        assert counts == [str(n) for n in range(retries + 1)]
        assert [s["response"]["status"] for s in sent] == [429] * min(retries + 1, 2) + [200] * (retries == 2)


def test_retries_give_up_after_the_last_one(
    serve: Callable[[Any], ServerThread], start_mock: Callable[..., ServerThread]
) -> None:
    flaky = Flaky(fake(), failures=5, status=503)
    upstream = serve(flaky)
    mock = start_mock(retries=RetryPolicy(max_retries=2))
    with http(mock) as client:
        assistant = client.post("/assistant", json={"model": custom_llm(upstream)}).json()
        answer = client.post("/chat", json={"assistantId": assistant["id"], "input": "Hi"})
    assert answer.status_code == 500 and "the model answered HTTP 503" in answer.json()["message"]
    assert flaky.seen == 3


def test_patching_a_credential_keeps_its_plan_and_a_new_plan_gets_a_new_token(
    serve: Callable[[Any], ServerThread], mock: ServerThread, tokens: Callable[..., tuple[TokenServer, str]]
) -> None:
    tap = HeaderTap(fake())
    upstream = serve(tap)
    server, url = tokens()
    with http(mock) as client:
        credential = client.post("/credential", json=oauth2_credential(server, url)).json()
        assistant = client.post("/assistant", json={"model": custom_llm(upstream)}).json()
        chat = {"assistantId": assistant["id"], "input": "Hi"}
        assert client.patch(f"/credential/{credential['id']}", json={"apiKey": "sk-rotated"}).status_code == 200
        assert client.post("/chat", json=chat).status_code == 200
        plan = {**oauth2_credential(server, url, scope="llm.write")["authenticationPlan"]}
        patched = client.patch(f"/credential/{credential['id']}", json={"authenticationPlan": plan})
        assert patched.status_code == 200 and server.client_secret not in patched.text
        assert client.post("/chat", json=chat).status_code == 200
    assert tap.authorization == ["Bearer token-1", "Bearer token-2"]
    assert server.requests[-1]["form"]["scope"] == "llm.write"
