"""`tool_call_name` is the one reader of a tool call's name: fragments, replies, history and recordings agree."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.protocol import ToolCallAssembler, answered_tool_calls, tool_call_name
from harness.replay import recorded_outcome
from tests.streams import DONE, STOP, TOOL_HEAD, chunk, recorded


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (TOOL_HEAD, "get_weather"),
        ({"id": "c", "type": "function", "function": {"name": "book", "arguments": "{}"}}, "book"),
        ({"index": 0, "function": {"arguments": '{"a":'}}, None),  # a later fragment carries no name
        ({"function": {"name": 7}}, None),
        ({"function": "get_weather"}, None),
        ("get_weather", None),
        (None, None),
    ],
    ids=["fragment", "message-call", "no-name", "not-a-string", "function-not-an-object", "not-an-object", "none"],
)
def test_tool_call_name(call: Any, name: str | None) -> None:
    assert tool_call_name(call) == name


def test_a_first_fragment_without_a_string_name_does_not_assemble() -> None:
    assembler = ToolCallAssembler()
    assembler.add({"index": 0, "id": "call_1", "function": {"name": 7, "arguments": "{}"}}, "event 1")
    assert assembler.calls[0].name is None
    assert assembler.problems and "lacks `id` or `function.name`" in assembler.problems[0]


def test_every_reader_of_names_agrees() -> None:
    frames = [
        chunk({"role": "assistant", "tool_calls": [TOOL_HEAD]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"location":"Paris"}'}}]}),
        STOP,
        DONE,
    ]
    streamed = recorded(frames)
    assert streamed.tool_call_names == {"get_weather"}
    assert [c.name for c in streamed.reply_tool_calls] == ["get_weather"]
    message = {"role": "assistant", "content": None, "tool_calls": [{**TOOL_HEAD, "function": {"name": "book"}}]}
    body = {"choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}]}
    not_streamed = recorded([json.dumps(body).encode()], stream=False, headers={"content-type": "application/json"})
    assert [c.name for c in not_streamed.reply_tool_calls] == ["book"]
    history = [{"role": "user", "content": "hi"}, message, {"role": "tool", "tool_call_id": "call_1", "content": "ok"}]
    assert answered_tool_calls(history) == {("book", "{}")}
    events = [{"data": f[len(b"data: ") :].strip().decode()} for f in frames]
    assert recorded_outcome({"status": 200, "events": events}).tool_names == ("get_weather",)
    assert recorded_outcome({"status": 200, "body": body}).tool_names == ("book",)
