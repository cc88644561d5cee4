"""The call simulator plays what real assistants use (issue 15): variables, tool messages and async tools, a
custom knowledge base, the transcriber's extras, call endings and server messages; against real servers on
loopback (the custom LLM is the fake, the tool, knowledge base and assistant servers are our Starlette apps)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.judging import RunSettings
from harness.scenarios.runner import play_scenarios
from harness.servers import ServerThread
from mock_vapi.reader import ReadLimits, new_session
from mock_vapi.scenarios.loader import load_document
from mock_vapi.scenarios.model import Scenario
from mock_vapi.simulator import CallRecord, CallSimulator

pytestmark = pytest.mark.slow
PROMPT = 'Hello {{customerName}}, your plan is {{ plan | default: "basic" }}.'
BOOK = {
    "type": "function",
    "function": {
        "name": "bookAppointment",
        "parameters": {"type": "object", "properties": {"day": {"type": "string"}}, "required": ["day"]},
    },
}
BOOKED = "You're booked for Friday at 3 pm."
LIMITS = ReadLimits(deadline_s=5, close_grace_s=0.5)


@dataclass
class Hook:
    """A server of ours that Vapi POSTs server messages to: records each body, answers with `answer(message)`."""

    answer: Callable[[dict[str, Any]], Any] = lambda message: {}
    delay_s: float = 0.0
    received: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)

    def app(self) -> Starlette:
        async def endpoint(request: Request) -> JSONResponse:
            body = await request.json()
            self.received.append((dict(request.headers), body))
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            return JSONResponse(self.answer(body["message"]))

        return Starlette(routes=[Route("/hook", endpoint, methods=["POST"])])

    def types(self) -> list[str]:
        return [body["message"]["type"] for _, body in self.received]


@pytest.fixture
def hook(serve: Callable[[Any], ServerThread]) -> Callable[..., tuple[Hook, str]]:
    def start(answer: Callable[[dict[str, Any]], Any] | None = None, delay_s: float = 0.0) -> tuple[Hook, str]:
        made = Hook(delay_s=delay_s) if answer is None else Hook(answer, delay_s)
        return made, f"{serve(made.app()).url}/hook"

    return start


def results(**item: Any) -> Callable[[dict[str, Any]], Any]:
    """A tool server that answers every tool call with `item` (result or error, message)."""
    return lambda message: {"results": [{"toolCallId": message["toolCallList"][0]["id"], **item}]}


def scenario(turns: Sequence[str | dict[str, Any]], model: dict[str, Any] | None = None, **top: Any) -> Scenario:
    """A scenario file's document: `assistant=` and `toolResults=` go where the file has them."""
    assistant = top.pop("assistant", {})
    system = {"role": "system", "content": top.pop("prompt", "You are Ava.")}
    document = {
        "name": "t",
        "assistant": {**assistant, "model": {"model": "m", "messages": [system], **(model or {})}},
        "turns": [{"user": t} if isinstance(t, str) else t for t in turns],
        **top,
    }
    return load_document(document, "test")


def play(server: ServerThread, played: Scenario) -> CallRecord:
    async def go() -> CallRecord:
        async with new_session() as session:
            return await CallSimulator(played, f"{server.url}/v1", session, limits=LIMITS).play()

    return asyncio.run(go())


def bodies(server: ServerThread) -> list[dict[str, Any]]:
    return [r.body for r in server.app.state.fake.recorded]


def test_variables_fill_the_prompt_and_first_message_and_ride_in_the_call(
    fake_llm: Callable[..., ServerThread],
) -> None:
    server = fake_llm()
    played = scenario(
        ["Hi"],
        prompt=PROMPT,
        assistant={"firstMessage": "Hi {{customerName}}, I see you call from {{customer.number}}."},
        variables={"customerName": "Ada"},
        call={"type": "inboundPhoneCall", "customer": {"number": "+15550100200"}},
    )
    play(server, played)
    (body,) = bodies(server)
    assert body["messages"][:2] == [
        {"role": "system", "content": "Hello Ada, your plan is basic."},
        {"role": "assistant", "content": "Hi Ada, I see you call from +15550100200."},
    ]
    assert body["call"]["assistantOverrides"]["variableValues"] == {"customerName": "Ada"}


