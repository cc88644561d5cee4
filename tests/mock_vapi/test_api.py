"""The mock Vapi API driven by Vapi's own Python SDK (and raw HTTP where Vapi's docs use it), on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI
from vapi import Vapi
from vapi.core.api_error import ApiError

from harness.fake_llm import DEFAULT_REPLY, FakeLLMConfig
from harness.fake_llm import create_app as fake_app
from harness.servers import ServerThread
from mock_vapi.api.app import create_app
from mock_vapi.api.store import Store

pytestmark = pytest.mark.slow
KEY = "vapi-private-key-1"
LLM_KEY = "sk-custom-llm-key-42"
NO_RETRY: Any = {"max_retries": 0}


@pytest.fixture
def upstream(serve: Callable[[Any], ServerThread]) -> ServerThread:
    """The user's custom LLM: it accepts only the credential's key."""
    return serve(fake_app(FakeLLMConfig(ttft_ms=2, chunk_delay_ms=1, api_key=LLM_KEY)))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "vapi.sqlite3"


@pytest.fixture
def mock(serve: Callable[[Any], ServerThread], db: Path, upstream: ServerThread) -> Iterator[ServerThread]:
    store = Store(db)
    yield serve(create_app(store, KEY, {"openai": f"{upstream.url}/v1"}))


@contextmanager
def sdk(server: ServerThread) -> Iterator[Vapi]:
    """Vapi's SDK, unchanged but for the base URL (its HTTP client closed at the end)."""
    with httpx.Client(timeout=30) as client:
        yield Vapi(token=KEY, base_url=server.url, httpx_client=client)


@pytest.fixture
def vapi(mock: ServerThread) -> Iterator[Vapi]:
    with sdk(mock) as client:
        yield client


def http(mock: ServerThread) -> httpx.Client:
    return httpx.Client(base_url=mock.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=10)


def custom_llm(upstream: ServerThread, **extra: Any) -> dict[str, Any]:
    system = {"role": "system", "content": "You are Ava."}
    return {"provider": "custom-llm", "url": f"{upstream.url}/v1", "model": "my-model", "messages": [system], **extra}


def test_the_provisioning_flow_with_the_official_sdk(mock: ServerThread, upstream: ServerThread, vapi: Vapi) -> None:
    with http(mock) as client:
        created = client.post("/credential", json={"provider": "custom-llm", "apiKey": LLM_KEY, "name": "my llm"})
    assert created.status_code == 201
    credential = created.json()
    assert credential["provider"] == "custom-llm" and "apiKey" not in credential and LLM_KEY not in created.text
    assistant = vapi.assistants.create(name="Ava", model=custom_llm(upstream), metadata={"tenant": "acme"})
    assert assistant.id and assistant.org_id and assistant.model is not None
    chat = vapi.chats.create(assistant_id=assistant.id, input="What time do you open?")
    assert chat.output is not None and chat.output[0].content == DEFAULT_REPLY.strip()
    received = upstream.app.state.fake.recorded[-1]
    assert received.authorized is True  # the credential's key, as Authorization: Bearer
    assert received.body["messages"][0] == {"role": "system", "content": "You are Ava."}
    assert received.body["metadata"] == {"tenant": "acme"} and received.body["call"]["id"] == chat.id
    # The fine-tuned-model step: PATCH metadataSendMode off, and Vapi's fields stop reaching the model.
    updated = vapi.assistants.update(assistant.id, model=custom_llm(upstream, metadataSendMode="off"))
    assert updated.model is not None
    follow_up = vapi.chats.create(previous_chat_id=chat.id, input="And on Saturday?")
    body = upstream.app.state.fake.recorded[-1].body
    assert not {"call", "metadata", "customer", "phoneNumber"} & set(body)
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert vapi.chats.get(follow_up.id).previous_chat_id == chat.id
    listed = vapi.chats.list()
    assert {c.id for c in listed.results or []} == {chat.id, follow_up.id}
    assert [a.id for a in vapi.assistants.list()] == [assistant.id]
    deleted = vapi.assistants.delete(assistant.id)
    assert deleted.id == assistant.id
    with pytest.raises(ApiError) as missing:
        vapi.assistants.get(assistant.id, request_options=NO_RETRY)
    assert missing.value.status_code == 404


