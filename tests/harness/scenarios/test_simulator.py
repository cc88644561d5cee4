"""The call simulator against real servers: what each request of a call carries, turn by turn."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.fake_llm import DEFAULT_REPLY
from harness.servers import ServerThread
from mock_vapi.exchange import Outcome
from mock_vapi.reader import ReadLimits, new_session
from mock_vapi.scenarios.model import Scenario
from mock_vapi.simulator import CallRecord, CallSimulator

pytestmark = pytest.mark.slow
SYSTEM = {"role": "system", "content": "You are Ava."}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    },
}
SPOKEN_REPLY = " ".join(DEFAULT_REPLY.split())


def scenario(turns: list[dict[str, Any]], **assistant: Any) -> Scenario:
    tool_results = assistant.pop("toolResults", None)
    simulator = assistant.pop("simulator", None)
    model = {"model": "m", "messages": [SYSTEM], **assistant.pop("model", {})}
    document: dict[str, Any] = {"name": "t", "assistant": {**assistant, "model": model}, "turns": turns}
    if tool_results:
        document["toolResults"] = tool_results
    if simulator:
        document["simulator"] = simulator
    return Scenario.from_dict(document, "test")


def play(server: ServerThread, played: Scenario) -> CallRecord:
    async def go() -> CallRecord:
        async with new_session() as session:
            limits = ReadLimits(deadline_s=5, close_grace_s=0.5)
            return await CallSimulator(played, f"{server.url}/v1", session, limits=limits).play()

    return asyncio.run(go())


def bodies(server: ServerThread) -> list[dict[str, Any]]:
    return [r.body for r in server.app.state.fake.recorded]


def test_static_first_message_and_spoken_history(fake_llm: Callable[..., ServerThread]) -> None:
    server = fake_llm()
    call = play(server, scenario([{"user": "Hi"}, {"user": "And tomorrow?"}], firstMessage="Hello, Ava here."))
    first, second = bodies(server)
    assert first["messages"] == [
        SYSTEM,
        {"role": "assistant", "content": "Hello, Ava here."},
        {"role": "user", "content": "Hi"},
    ]
    assert second["messages"][3] == {"role": "assistant", "content": SPOKEN_REPLY}
    assert second["messages"][4] == {"role": "user", "content": "And tomorrow?"}
    assert first["call"]["id"] == second["call"]["id"] == call.call_id
    assert call.ended_reason == "customer-ended-call"


def test_waiting_and_model_generated_first_messages(fake_llm: Callable[..., ServerThread]) -> None:
    waits = fake_llm()
    play(waits, scenario([{"user": "Hi"}], firstMessage="unused", firstMessageMode="assistant-waits-for-user"))
    assert bodies(waits)[0]["messages"] == [SYSTEM, {"role": "user", "content": "Hi"}]
    generated = fake_llm()
    mode = "assistant-speaks-first-with-model-generated-message"
    call = play(generated, scenario([{"user": "Hi"}], firstMessageMode=mode))
    opening, turn = bodies(generated)
    assert opening["messages"] == [SYSTEM]
    assert turn["messages"][1] == {"role": "assistant", "content": SPOKEN_REPLY}
    assert call.turns[0].index == 0 and call.turns[0].spoken == SPOKEN_REPLY


@pytest.mark.parametrize(("switch", "content"), [("null", None), ("empty", "")])
def test_tool_call_then_result_then_follow_up(fake_llm: Callable[..., ServerThread], switch: str, content: Any) -> None:
    server = fake_llm()
    played = scenario(
        [{"user": "What's the weather in Paris?"}],
        model={"tools": [WEATHER]},
        toolResults={"get_weather": "Sunny, 21 degrees."},
        simulator={"toolCallContent": switch},
    )
    call = play(server, played)
    first, follow_up = bodies(server)
    assert first["tools"][0]["function"]["name"] == "get_weather"
    assistant, tool = follow_up["messages"][-2:]
    assert assistant["role"] == "assistant" and assistant["content"] == content
    assert assistant["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"location": "Paris"}'}
    assert tool == {"role": "tool", "tool_call_id": assistant["tool_calls"][0]["id"], "content": "Sunny, 21 degrees."}
    assert "21 degrees" in call.turns[0].spoken
    assert call.turns[0].tool_runs[0].arguments == {"location": "Paris"}


def test_function_tool_with_a_server_url_gets_vapis_tool_calls_message(
    fake_llm: Callable[..., ServerThread], serve: Callable[[Any], ServerThread]
) -> None:
    received: list[tuple[dict[str, str], Any]] = []

    async def tools(request: Request) -> JSONResponse:
        body = await request.json()
        received.append((dict(request.headers), body))
        call_id = body["message"]["toolCallList"][0]["id"]
        return JSONResponse({"results": [{"toolCallId": call_id, "result": "Cloudy, 12 degrees."}]})

    webhook = serve(Starlette(routes=[Route("/tools", tools, methods=["POST"])]))
    tool = {**WEATHER, "server": {"url": f"{webhook.url}/tools", "secret": "s3cret"}}
    server = fake_llm()
    call = play(server, scenario([{"user": "Weather in Paris?"}], model={"tools": [tool]}))
    headers, body = received[0]
    message = body["message"]
    assert headers["x-vapi-secret"] == "s3cret"
    assert message["type"] == "tool-calls"
    assert message["toolCallList"][0]["function"] == {"name": "get_weather", "arguments": {"location": "Paris"}}
    assert message["call"]["id"] == call.call_id and message["customer"]["number"]
    assert bodies(server)[1]["messages"][-1]["content"] == "Cloudy, 12 degrees."


def test_a_wrong_webhook_answer_becomes_the_tool_error(
    fake_llm: Callable[..., ServerThread], serve: Callable[[Any], ServerThread]
) -> None:
    async def tools(request: Request) -> JSONResponse:
        return JSONResponse({"result": "not in a results array"})

    webhook = serve(Starlette(routes=[Route("/tools", tools, methods=["POST"])]))
    tool = {**WEATHER, "server": {"url": f"{webhook.url}/tools"}}
    server = fake_llm()
    call = play(server, scenario([{"user": "Weather in Paris?"}], model={"tools": [tool]}))
    run = call.turns[0].tool_runs[0]
    assert run.result is None and run.error is not None and "results" in run.error
    assert json.loads(bodies(server)[1]["messages"][-1]["content"]) == {"error": run.error}


def test_barge_in_with_a_longer_utterance_resends_the_turn(fake_llm: Callable[..., ServerThread]) -> None:
    server = fake_llm(chunk_delay_ms=20)
    interrupts = [{"afterChars": 10, "user": "I need to move"}, {"afterMs": 150, "user": "I need to move my booking"}]
    call = play(server, scenario([{"user": "I need", "interrupt": interrupts}], firstMessage="Hi"))
    recorded = server.app.state.fake.recorded
    users = [body["messages"][-1]["content"] for body in bodies(server)]
    assert users == ["I need", "I need to move", "I need to move my booking"]
    assert [r.outcome for r in recorded][:2] == ["client_disconnected", "client_disconnected"]
    assert all(m["role"] != "assistant" or m["content"] == "Hi" for body in bodies(server) for m in body["messages"])
    outcomes = [e.outcome for e in call.turns[0].exchanges]
    assert outcomes == [Outcome.ABORTED, Outcome.ABORTED, Outcome.COMPLETE]


def test_a_caller_who_cuts_off_leaves_the_spoken_part_in_history(fake_llm: Callable[..., ServerThread]) -> None:
    server = fake_llm(chunk_delay_ms=20)
    play(server, scenario([{"user": "When do you open?", "interrupt": {"afterChars": 25}}, {"user": "Saturday?"}]))
    said = bodies(server)[1]["messages"][-2]
    assert said["role"] == "assistant"
    assert SPOKEN_REPLY.startswith(said["content"]) and 10 <= len(said["content"]) < len(SPOKEN_REPLY)
    assert said["content"] == said["content"].strip() and SPOKEN_REPLY[len(said["content"])] == " "  # whole words


def test_end_call_stops_the_call(fake_llm: Callable[..., ServerThread]) -> None:
    server = fake_llm()
    call = play(
        server, scenario([{"user": "Thanks, goodbye"}, {"user": "Hello?"}], model={"tools": [{"type": "endCall"}]})
    )
    assert call.ended_reason == "assistant-ended-call"
    assert call.turns[0].ended_call and len(call.turns) == 1
    assert len(bodies(server)) == 1


def test_an_endpoint_error_ends_the_call_with_vapis_reason(fake_llm: Callable[..., ServerThread]) -> None:
    call = play(fake_llm(faults={"status-500"}), scenario([{"user": "Hi"}, {"user": "Hello?"}]))
    assert call.ended_reason == "pipeline-error-custom-llm-500-server-error"
    assert call.turns[0].problem is not None and len(call.turns) == 1