@pytest.mark.parametrize("where", ["server message", "tool messages", "toolResults reply"])
def test_a_request_complete_message_is_spoken_and_no_follow_up_request_is_made(
    where: str, fake_llm: Callable[..., ServerThread], hook: Callable[..., tuple[Hook, str]]
) -> None:
    complete = {"type": "request-complete", "content": BOOKED}
    tool: dict[str, Any] = dict(BOOK)
    top: dict[str, Any] = {}
    if where == "server message":
        _, url = hook(results(result="booked: friday 15:00", message=complete))
        tool["server"] = {"url": url}
    elif where == "tool messages":
        _, url = hook(results(result="booked: friday 15:00"))
        tool |= {"server": {"url": url}, "messages": [complete]}
    else:
        top["toolResults"] = {"bookAppointment": {"reply": {"result": "booked: friday 15:00", "message": complete}}}
    server = fake_llm()
    call = play(server, scenario(["Please book Friday.", "Thanks"], model={"tools": [tool]}, **top))
    first, second = bodies(server)  # one request per turn: none follows the tool's result
    assert first["messages"][-1]["content"] == "Please book Friday."
    turn = call.turns[0]
    assert turn.spoken == BOOKED and turn.tool_runs[0].spoken == BOOKED and len(turn.exchanges) == 1
    assistant, result, said = second["messages"][-4:-1]  # history: the call, its result, what was said
    assert assistant["tool_calls"][0]["function"]["name"] == "bookAppointment"
    assert result == {"role": "tool", "tool_call_id": assistant["tool_calls"][0]["id"],
                      "content": "booked: friday 15:00"}  # fmt: skip
    assert said == {"role": "assistant", "content": BOOKED}
    transcript = call.transcript()
    assert transcript[1:4] == [
        ("tool call", 'bookAppointment({"day": "Paris"})'),
        ("tool result", "booked: friday 15:00"),
        ("assistant", BOOKED),
    ]


def test_request_start_is_spoken_first_and_request_failed_replaces_the_follow_up(
    fake_llm: Callable[..., ServerThread], hook: Callable[..., tuple[Hook, str]]
) -> None:
    tool_server, url = hook(results(error="calendar offline"))
    messages = [
        {"type": "request-start", "content": "One moment, {{customerName}}."},
        {"type": "request-failed", "content": "Sorry, I couldn't book that."},
        {"type": "request-complete", "content": "Never said: the call failed."},
    ]
    server = fake_llm()
    tool = {**BOOK, "server": {"url": url}, "messages": messages}
    call = play(server, scenario(["Please book Friday."], model={"tools": [tool]}, variables={"customerName": "Ada"}))
    assert len(bodies(server)) == 1
    run = call.turns[0].tool_runs[0]
    assert (run.spoken_start, run.error, run.spoken) == ("One moment, Ada.", "calendar offline",
                                                        "Sorry, I couldn't book that.")  # fmt: skip
    assert call.turns[0].spoken == "One moment, Ada. Sorry, I couldn't book that."
    assert call.turns[0].replies == ["Sorry, I couldn't book that."]
    assert call.transcript()[1:5] == [
        ("tool call", 'bookAppointment({"day": "Paris"})'),
        ("assistant", "One moment, Ada."),
        ("tool result", '{"error": "calendar offline"}'),
        ("assistant", "Sorry, I couldn't book that."),
    ]
    assert len(tool_server.received) == 1


def test_an_async_tool_is_not_waited_for_and_its_result_never_spoken(
    fake_llm: Callable[..., ServerThread], hook: Callable[..., tuple[Hook, str]]
) -> None:
    complete = {"type": "request-complete", "content": "never said"}
    tool_server, url = hook(results(result="the secret result", message=complete), delay_s=0.2)
    server = fake_llm()
    tool = {**BOOK, "server": {"url": url}, "async": True}
    call = play(server, scenario(["Please book Friday."], model={"tools": [tool]}))
    _, follow_up = bodies(server)  # the follow-up goes at once, with no result
    assistant, result = follow_up["messages"][-2:]
    assert result == {"role": "tool", "tool_call_id": assistant["tool_calls"][0]["id"], "content": ""}
    assert tool_server.types() == ["tool-calls"]  # fired all the same
    run = call.turns[0].tool_runs[0]
    assert run.background and run.result is None and run.spoken is None
    assert "secret" not in call.turns[0].spoken and "never said" not in call.turns[0].spoken