def test_chats_in_one_session_share_the_conversation(mock: ServerThread, upstream: ServerThread, vapi: Vapi) -> None:
    with http(mock) as client:
        client.post("/credential", json={"provider": "custom-llm", "apiKey": LLM_KEY})
    assistant = vapi.assistants.create(model=custom_llm(upstream))
    first = vapi.chats.create(assistant_id=assistant.id, session_id="session-1", input="My name is Ada.")
    second = vapi.chats.create(session_id="session-1", input="What is my name?")
    body = upstream.app.state.fake.recorded[-1].body
    assert [m["content"] for m in body["messages"][1:]] == [
        "My name is Ada.",
        DEFAULT_REPLY.strip(),
        "What is my name?",
    ]
    assert second.assistant_id == assistant.id and first.session_id == second.session_id == "session-1"
    listed = vapi.chats.list(session_id="session-1")
    assert {c.id for c in listed.results or []} == {first.id, second.id}


def test_streamed_chat_sends_vapis_events(mock: ServerThread, upstream: ServerThread) -> None:
    with http(mock) as client:
        client.post("/credential", json={"provider": "custom-llm", "apiKey": LLM_KEY})
        assistant = client.post("/assistant", json={"model": custom_llm(upstream)}).json()
        with client.stream(
            "POST", "/chat", json={"assistantId": assistant["id"], "input": "Hi", "stream": True}
        ) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]
        assert len(events) > 3
        assert {e["path"] for e in events} == {"chat.output[0].content"}
        assert "".join(e["delta"] for e in events) == DEFAULT_REPLY.strip()
        chat = client.get(f"/chat/{events[0]['id']}").json()
    assert chat["output"][0]["content"] == DEFAULT_REPLY.strip() and chat["stream"] is True


def test_the_sdk_gets_vapis_stream_for_a_streamed_chat(mock: ServerThread, upstream: ServerThread, vapi: Vapi) -> None:
    """Vapi answers `stream: true` with SSE, which this SDK version reads as one JSON body and gives up on
    (ApiError with the raw text): the same thing happens against Vapi, and the text is Vapi's events."""
    with http(mock) as client:
        client.post("/credential", json={"provider": "custom-llm", "apiKey": LLM_KEY})
    assistant = vapi.assistants.create(model=custom_llm(upstream))
    with pytest.raises(ApiError) as raised:
        vapi.chats.create(assistant_id=assistant.id, input="Hi", stream=True, request_options=NO_RETRY)
    assert raised.value.status_code == 200
    events = [json.loads(line[6:]) for line in str(raised.value.body).splitlines() if line.startswith("data: ")]
    assert "".join(e["delta"] for e in events) == DEFAULT_REPLY.strip()
    assert vapi.chats.get(events[0]["id"]).stream is True


def test_responses_endpoint_with_the_openai_sdk(mock: ServerThread, upstream: ServerThread) -> None:
    with http(mock) as client:
        client.post("/credential", json={"provider": "custom-llm", "apiKey": LLM_KEY})
        assistant = client.post("/assistant", json={"model": custom_llm(upstream)}).json()
    with OpenAI(base_url=f"{mock.url}/chat", api_key=KEY, max_retries=0) as openai:
        response = openai.responses.create(model="unused", input="Hi", extra_body={"assistantId": assistant["id"]})
        assert response.output_text == DEFAULT_REPLY.strip()
        with openai.responses.create(
            model="unused", input="Hi", stream=True, extra_body={"assistantId": assistant["id"]}
        ) as stream:
            deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
    assert "".join(deltas) == DEFAULT_REPLY.strip()


