"""`rule_problems`: it finds each way a body breaks Vapi's rules, and accepts every request Vapi's stand-ins
send (the default suite's probes, the shipped scenarios played by the call simulator)."""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from harness.explore.rules import rule_problems
from harness.scenarios.suites import load_suites
from harness.servers import ServerThread
from harness.suite import SYSTEM_PROMPT, WEATHER_TOOL, Target, default_probes
from mock_vapi import CallContext, CustomLLMModel, MetadataSendMode, build_request
from mock_vapi.reader import ReadLimits, new_session
from mock_vapi.simulator import CallSimulator

URL = "http://127.0.0.1:9/v1"
_CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'}}


def _body(mode: MetadataSendMode = MetadataSendMode.VARIABLE, *, web: bool = False) -> dict[str, Any]:
    """A valid body: an inbound phone call (or a web call) after a tool result, with metadata."""
    model = CustomLLMModel(url=URL, model="m", tools=(WEATHER_TOOL,), metadata_send_mode=mode)
    meta = {"tenant": "acme"}
    context = CallContext.web_call(metadata=meta) if web else CallContext.inbound_phone_call(metadata=meta)
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "assistant", "content": "Hi, this is Ava."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [_CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny."},
    ]
    return dict(json.loads(build_request(model, messages, context=context).body))


@pytest.mark.parametrize("mode", list(MetadataSendMode))
@pytest.mark.parametrize("web", [False, True])
def test_a_body_vapi_builds_has_no_problem(mode: MetadataSendMode, web: bool) -> None:
    assert rule_problems(_body(mode, web=web)) == []


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = body
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[int(last) if isinstance(target, list) else last] = value

    return change


def _drop(key: str) -> Callable[[dict[str, Any]], None]:
    def change(body: dict[str, Any]) -> None:
        del body[key]

    return change


def _as_web_call(body: dict[str, Any]) -> None:
    """A web call that still carries the customer (and the phone number) of a phone call."""
    body["call"] = {**body["call"], "type": "webCall"}


def _messages(change: Callable[[list[dict[str, Any]]], object]) -> Callable[[dict[str, Any]], None]:
    def apply(body: dict[str, Any]) -> None:
        change(body["messages"])

    return apply


# name -> (how to break the valid body, a piece of the problem it must report)
BROKEN: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "tool message answering no call": (_set("messages.4.tool_call_id", "call_9"), "answers no open tool call"),
    "tool call never answered": (_messages(lambda m: m.pop()), "unanswered tool calls"),
    "a call answered twice": (
        _messages(lambda m: m.append({"role": "tool", "tool_call_id": "call_1", "content": "x"})),
        "answers no open tool call",
    ),
    "user before the tool result": (
        _messages(lambda m: m.insert(4, {"role": "user", "content": "hello?"})),
        "before every tool call was answered",
    ),
    "system not first": (_messages(lambda m: m.insert(0, m.pop(1))), "the system prompt comes first"),
    "no system prompt": (_messages(lambda m: m.pop(0)), "the system prompt comes first"),
    "two assistant messages in a row": (
        _messages(lambda m: m.insert(2, {"role": "assistant", "content": "Again."})),
        "two assistant messages in a row",
    ),
    "ends with the assistant": (
        _messages(lambda m: m.append({"role": "assistant", "content": "Sunny in Paris."})),
        "ends with the assistant",
    ),
    "unknown role": (_set("messages.2.role", "caller"), "messages[2].role"),
    "empty user message": (_set("messages.2.content", ""), "messages[2].content"),
    "content not a string": (_set("messages.2.content", ["Weather?"]), "messages[2].content"),
    "arguments not a string": (_set("messages.3.tool_calls", [{**_CALL, "function": {"name": "f", "arguments": {}}}]),
                               "arguments"),
    "repeated tool call id": (
        _messages(
            lambda m: m.extend([
                {"role": "user", "content": "And Rome?"},
                {"role": "assistant", "content": "", "tool_calls": [_CALL]},
                {"role": "tool", "tool_call_id": "call_1", "content": "Rain."},
            ])
        ),
        "used twice",
    ),
    "web call carrying customer": (_as_web_call, "customer: a webCall has none"),
    "phone call without customer": (_drop("customer"), "customer: a phone call"),
    "customer unlike call.customer": (_set("customer", {"number": "+15550000000"}), "differs from call.customer"),
    "unknown call type": (_set("call.type", "carrierPigeon"), "call.type"),
    "metadata in off mode": (_drop("call"), "sent without `call`"),
    "metadata not an object": (_set("metadata", "acme"), "metadata: must be an object"),
    "temperature above 2": (_set("temperature", 2.5), "temperature"),
    "temperature below 0": (_set("temperature", -0.1), "temperature"),
    "temperature a string": (_set("temperature", "0.5"), "temperature"),
    "max_tokens below 50": (_set("max_tokens", 10), "max_tokens"),
    "max_tokens above 10000": (_set("max_tokens", 20000), "max_tokens"),
    "max_tokens a float": (_set("max_tokens", 250.5), "max_tokens"),
    "max_completion_tokens": (_set("max_completion_tokens", 250), "max_completion_tokens"),
    "stream missing": (_drop("stream"), "stream"),
    "model empty": (_set("model", ""), "model"),
    "no messages": (_set("messages", []), "messages"),
    "empty tools": (_set("tools", []), "tools"),
    "tool offered twice": (lambda body: body["tools"].append(copy.deepcopy(body["tools"][0])), "offered twice"),
    "bad tool name": (_set("tools.0.function.name", "get weather!"), "tools[0].function.name"),
    "parameters not an object schema": (_set("tools.0.function.parameters", {"type": "string"}), "parameters"),
    "lone surrogate": (_set("messages.2.content", "caf\ud800"), "lone surrogate"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(BROKEN))
