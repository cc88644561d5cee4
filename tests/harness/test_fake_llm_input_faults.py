"""The fake LLM's input faults: each breaks only a request of its class, judged as `check` judges it, and
answers any other request normally, so `check`'s default suite passes against every one of them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pytest

from harness.checks import Severity, Status
from harness.fake_llm import triggers
from harness.fake_llm.script import INPUT_FAULTS, Fault, set_off
from harness.fake_llm.triggers import LONG_HISTORY_MESSAGES, LONG_TOOL_RESULT_CHARS
from harness.judging import judge_exchange
from harness.servers import ServerThread
from harness.suite import SYSTEM_PROMPT, WEATHER_TOOL, Probe
from mock_vapi import CallContext, CustomLLMModel, MetadataSendMode, VapiRequest, build_request
from mock_vapi.exchange import Exchange
from mock_vapi.reader import ReadLimits, new_session, read_into

FAST = ("--timeout-s", "2", "--deadline-s", "4", "--close-grace-s", "0.5", "--barge-in-pause-ms", "200")
_LIMITS = ReadLimits(first_delta_s=2.0, deadline_s=4.0, close_grace_s=0.5)


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


def _calls(*ids: str) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": i, "type": "function", "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'}}
            for i in ids
        ],
    }


def _result(call_id: str, content: str = "Sunny, 21 degrees Celsius.") -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


@dataclass(frozen=True)
class Turn:
    """A turn to send: its history, metadata, call and mode (an ordinary one by default)."""

    messages: Sequence[Mapping[str, Any]] = (_user("What time do you open tomorrow?"),)
    metadata: Mapping[str, Any] | None = None
    web: bool = False
    mode: MetadataSendMode = MetadataSendMode.VARIABLE

    def request(self, url: str) -> VapiRequest:
        model = CustomLLMModel(url=url, model="m", tools=(WEATHER_TOOL,), metadata_send_mode=self.mode)
        meta = self.metadata if self.metadata is not None else {"tenant": "acme"}
        context = CallContext.web_call(metadata=meta) if self.web else CallContext.inbound_phone_call(metadata=meta)
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, *self.messages]
        return build_request(model, messages, context=context)

    def body(self) -> dict[str, Any]:
        return dict(json.loads(self.request("http://127.0.0.1:9/v1").body))

    def with_result(self, content: str) -> Turn:
        """The same turn, its last tool message saying `content`."""
        return replace(self, messages=(*self.messages[:-1], _result("call_1", content)))


_ORDINARY = Turn()
_AFTER_TOOL = Turn((_user("Weather in Paris?"), _calls("call_1"), _result("call_1")))
_LONG = Turn(tuple(_user(f"Turn {i}") if i % 2 == 0 else {"role": "assistant", "content": "Okay."} for i in range(41)))
_PARALLEL = Turn((_user("Paris and Rome?"), _calls("call_1", "call_2"), _result("call_1"), _result("call_2")))
_LONG_RESULT = Turn((_user("Weather in Paris?"), _calls("call_1"), _result("call_1", "x" * 2001)))

# fault -> (a turn that sets it off, the error-severity check its reply fails)
TRIGGERS: dict[Fault, tuple[Turn, str]] = {
    Fault.ASTRAL_500: (Turn((_user("Book me a table \U0001f363 please"),)), "status_is_success"),
    Fault.LONG_HISTORY_NO_CHOICES: (_LONG, "chunks_have_choices"),
    Fault.WEB_CALL_INVALID_JSON: (Turn(web=True), "sse_data_is_json"),
    Fault.DEEP_METADATA_DROP: (Turn(metadata={"a": {"b": {"c": 1}}}), "body_is_complete"),
    Fault.PARALLEL_TOOLS_ERROR_CHUNK: (_PARALLEL, "chunk_has_no_error"),
    Fault.LONG_TOOL_RESULT_UNTERMINATED: (_LONG_RESULT, "last_event_terminated"),
}


def test_every_input_fault_has_a_trigger_here_and_a_class() -> None:
    assert set(TRIGGERS) == set(INPUT_FAULTS)
    assert all(Fault.parse(fault.value) is fault for fault in INPUT_FAULTS)


def _errors(url: str, turns: Sequence[Turn]) -> list[set[str]]:
    """The error-severity checks each turn's reply fails, read and judged as `check` does."""

    async def send() -> list[set[str]]:
        failed: list[set[str]] = []
        async with new_session() as session:
            for turn in turns:
                request = turn.request(url)
                exchange = await read_into(session, Exchange(request, 0.0), _LIMITS)
                result = judge_exchange(Probe("explore", "a generated turn", request), exchange)
                failed.append(
                    {f.check for f in result.findings if f.status is Status.FAILED and f.severity is Severity.ERROR}
                )
        return failed

    return asyncio.run(send())