def test_provider_models_go_to_the_configured_base_url(mock: ServerThread, upstream: ServerThread, vapi: Vapi) -> None:
    with http(mock) as client:
        refused = client.post(
            "/chat", json={"assistant": {"model": {"provider": "openai", "model": "gpt-4o"}}, "input": "Hi"}
        )
        assert refused.status_code == 400 and "no openai credential" in refused.json()["message"][0]
        client.post("/credential", json={"provider": "openai", "apiKey": LLM_KEY})
    chat = vapi.chats.create(assistant={"model": {"provider": "openai", "model": "gpt-4o"}}, input="Hi")
    assert chat.output is not None and chat.output[0].content == DEFAULT_REPLY.strip()
    body = upstream.app.state.fake.recorded[-1].body
    assert body["model"] == "gpt-4o" and "call" not in body


def test_errors_answer_like_vapi(mock: ServerThread, upstream: ServerThread) -> None:
    anonymous = httpx.get(f"{mock.url}/assistant")
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "Unauthorized"
    with http(mock) as client:
        bad = client.post("/credential", json={"provider": "custom-llm", "apiKye": "x"})
        assert bad.status_code == 400
        assert bad.json()["message"] == ["property apiKye should not exist", "apiKey must be a non-empty string"]
        bad_model = client.post("/assistant", json={"model": {"provider": "custom-llm", "model": "m"}})
        assert bad_model.status_code == 400 and bad_model.json()["message"] == ["model.url must be a URL address"]
        missing = client.get("/chat/nope")
        assert missing.status_code == 404 and missing.json()["statusCode"] == 404
        no_route = client.get("/nowhere")
        assert no_route.status_code == 404 and no_route.json()["message"] == "Cannot GET /nowhere"


def test_a_restart_keeps_everything(
    serve: Callable[[Any], ServerThread], db: Path, mock: ServerThread, upstream: ServerThread, vapi: Vapi
) -> None:
    with http(mock) as client:
        credential = client.post("/credential", json={"provider": "custom-llm", "apiKey": LLM_KEY}).json()
    assistant = vapi.assistants.create(model=custom_llm(upstream), credential_ids=[credential["id"]])
    chat = vapi.chats.create(assistant_id=assistant.id, input="Hi")
    options: Any = {"additional_body_parameters": {"simulation": {"turns": [{"user": "Hi"}]}}}
    call = vapi.calls.create(assistant_id=assistant.id, request_options=options)
    for _ in range(400):  # bounded wait for the simulated call to end
        if vapi.calls.get(call.id).status == "ended":
            break
        time.sleep(0.025)
    mock.stop()
    again = serve(create_app(Store(db), KEY))
    with sdk(again) as restarted:
        assert restarted.assistants.get(assistant.id).credential_ids == [credential["id"]]
        assert restarted.chats.get(chat.id).output is not None
        assert restarted.calls.get(call.id).ended_reason == "customer-ended-call"
        follow_up = restarted.chats.create(previous_chat_id=chat.id, input="Still there?")  # the key survived too
    assert follow_up.output is not None and upstream.app.state.fake.recorded[-1].authorized is True


def test_debug_requests_show_what_the_llm_received(mock: ServerThread, upstream: ServerThread) -> None:
    with http(mock) as client:
        client.post("/credential", json={"provider": "custom-llm", "apiKey": LLM_KEY})
        headers = {"X-Tenant": "acme", "X-Api-Token": "sk-tenant-0123456789"}  # the second looks like a secret
        model = custom_llm(upstream, headers=headers, maxTokens=90)
        assistant = client.post("/assistant", json={"model": model}).json()
        chat = client.post("/chat", json={"assistantId": assistant["id"], "input": "Hi"}).json()
        sent = client.get("/debug/requests").json()
    entry = sent[-1]
    assert entry["for"] == {"type": "chat", "id": chat["id"]}
    assert entry["url"] == f"{upstream.url}/v1/chat/completions"
    assert entry["headers"]["Authorization"] == "[redacted]" and entry["headers"]["X-Tenant"] == "acme"
    assert entry["headers"]["X-Api-Token"] == "[redacted]" and "sk-tenant" not in json.dumps(sent)
    assert entry["body"]["max_tokens"] == 90  # a count, not a secret
    assert entry["body"]["messages"][-1] == {"role": "user", "content": "Hi"}
    assert entry["response"]["status"] == 200 and entry["timings"]["ttft_ms"] > 0
    assert LLM_KEY not in json.dumps(sent)