def test_a_slow_tool_server_gets_the_delayed_message_said(
    fake_llm: Callable[..., ServerThread], hook: Callable[..., tuple[Hook, str]]
) -> None:
    _, url = hook(results(result="Booked."), delay_s=0.5)
    delayed = {"type": "request-response-delayed", "content": "Still checking.", "timingMilliseconds": 10}
    server = fake_llm()
    tool = {**BOOK, "server": {"url": url}, "messages": [delayed]}
    call = play(server, scenario(["Please book Friday."], model={"tools": [tool]}))
    assert call.turns[0].tool_runs[0].spoken_delayed == "Still checking."
    assert call.turns[0].spoken.startswith("Still checking. Thanks for waiting, I have the answer now. Booked.")
    assert len(bodies(server)) == 2  # the result is spoken by the model as usual


def test_a_system_role_complete_message_is_a_hint_for_the_follow_up(fake_llm: Callable[..., ServerThread]) -> None:
    hint = {"type": "request-complete", "role": "system", "content": "Confirm the day back to the caller."}
    tool = {**BOOK, "messages": [hint]}
    server = fake_llm()
    play(server, scenario(["Please book Friday."], model={"tools": [tool]}, toolResults={"bookAppointment": "ok"}))
    _, follow_up = bodies(server)
    assert [m["role"] for m in follow_up["messages"][-3:]] == ["assistant", "tool", "system"]
    assert follow_up["messages"][-1]["content"] == "Confirm the day back to the caller."


def test_the_knowledge_base_adds_documents_or_answers_itself(
    fake_llm: Callable[..., ServerThread], hook: Callable[..., tuple[Hook, str]]
) -> None:
    def knowledge(message: dict[str, Any]) -> Any:
        asked = message["messagesOpenAIFormatted"][-1]["content"]
        if "hours" in asked:
            return {"documents": [{"content": "We open at 9.", "similarity": 0.9}, {"content": "We close at 5."}]}
        if "park" in asked:
            return {"message": {"role": "assistant", "content": "Parking is free behind the building."}}
        return {"documents": []}

    kb, url = hook(knowledge)
    server = fake_llm()
    base = {"knowledgeBase": {"provider": "custom-knowledge-base", "server": {"url": url, "secret": "kb-secret"}}}
    call = play(server, scenario(["What are your hours?", "Where do I park?", "Thanks"], model=base))
    first, third = bodies(server)  # the second turn was answered by the knowledge base alone
    assert first["messages"] == [
        {"role": "system", "content": "You are Ava."},
        {"role": "system", "content": "Context:\nWe open at 9.\n\nWe close at 5."},
        {"role": "user", "content": "What are your hours?"},
    ]
    assert call.turns[1].spoken == "Parking is free behind the building." and not call.turns[1].exchanges
    assert {"role": "assistant", "content": "Parking is free behind the building."} in third["messages"]
    assert all(not m["content"].startswith("Context:") for m in third["messages"])  # each turn asks anew
    headers, request = kb.received[0]
    message = request["message"]
    assert message["type"] == "knowledge-base-request" and headers["x-vapi-secret"] == "kb-secret"
    assert message["messages"][-1]["role"] == "user" and message["messages"][-1]["message"] == "What are your hours?"
    assert message["call"]["id"] == call.call_id and len(kb.received) == 3


@pytest.mark.parametrize("flags", [{}, {"wordLevelConfidenceEnabled": True, "emotionRecognitionEnabled": True}])
def test_user_messages_carry_the_transcriber_extras_the_model_enables(
    flags: dict[str, bool], fake_llm: Callable[..., ServerThread]
) -> None:
    server = fake_llm()
    play(server, scenario(["Do you open tomorrow?"], model=flags))
    user = bodies(server)[0]["messages"][-1]
    if not flags:
        assert user == {"role": "user", "content": "Do you open tomorrow?"}
        return
    metadata = user["metadata"]
    assert [w["word"] for w in metadata["wordLevelConfidence"]] == ["Do", "you", "open", "tomorrow?"]
    assert all(0 < w["confidence"] <= 1 for w in metadata["wordLevelConfidence"])
    assert "emotion" in metadata["emotion"]


