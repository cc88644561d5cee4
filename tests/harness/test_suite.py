"""The default suite, read from its table: the same probes, in the same order, with the same requests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness.checks import Expect
from harness.suite import SYSTEM_PROMPT, WEATHER_TOOL, Probe, Target, default_probes
from mock_vapi import CustomLLMModel, MetadataSendMode
from mock_vapi.reader import Abort

ROOT = Path(__file__).resolve().parents[2]
MODEL = CustomLLMModel(url="http://127.0.0.1:9/v1", model="m")  # metadataSendMode "variable"
NAMES = [
    "stream_basic",
    "non_stream",
    "stream_tool_call",
    "non_stream_tool_call",
    "after_tool_result",
    "metadata_off",
    "metadata_variable",
    "metadata_destructured",
    "stream_usage",
    "malformed_body",
    "wrong_api_key",
    "missing_api_key",
    "barge_in",
    "after_barge_in",
    "turn_after_barge_in",
]


def suite(api_key: str | None = "sk-suite-1", **kwargs: Any) -> dict[str, Probe]:
    return {p.name: p for p in default_probes(Target(MODEL, api_key), **kwargs)}


def body(probe: Probe) -> dict[str, Any]:
    assert probe.request.json_body is not None
    parsed: dict[str, Any] = json.loads(probe.request.body)
    return parsed


def test_the_probes_and_their_order() -> None:
    assert list(suite()) == NAMES
    assert list(suite(api_key=None)) == [n for n in NAMES if not n.endswith("_api_key")]
    assert [m.value for m in MetadataSendMode] == ["off", "variable", "destructured"]


def test_what_each_probe_expects_and_how_it_is_sent() -> None:
    probes = suite(barge_in_pause_ms=250)
    expects = {name: p.expect for name, p in probes.items() if p.expect is not Expect.TURN}
    assert expects == {
        "malformed_body": Expect.MALFORMED,
        "wrong_api_key": Expect.AUTH,
        "missing_api_key": Expect.AUTH,
        "barge_in": Expect.BARGE_IN,
    }
    assert {name for name, p in probes.items() if p.abort != Abort.NEVER} == {"barge_in"}
    assert probes["barge_in"].abort == Abort(at_first_delta=True)
    assert {name: p.pause_before_s for name, p in probes.items() if p.pause_before_s} == {"after_barge_in": 0.25}
    assert "re-sent 250 ms after the barge-in" in probes["after_barge_in"].description
    assert {name for name, p in probes.items() if p.optional} == {
        "metadata_off",
        "metadata_destructured",
        "stream_usage",
    }
    assert probes["metadata_off"].description == "The streamed turn with metadataSendMode 'off' (not configured)"
    assert probes["metadata_variable"].description == "The streamed turn with metadataSendMode 'variable'"
    assert {name for name, p in probes.items() if not p.request.stream} == {"non_stream", "non_stream_tool_call"}
    assert all(p.reference is None for p in probes.values())


def test_the_request_bodies() -> None:
    probes = suite()
    bodies = {name: body(p) for name, p in probes.items() if name != "malformed_body"}
    offered = {name for name, b in bodies.items() if "tools" in b}
    assert offered == {"stream_tool_call", "non_stream_tool_call", "after_tool_result"}
    assert all(b["tools"] == [WEATHER_TOOL] for name, b in bodies.items() if name in offered)
    assert {b["call"]["id"] for b in bodies.values() if "call" in b} == {bodies["stream_basic"]["call"]["id"]}
    for name, b in bodies.items():
        assert b["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}, name
        assert b["stream"] is probes[name].request.stream, name
    last_user = {
        name: b["messages"][-1]["content"] for name, b in bodies.items() if b["messages"][-1]["role"] == "user"
    }
    assert last_user["stream_basic"] == "What time do you open tomorrow?"
    assert last_user["stream_tool_call"] == "What's the weather like in Paris right now?"
    assert last_user["barge_in"] == "What time do you open tomorrow? And on Saturday?"
    assert last_user["after_barge_in"] == "What time do you open tomorrow, and on Saturday?"
    assert last_user["turn_after_barge_in"] == "Thanks. Do you take walk-ins?"
    after_tool = bodies["after_tool_result"]["messages"]
    assert [m["role"] for m in after_tool] == ["system", "assistant", "user", "assistant", "tool"]
    assert after_tool[3]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"location":"Paris"}'}
    assert after_tool[4] == {"role": "tool", "tool_call_id": "call_weather_1", "content": "Sunny, 21 degrees Celsius."}
    assert bodies["stream_usage"]["stream_options"] == {"include_usage": True}
    assert "metadata" not in bodies["metadata_off"] and "call" not in bodies["metadata_off"]
    assert bodies["metadata_variable"]["metadata"] == {"tenant": "acme", "plan": "gold"}
    assert bodies["metadata_destructured"]["tenant"] == "acme" and "metadata" not in bodies["metadata_destructured"]


def test_the_raw_body_and_header_probes() -> None:
    probes = suite()
    malformed = probes["malformed_body"].request
    assert malformed.body == b'{"model": "x", "messages": [{"role": "user", "content": "Hello"'
    assert malformed.json_body is None
    assert probes["stream_basic"].request.header("authorization") == "Bearer sk-suite-1"
    assert probes["wrong_api_key"].request.header("authorization") == "Bearer wrong-key-0000"
    assert probes["missing_api_key"].request.header("authorization") is None
    assert body(probes["wrong_api_key"]) == body(probes["stream_basic"])


def test_probes_share_no_message_with_each_other() -> None:
    first, second = suite(), suite()
    first["after_tool_result"].request.json_body["messages"][3]["tool_calls"][0]["id"] = "changed"  # type: ignore[index]
    assert body(second["after_tool_result"])["messages"][3]["tool_calls"][0]["id"] == "call_weather_1"
    assert second["after_tool_result"].request.json_body["messages"][3]["tool_calls"][0]["id"] == "call_weather_1"  # type: ignore[index]


def test_the_default_system_prompt_has_one_owner() -> None:
    text = "receptionist for Acme Dental"
    holders = sorted(
        str(path.relative_to(ROOT))
        for package in ("harness", "mock_vapi")
        for path in (ROOT / package).rglob("*.py")
        if text in path.read_text(encoding="utf-8")
    )
    assert holders == ["harness/suite.py"]
    assert text in SYSTEM_PROMPT


def test_the_load_call_speaks_with_the_suites_system_prompt() -> None:
    # In a subprocess: importing harness.load brings in locust, which monkey-patches the interpreter.
    code = "from harness.load.user import default_call; print(default_call().model['messages'][0]['content'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == SYSTEM_PROMPT
