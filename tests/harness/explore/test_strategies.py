"""The generated conversations: every one is a request Vapi could send (Vapi's rules, OpenAI's request types),
every input class turns up often, and a failure shrinks to the plainest request that still shows it."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from functools import cache
from itertools import pairwise
from typing import Any

import jsonschema
from hypothesis import HealthCheck, find, given, seed, settings
from pydantic import TypeAdapter

from harness.explore.rules import rule_problems
from harness.explore.strategies import CALL_KINDS, FIRST_MESSAGE_MODES, Conversation, conversations
from harness.fake_llm import Fault
from harness.fake_llm.script import INPUT_FAULTS
from harness.fake_llm.triggers import is_web_call
from harness.protocol import CHAT_PARAMS
from mock_vapi import MetadataSendMode, build_request

URL = "http://127.0.0.1:9/v1"
KEY = "sk-explore-0123456789"
_QUIET = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example]


@cache
def _openai_validator(stream: bool) -> jsonschema.protocols.Validator:
    """OpenAI's own request type (the openai package's TypedDict, as pydantic writes its JSON Schema)."""
    from openai.types.chat.completion_create_params import (
        CompletionCreateParamsNonStreaming,
        CompletionCreateParamsStreaming,
    )

    params = CompletionCreateParamsStreaming if stream else CompletionCreateParamsNonStreaming
    schema = TypeAdapter(params).json_schema()
    return jsonschema.validators.validator_for(schema)(schema)


def _openai_errors(body: Mapping[str, Any]) -> list[str]:
    """How the OpenAI fields of `body` break OpenAI's request type; Vapi's extras (call, phoneNumber, customer,
    metadata, destructured metadata keys) are left out, as OpenAI's `metadata` is another thing."""
    fields = {k: v for k, v in body.items() if k in CHAT_PARAMS and k != "metadata"}
    validator = _openai_validator(bool(body.get("stream")))
    return [f"{e.json_path}: {e.message[:200]}" for e in validator.iter_errors(fields)]


def _body(conversation: Conversation) -> dict[str, Any]:
    return dict(json.loads(conversation.request().body))


@settings(max_examples=3000, deadline=None, database=None, suppress_health_check=_QUIET)
@given(conversations(URL))
def test_every_conversation_is_a_request_vapi_could_send(conversation: Conversation) -> None:
    request = conversation.request(api_key=KEY)
    body = json.loads(request.body)
    assert rule_problems(body) == []
    assert _openai_errors(body) == []
    assert request.url == f"{URL}/chat/completions"
    assert request.header("authorization") == f"Bearer {KEY}" and KEY.encode() not in request.body
    assert (
        request.body
        == build_request(
            conversation.model, conversation.messages, context=conversation.context, stream=conversation.stream
        ).body
    )  # the one request builder
    assert body["stream"] is conversation.stream
    assert conversation.kind in CALL_KINDS and conversation.first_message_mode in FIRST_MESSAGE_MODES
    assert (conversation.context is None) == (conversation.model.metadata_send_mode is MetadataSendMode.OFF)
    summary = conversation.summary()
    json.dumps(summary)
    assert summary["messages"] == len(body["messages"])
    assert summary["lastUserMessage"] is None or len(summary["lastUserMessage"]) <= 120


def _input_class(fault: Fault) -> str:
    """The class of request that sets off an input fault of the fake LLM, named after the fault."""
    return f"input:{fault.value}"