def test_an_end_call_phrase_ends_the_call(fake_llm: Callable[..., ServerThread]) -> None:
    server = fake_llm(reply="Thanks for calling, Have A Great Day!")
    call = play(server, scenario(["That's all.", "Hello?"], assistant={"endCallPhrases": ["have a great day"]}))
    assert call.ended_reason == "assistant-said-end-call-phrase"
    assert len(call.turns) == 1 and call.turns[0].ended_call and len(bodies(server)) == 1


@pytest.mark.parametrize(
    ("assistant", "silences", "reason", "played"),
    [
        ({"silenceTimeoutSeconds": 10}, [12, 0], "silence-timed-out", 1),
        ({"silenceTimeoutSeconds": 30}, [29, 0], "customer-ended-call", 2),  # silent, but not for long enough
        ({"maxDurationSeconds": 10}, [9, 5, 0], "exceeded-max-duration", 2),
        ({"maxDurationSeconds": 10, "silenceTimeoutSeconds": 30}, [35, 0], "exceeded-max-duration", 1),
        ({"maxDurationSeconds": 60, "silenceTimeoutSeconds": 30}, [35, 0], "silence-timed-out", 1),
    ],
)
def test_silence_and_the_maximum_duration_end_the_call(
    assistant: dict[str, Any], silences: list[float], reason: str, played: int, fake_llm: Callable[..., ServerThread]
) -> None:
    server = fake_llm()
    turns = [{"user": f"Turn {i}", "silenceSeconds": s} for i, s in enumerate(silences)]
    call = play(server, scenario(turns, assistant=assistant))  # silences are on the call's clock: nobody waits
    assert call.ended_reason == reason and len(call.turns) == played
    assert not any(t.ended_call for t in call.turns)


def test_the_assistants_server_gets_status_and_conversation_updates(
    fake_llm: Callable[..., ServerThread], hook: Callable[..., tuple[Hook, str]]
) -> None:
    assistant_server, url = hook()
    server = fake_llm()
    call = play(server, scenario(["Hi", "Bye now"], assistant={"server": {"url": url, "secret": "s3cret"}}))
    assert assistant_server.types() == ["status-update", "conversation-update", "conversation-update",
                                        "status-update"]  # fmt: skip
    (first_headers, started), *_, (_, update), (_, ended) = assistant_server.received
    assert first_headers["x-vapi-secret"] == "s3cret" and started["message"]["status"] == "in-progress"
    assert ended["message"]["status"] == "ended" and ended["message"]["endedReason"] == "customer-ended-call"
    assert ended["message"]["call"]["id"] == call.call_id
    message = update["message"]
    assert message["messagesOpenAIFormatted"] == call.messages
    assert [m["role"] for m in message["messages"]] == ["system", "user", "bot", "user", "bot"]
    only, url = hook()
    play(fake_llm(), scenario(["Hi"], assistant={"server": {"url": url}, "serverMessages": ["status-update"]}))
    assert only.types() == ["status-update", "status-update"]


def test_a_scenario_with_a_tool_reply_passes_check(fake_llm: Callable[..., ServerThread]) -> None:
    expect = {"content": {"exact": BOOKED}, "tool_call": {"name": "bookAppointment"}}
    played = scenario(
        [{"user": "Please book Friday.", "expect": expect}],
        model={"tools": [BOOK]},
        toolResults={"bookAppointment": {"reply": {"result": "ok", "message": {"type": "request-complete",
                                                                              "content": BOOKED}}}},
    )  # fmt: skip
    server = fake_llm()

    async def go() -> Any:
        async with new_session() as session:
            return await play_scenarios([played], f"{server.url}/v1", session, RunSettings(limits=LIMITS))

    (result,) = asyncio.run(go())
    assert result.passed, [e.message for t in result.turns for e in t.failed_expectations] + [
        c for t in result.turns for c in t.failed_checks
    ]
    assert ("assistant", BOOKED) in result.transcript and len(result.turns[0].exchanges) == 1