def test_each_broken_body_is_named(name: str) -> None:
    change, expected = BROKEN[name]
    body = _body()
    change(body)
    problems = rule_problems(body)
    assert any(expected in problem for problem in problems), problems


def test_off_mode_allows_only_openai_fields() -> None:
    body = _body(MetadataSendMode.OFF)
    assert rule_problems(body) == []
    assert rule_problems({**body, "tenant": "acme"}) == [
        "tenant: not OpenAI fields (metadataSendMode off sends only those)"
    ]
    assert rule_problems({**body, "stream_options": {"include_usage": True}}) == []  # an OpenAI field


def test_destructured_metadata_spreads_over_the_top_level() -> None:
    body = _body(MetadataSendMode.DESTRUCTURED)
    assert body["tenant"] == "acme" and "metadata" not in body
    assert rule_problems(body) == []


def test_a_body_that_is_not_an_object() -> None:
    assert rule_problems([]) == ["body: must be a JSON object, got list"]  # type: ignore[arg-type]


@pytest.mark.parametrize(("word_confidence", "emotion"), [(False, False), (True, True)])
def test_every_default_probe_keeps_the_rules(word_confidence: bool, emotion: bool) -> None:
    target = Target(CustomLLMModel(url=URL, model="m"), api_key="sk-x", word_confidence=word_confidence,
                    emotion=emotion)  # fmt: skip
    probes = [p for p in default_probes(target) if p.name != "malformed_body"]
    assert len(probes) >= 14
    for probe in probes:
        assert rule_problems(json.loads(probe.request.body)) == [], probe.name


def test_every_request_of_the_shipped_scenarios_keeps_the_rules(fake_llm: Callable[..., ServerThread]) -> None:
    server = fake_llm()
    scenarios = load_suites(["conversations", "conformance"])
    assert len(scenarios) >= 8

    async def play_all() -> None:
        async with new_session() as session:
            for scenario in scenarios:
                limits = ReadLimits(deadline_s=5, close_grace_s=0.5)
                await CallSimulator(scenario, f"{server.url}/v1", session, limits=limits).play()

    asyncio.run(play_all())
    bodies = [r.body for r in server.app.state.fake.recorded]
    assert len(bodies) >= 40
    assert any(any(m.get("role") == "tool" for m in b["messages"]) for b in bodies)  # tool rounds were played
    assert [(i, rule_problems(b)) for i, b in enumerate(bodies) if rule_problems(b)] == []