@pytest.mark.parametrize("fault", list(TRIGGERS), ids=[f.value for f in TRIGGERS])
def test_an_input_fault_breaks_its_class_only(fault: Fault, fake_llm: Callable[..., ServerThread]) -> None:
    turn, check_id = TRIGGERS[fault]
    assert set_off(frozenset(INPUT_FAULTS), turn.body()) == {fault}  # the trigger is of this class alone
    server = fake_llm(faults={fault})
    ordinary, after_tool, triggered = _errors(f"{server.url}/v1", [_ORDINARY, _AFTER_TOOL, turn])
    assert check_id in triggered, triggered
    assert ordinary == set() and after_tool == set()


def test_with_no_input_fault_the_triggers_are_answered_normally(fake_llm: Callable[..., ServerThread]) -> None:
    server = fake_llm()
    turns = [turn for turn, _ in TRIGGERS.values()]
    assert _errors(f"{server.url}/v1", turns) == [set()] * len(turns)


def test_the_default_suite_sends_no_input_class(
    fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]
) -> None:
    """Only `explore` can find these faults: `check` passes with all of them on."""
    server = fake_llm(faults=set(INPUT_FAULTS))
    result = run_cli("check", "--url", f"{server.url}/v1", *FAST)
    assert result.code == 0, result.out
    assert result.failed() == set()
    assert result.report is not None and result.report["verdict"] == "passed"


def test_astral_text_is_a_character_beyond_the_bmp_in_any_message() -> None:
    assert triggers.has_astral_text(Turn((_user("ok \U0001f44d"),)).body())
    assert triggers.has_astral_text(_AFTER_TOOL.with_result("\U0001f600").body())
    assert not triggers.has_astral_text(Turn((_user("caf\u00e9 \u4f60\u597d \u05e9\u05dc\u05d5\u05dd \u2764"),)).body())
    assert not triggers.has_astral_text(Turn(metadata={"emoji": "\U0001f600"}).body())  # metadata is not a message


def test_a_long_history_has_more_than_40_messages() -> None:
    body = _LONG.body()
    assert len(body["messages"]) == LONG_HISTORY_MESSAGES + 2 and triggers.is_long_history(body)
    body["messages"] = body["messages"][:LONG_HISTORY_MESSAGES]
    assert not triggers.is_long_history(body)


def test_a_web_call_has_vapi_extras_but_no_customer() -> None:
    assert triggers.is_web_call(Turn(web=True).body())
    assert triggers.is_web_call(Turn(web=True, mode=MetadataSendMode.DESTRUCTURED).body())
    assert not triggers.is_web_call(_ORDINARY.body())
    assert not triggers.is_web_call(Turn(web=True, mode=MetadataSendMode.OFF).body())


@pytest.mark.parametrize("mode", [MetadataSendMode.VARIABLE, MetadataSendMode.DESTRUCTURED])
def test_deep_metadata_is_three_levels_deep_or_a_non_ascii_key(mode: MetadataSendMode) -> None:
    assert triggers.has_deep_metadata(Turn(metadata={"a": {"b": {"c": 1}}}, mode=mode).body())
    assert triggers.has_deep_metadata(Turn(metadata={"a": [[1]]}, mode=mode).body())
    assert triggers.has_deep_metadata(Turn(metadata={"cl\u00e9": "v"}, mode=mode).body())
    assert triggers.has_deep_metadata(Turn(metadata={"a": {"\u540d": 1}}, mode=mode).body())
    assert not triggers.has_deep_metadata(Turn(metadata={"a": {"b": 1}, "c": "\u00e9\U0001f600"}, mode=mode).body())
    assert not triggers.has_deep_metadata(Turn(metadata={"a": {"b": {"c": 1}}}, mode=MetadataSendMode.OFF).body())


def test_parallel_tool_calls_are_two_calls_in_one_message() -> None:
    assert triggers.has_parallel_tool_calls(_PARALLEL.body())
    two_rounds = (_user("Paris?"), _calls("c1"), _result("c1"), _user("Rome?"), _calls("c2"), _result("c2"))
    assert not triggers.has_parallel_tool_calls(Turn(two_rounds).body())


def test_a_long_tool_result_is_longer_than_2000_characters() -> None:
    assert triggers.has_long_tool_result(_LONG_RESULT.body())
    assert not triggers.has_long_tool_result(_AFTER_TOOL.with_result("x" * LONG_TOOL_RESULT_CHARS).body())
    assert not triggers.has_long_tool_result(Turn((_user("x" * 5000),)).body())  # a long user message is not a result