def _classes(conversation: Conversation) -> set[str]:
    """The input classes one conversation belongs to."""
    body = _body(conversation)
    messages = body["messages"]
    texts = [str(m.get("content") or "") for m in messages]
    mode = conversation.model.metadata_send_mode
    tools = body.get("tools") or []
    found = {f"mode:{mode.value}", f"first:{conversation.first_message_mode}", f"stream:{conversation.stream}"}
    if mode is not MetadataSendMode.OFF:
        found.add(f"call:{conversation.kind}")
        if conversation.context is not None and conversation.context.metadata:
            found.add("metadata:non-empty")
    found |= {_input_class(fault) for fault, applies in INPUT_FAULTS.items() if applies(body)}
    marks: dict[str, Callable[[str], bool]] = {
        "non-ascii": lambda t: not t.isascii(),
        "cjk": lambda t: any("\u4e00" <= c <= "\u9fff" for c in t),
        "right-to-left": lambda t: any("\u0590" <= c <= "\u06ff" for c in t),
        "combining": lambda t: any("\u0300" <= c <= "\u036f" for c in t),
        "zero-width": lambda t: any(c in "\u200b\u200c\u200d\u2060\ufeff" for c in t),
        "long-text": lambda t: len(t) >= 1000,
    }
    found |= {name for name, holds in marks.items() if any(holds(t) for t in texts)}
    if len(messages) == 1:
        found.add("system-only")
    if any(m.get("role") == "tool" for m in messages):
        found.add("tool-history")
    if any(m.get("role") == "tool" and m["content"] == "" for m in messages):
        found.add("async-tool-result")
    if any(m.get("role") == "user" and "metadata" in m for m in messages):
        found.add("transcriber-extras")
    if any(a.get("role") == b.get("role") == "user" for a, b in pairwise(messages)):
        found.add("cut-off-assistant")
    names = {t["function"]["name"] for t in tools}
    if names & {"endCall", "transferCall", "dtmf", "sms", "query", "voicemail"}:
        found.add("builtin-tool")
    schemas = json.dumps([t["function"].get("parameters") for t in tools])
    found |= {
        name for name, key in (("enum", '"enum"'), ("required", '"required"'), ("array", '"array"')) if key in schemas
    }
    if body["temperature"] != 0.5:
        found.add("temperature")
    if body["max_tokens"] != 250:
        found.add("max-tokens")
    return found


EXPECTED_CLASSES = {
    *(f"mode:{mode.value}" for mode in MetadataSendMode),
    *(f"first:{mode}" for mode in FIRST_MESSAGE_MODES),
    *(f"call:{kind}" for kind in CALL_KINDS),
    *map(_input_class, INPUT_FAULTS),
    "stream:True", "stream:False", "metadata:non-empty", "non-ascii", "cjk", "right-to-left", "combining", "zero-width",
    "long-text", "system-only", "tool-history", "transcriber-extras", "cut-off-assistant",
    "builtin-tool", "enum", "required", "array", "temperature",
    "max-tokens",
}  # fmt: skip


def test_every_input_class_turns_up_often() -> None:
    seen: Counter[str] = Counter()
    examples: list[int] = []

    @seed(20261204)
    @settings(max_examples=200, deadline=None, database=None, suppress_health_check=_QUIET)
    @given(conversations(URL))
    def draw(conversation: Conversation) -> None:
        examples.append(1)
        seen.update(_classes(conversation))

    draw()
    assert len(examples) == 200
    rare = {name: seen[name] for name in EXPECTED_CLASSES if seen[name] < 5}
    assert rare == {}, str(sorted(seen.items()))
    assert seen[_input_class(Fault.LONG_HISTORY_NO_CHOICES)] >= 10, (
        seen
    )  # histories of more than 40 messages: 5 % or more


def test_a_failure_shrinks_to_the_plainest_request_of_its_class() -> None:
    found = find(
        conversations(URL),
        lambda c: is_web_call(_body(c)),
        settings=settings(max_examples=500, database=None, suppress_health_check=_QUIET),
    )
    body = _body(found)
    assert body["call"]["type"] == "webCall" and "customer" not in body and "phoneNumber" not in body
    assert [m["role"] for m in body["messages"]] in (["system"], ["system", "user"])  # the call starts, or a turn
    assert all(len(m["content"]) <= 1 for m in body["messages"])
    assert "tools" not in body
    assert body["metadata"] == {}
    assert body["stream"] is True and body["temperature"] == 0.5 and body["max_tokens"] == 250
