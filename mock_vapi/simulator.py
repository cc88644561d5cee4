"""The call simulator: plays a scenario against a custom LLM the way Vapi holds a call, turn by turn.

Every request comes from `build_request` and every reply is read by `mock_vapi.reader.read_into`, so a call
sees exactly what `vapi-harness check` sees. What Vapi does between requests, as the protocol notes describe
(sources and confidence: docs/mock-vapi.md):

- Variables: the system prompt, the first message and the tools' messages are Liquid templates, filled when the
  call starts from the scenario's `variables` (`assistantOverrides.variableValues`) and Vapi's built-ins; the
  values also ride in `call.assistantOverrides.variableValues`.
- `firstMessageMode`: a static first message goes into history with no request; `...-model-generated-message`
  sends `[system]` alone when the call starts.
- History holds what was spoken: the text of each reply, merged into one assistant message per turn; after a
  barge-in, only the text that arrived before it (cut at the last whole word). `modelOutputInMessagesEnabled`
  keeps the raw text instead. User messages carry the transcriber's extras when the model enables them.
- A custom knowledge base is asked before a user turn's first request: its documents go into that turn's
  prompts as a system message, its `message` is spoken with no request at all.
- A reply that ends in tool calls: `endCall` ends the call and `transferCall` records a transfer (only when the
  assistant has that tool, as Vapi acts on attached tools only); a function tool's `request-start` message is
  spoken, then it gets its mocked result or Vapi's `tool-calls` message POSTed to its server URL (an `async`
  tool is not waited for). The assistant `tool_calls` message and one `tool` message per call go into history;
  a `request-complete` (or `request-failed`) message is spoken in place of the follow-up request, otherwise
  the follow-up request lets the model speak the result.
- A barge-in closes the stream at its point; with a longer utterance the turn is sent again with it.
- The call ends when the assistant says one of `endCallPhrases`, when the caller's scripted silence reaches
  `silenceTimeoutSeconds`, or when the call's clock passes `maxDurationSeconds`; the assistant's server URL
  gets `status-update` and `conversation-update` messages (those its `serverMessages` lists).

For load, a call can also pause between turns (the caller speaking), interrupt a share of its turns at random
(the caller talks over the first words and says the same again) and hand every exchange to a callback as soon
as it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import operator
import random
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from harness.protocol import AssembledToolCall, repeated_tool_call, tool_call_name
from mock_vapi.context import CallContext
from mock_vapi.exchange import Exchange, Outcome
from mock_vapi.oauth2 import TokenError
from mock_vapi.reader import Abort, ReadLimits, read_into
from mock_vapi.request import CustomLLMModel, VapiRequest, build_request
from mock_vapi.scenarios.model import Interrupt, Scenario, Turn
from mock_vapi.timing import first_sentence_time
from mock_vapi.tools import tool_name
from mock_vapi.transcriber import user_message
from mock_vapi.variables import fill_assistant, variable_values

__all__ = [
    "DEFAULT_SERVER_MESSAGES",
    "AssistantServer",
    "CallRecord",
    "CallSimulator",
    "ToolRun",
    "TurnRecord",
    "post_message",
    "turn_timing",
]

MAX_TOOL_ROUNDS = 5  # follow-up requests per turn before the simulator gives up on a tool loop
_WEBHOOK_TIMEOUT_S = 20.0  # Vapi's default `server.timeoutSeconds`
_SERVER_MESSAGE_TIMEOUT_S = 10.0  # a status or conversation update: Vapi does not wait on the answer
_DELAYED_AFTER_MS = 1000.0  # a request-response-delayed message without timingMilliseconds (a guess: low)
_BUILTIN_TOOLS = {"endCall", "transferCall", "dtmf"}
# What an assistant's server URL gets when it lists no `serverMessages` (CreateAssistantDto.serverMessages).
DEFAULT_SERVER_MESSAGES = frozenset({
    "conversation-update", "end-of-call-report", "function-call", "hang", "speech-update", "status-update",
    "tool-calls", "transfer-destination-request", "handoff-destination-request", "user-interrupted",
    "assistant.started",
})  # fmt: skip
_ONGOING = "customer-ended-call"  # the ended reason of a call nothing else has ended


def _now_ms() -> int:
    return int(time.time() * 1000)


async def post_message(
    session: aiohttp.ClientSession, server: Mapping[str, Any], message: Mapping[str, Any], timeout_s: float
) -> tuple[int, bytes]:
    """POST Vapi's `{"message": ...}` to a Vapi server object (`url`; `secret` as `X-Vapi-Secret`; `headers`):
    the status and body. Raises `aiohttp.ClientError`, `TimeoutError` or `ValueError` (a URL it cannot use)."""
    headers = {"Content-Type": "application/json"}
    headers |= {str(k): str(v) for k, v in (server.get("headers") or {}).items()}
    if server.get("secret"):
        headers["X-Vapi-Secret"] = str(server["secret"])
    async with asyncio.timeout(timeout_s):
        async with session.post(str(server["url"]), json={"message": dict(message)}, headers=headers) as response:
            return response.status, await response.read()


@dataclass(frozen=True)
class AssistantServer:
    """The assistant's server URL and the server messages it takes (`serverMessages`, else Vapi's default)."""

    server: Mapping[str, Any]
    wanted: frozenset[str] = DEFAULT_SERVER_MESSAGES

    @classmethod
    def of(cls, server: Any, server_messages: Any = None) -> AssistantServer | None:
        """From an assistant's `server` and `serverMessages`; None without a server URL."""
        if not isinstance(server, Mapping) or not server.get("url"):
            return None
        if isinstance(server_messages, Sequence) and not isinstance(server_messages, str):
            return cls(dict(server), frozenset(str(m) for m in server_messages))
        return cls(dict(server))

    async def send(self, session: aiohttp.ClientSession, message: Mapping[str, Any]) -> None:
        """POST `message` if the assistant takes its type; what the server answers, or that it fails, is ignored."""
        if message.get("type") not in self.wanted:
            return
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
            await post_message(session, self.server, message, _SERVER_MESSAGE_TIMEOUT_S)


@dataclass
class ToolRun:
    """One tool call the model made and what came back."""

    id: str
    name: str
    arguments: Any
    result: str | None = None
    error: str | None = None
    reply_message: dict[str, Any] | None = None  # the `message` the tool's server (or toolResults) answered with
    spoken_start: str | None = None  # the tool's request-start message, said as the call started
    spoken_delayed: str | None = None  # its request-response-delayed message, said while its server was slow
    spoken: str | None = None  # the request-complete or request-failed message said instead of a follow-up
    background: bool = False  # an `async` tool: not waited for, no result in history


@dataclass
class TurnRecord:
    """Everything one turn produced. Index 0 is the call's start (a model-generated first message)."""

    index: int
    user: str | None
    exchanges: list[Exchange] = field(default_factory=list)
    spoken: str = ""  # everything the assistant said on the turn, tools' messages included
    tool_runs: list[ToolRun] = field(default_factory=list)
    ended_call: bool = False
    transferred_to: str | None = None
    interrupted: bool = False
    problem: str | None = None  # why the turn could not be played to its end
    # What was said in reply: the model's text, a tool's request-complete or request-failed message, a knowledge
    # base's answer (`spoken` without the tools' request-start and delayed messages).
    replies: list[str] = field(default_factory=list)

    @property
    def final(self) -> Exchange | None:
        """The last request of the turn that was not a barge-in."""
        for exchange in reversed(self.exchanges):
            if exchange.outcome is not Outcome.ABORTED:
                return exchange
        return self.exchanges[-1] if self.exchanges else None

    @property
    def answering(self) -> list[Exchange]:
        """The requests that answered the turn's final utterance (the first one and its tool follow-ups)."""
        return [e for e in self.exchanges if e.outcome is not Outcome.ABORTED]


@dataclass
class CallRecord:
    """A played call: its turns, the history Vapi ended with, and why it ended."""

    scenario: Scenario
    copy: int
    call_id: str
    turns: list[TurnRecord] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    ended_reason: str = _ONGOING
    # Said but never in history (a tool's request-start and delayed messages): (index of the history message
    # they came before, text).
    asides: list[tuple[int, str]] = field(default_factory=list)
    context: CallContext | None = None  # the call as the model saw it: `call`, `phoneNumber`, `customer`

    def transcript(self) -> list[tuple[str, str]]:
        """(role, text) lines of what was said, tool calls and results included."""
        lines: list[tuple[str, str]] = []
        for index, message in enumerate(self.messages):
            lines += [("assistant", text) for at, text in self.asides if at == index]
            role = message.get("role", "?")
            if role == "system":
                continue
            if message.get("tool_calls"):
                for call in message["tool_calls"]:
                    function = call.get("function", {})
                    lines.append(("tool call", f"{tool_call_name(call)}({function.get('arguments', '')})"))
                if message.get("content"):
                    lines.append((role, str(message["content"])))
            elif role == "tool":
                lines.append(("tool result", str(message.get("content", ""))))
            else:
                lines.append((role, str(message.get("content", ""))))
        lines += [("assistant", text) for at, text in self.asides if at >= len(self.messages)]
        return lines


@dataclass
class _Call:
    """One call being played (the simulator plays several at once): its record, model, history and clock."""

    record: CallRecord
    context: CallContext
    model: CustomLLMModel  # with its templates filled
    tools: Mapping[str, Mapping[str, Any]]
    first_message: str | None
    history: list[dict[str, Any]]
    started: float = field(default_factory=time.perf_counter)
    started_wall: float = field(default_factory=time.time)
    silent_s: float = 0.0  # the caller's scripted silences: on the call's clock, never waited for
    background: set[asyncio.Task[None]] = field(default_factory=set)  # async tools' webhooks
    times: dict[int, float] = field(default_factory=dict)  # when each history message was first reported

    def elapsed_s(self) -> float:
        """The call's clock: time since it started, scripted silences included."""
        return time.perf_counter() - self.started + self.silent_s

    def aside(self, text: str) -> None:
        """Something said now that history never holds."""
        self.record.asides.append((len(self.history), text))


@dataclass
class _ToolRound:
    """What running one reply's tool calls gave: messages for history, and whether the model speaks next."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    said: list[str] = field(default_factory=list)  # request-complete/failed messages, spoken instead of the model
    follow_up: bool = False
    end_call: bool = False  # a spoken message had endCallAfterSpokenEnabled


class CallSimulator:
    """Plays one scenario against `base_url` (what a Vapi assistant's `model.url` holds)."""

    def __init__(
        self,
        scenario: Scenario,
        base_url: str,
        session: aiohttp.ClientSession,
        *,
        api_key: str | None = None,
        limits: ReadLimits | None = None,
        headers: Mapping[str, str] | None = None,
        think_s: tuple[float, float] = (0.0, 0.0),
        barge_in_rate: float = 0.0,
        on_exchange: Callable[[Exchange], None] | None = None,
        key: Callable[[], Awaitable[str | None]] | None = None,
        send: Callable[[VapiRequest, Abort], Awaitable[Exchange]] | None = None,
    ) -> None:
        self.scenario = scenario
        self.session = session
        self.api_key = api_key
        self.key = key  # the key for each request when it changes (an OAuth2 token): `api_key` is then unused
        self.send = send  # sends a request and reads the reply (the mock API's retries); once by default
        self.limits = limits or ReadLimits()
        self.think_s = think_s  # a pause before every turn but the first: the caller speaking
        self.barge_in_rate = barge_in_rate  # share of unscripted turns the caller talks over
        self.on_exchange = on_exchange
        vapi_model = {"provider": "custom-llm", "model": "gpt-4o-mini", **scenario.model, "url": base_url}
        if headers:  # from the command line (check --header), on top of the scenario's model.headers
            vapi_model["headers"] = {**(scenario.model.get("headers") or {}), **headers}
        self._where = f"{scenario.source}: assistant.model"
        self._assistant = {"firstMessage": scenario.first_message, "model": vapi_model}  # templates, unfilled
        self.model = CustomLLMModel.from_vapi(vapi_model, where=self._where)  # checked once; each call fills it
        knowledge = scenario.model.get("knowledgeBase")
        server = knowledge.get("server") if isinstance(knowledge, Mapping) else None
        self.knowledge_base = dict(server) if isinstance(server, Mapping) and server.get("url") else None
        self.word_confidence = bool(scenario.model.get("wordLevelConfidenceEnabled"))
        self.emotion = bool(scenario.model.get("emotionRecognitionEnabled"))
        self.server = AssistantServer.of(scenario.server, scenario.server_messages)

    def _context(self, call_id: str) -> CallContext:
        call = self.scenario.call
        metadata = self.scenario.metadata
        values = self.scenario.variables
        if call.get("type") == "webCall":
            return CallContext.web_call(metadata=metadata, call_id=call_id, variable_values=values)
        context = CallContext.inbound_phone_call(
            customer_number=str((call.get("customer") or {}).get("number", "+15551234567")),
            assistant_number=str((call.get("phoneNumber") or {}).get("number", "+15557654321")),
            metadata=metadata,
            call_id=call_id,
            variable_values=values,
        )
        customer = {**(context.customer or {}), **(call.get("customer") or {})}
        return CallContext(context.call, context.phone_number, customer, context.metadata)

    def _start(self, copy: int, call_id: str) -> _Call:
        """A new call: its context, and the assistant's templates filled with its variables."""
        context = self._context(call_id)
        values = variable_values(self.scenario.variables, customer=context.customer)
        assistant = fill_assistant(self._assistant, values)
        model = CustomLLMModel.from_vapi(assistant["model"], where=self._where)
        history = [dict(m) for m in model.messages]
        record = CallRecord(self.scenario, copy, call_id, messages=history, context=context)
        tools = {tool_name(t) or str(t.get("type")): t for t in model.tools}
        return _Call(record, context, model, tools, assistant.get("firstMessage"), history)

    def _user(self, utterance: str) -> dict[str, Any]:
        """The user message for an utterance: the one place the simulator builds them."""
        return user_message(utterance, word_confidence=self.word_confidence, emotion=self.emotion)

    async def play(self, copy: int = 0) -> CallRecord:
        """Play the whole call; never raises for what the endpoint does, it is all in the record."""
        call_id = str(self.scenario.call.get("id") or uuid.uuid4())
        if copy:
            call_id = f"{call_id}-{copy}"
        call = self._start(copy, call_id)
        record = call.record
        try:
            await self._notify(self._status(call, "in-progress"))
            try:
                await self._converse(call)
            except TokenError as exc:  # no key for the next request: Vapi ends the call
                if record.turns:
                    record.turns[-1].problem = f"could not get an OAuth2 token: {exc}"
                record.ended_reason = "pipeline-error-custom-llm-llm-failed"
            await asyncio.gather(*call.background, return_exceptions=True)  # each bounded by its timeout
            await self._notify(self._status(call, "ended"))
        finally:
            for task in call.background:
                task.cancel()
        return record

    async def _converse(self, call: _Call) -> None:
        """The first message, then the scripted turns until the call ends."""
        record, history = call.record, call.history
        mode = self.scenario.first_message_mode
        if mode == "assistant-speaks-first-with-model-generated-message":
            opening = TurnRecord(index=0, user=None)
            record.turns.append(opening)
            await self._answer(call, opening)
        elif mode == "assistant-speaks-first" and call.first_message:
            history.append({"role": "assistant", "content": call.first_message})
        for index, turn in enumerate(self.scenario.turns, start=1):
            if record.ended_reason != _ONGOING:
                break  # the assistant (or the clock) ended the call; later turns are not played
            if index > 1 and self.think_s[1] > 0:
                await asyncio.sleep(random.uniform(*self.think_s))
            played = TurnRecord(index=index, user=turn.user)
            record.turns.append(played)
            await self._turn(call, turn, played)
            await self._notify(self._conversation(call))
            self._hang_up(call, turn.silence_s)

    async def _turn(self, call: _Call, turn: Turn, played: TurnRecord) -> None:
        """One scripted turn: its barge-ins, then the request that answers the caller's final utterance."""
        history = call.history
        utterance = turn.user
        interrupts = turn.interrupts
        if not interrupts and self.barge_in_rate and random.random() < self.barge_in_rate:
            interrupts = (Interrupt(after_chars=1, user=turn.user),)  # talked over the first words
        for interrupt in interrupts:
            exchange = await self._send(call, [*history, self._user(utterance)], interrupt)
            played.exchanges.append(exchange)
            played.interrupted = True
            if not exchange.reached or exchange.outcome is not Outcome.ABORTED:
                break  # the reply ended (or failed) before the barge-in point: nothing to cut
            # Vapi sends the next request once the caller stops speaking, not at the abort.
            await asyncio.sleep(interrupt.pause_ms / 1000)
            if interrupt.user is not None:
                utterance = interrupt.user  # the caller kept talking: the turn goes again, longer
                continue
            # The caller cut the assistant off: what it had said so far stays in history, the turn is over.
            history.append(self._user(utterance))
            said = self._spoken(exchange.text, cut=True)
            if said:
                history.append({"role": "assistant", "content": said})
            played.spoken = said
            played.replies = [said] if said else []
            return
        history.append(self._user(utterance))
        played.user = utterance
        await self._answer(call, played)

    def _hang_up(self, call: _Call, silence_s: float) -> None:
        """After a turn, the caller says nothing for `silence_s` (on the clock, not waited for): the silence
        timeout or the maximum duration, whichever comes first, can end the call."""
        if call.record.ended_reason != _ONGOING:
            return
        start = call.elapsed_s()
        call.silent_s += silence_s
        endings: list[tuple[float, str]] = []
        timeout_s = self.scenario.silence_timeout_s
        if silence_s > 0 and silence_s >= timeout_s:
            endings.append((start + timeout_s, "silence-timed-out"))
        limit_s = self.scenario.max_duration_s
        if call.elapsed_s() >= limit_s:
            endings.append((max(limit_s, start), "exceeded-max-duration"))
        if endings:
            call.record.ended_reason = min(endings)[1]

    async def _answer(self, call: _Call, played: TurnRecord) -> None:
        """Ask the knowledge base; then request, run tools, request again, until the model speaks without calling
        a tool or a tool's message is spoken in place of the model."""
        history, record = call.history, call.record
        said: list[str] = []  # the replies; the last one goes into history
        heard: list[str] = []  # everything said, tools' request-start and delayed messages included
        documents: list[Mapping[str, Any]] = []
        if played.user is not None and self.knowledge_base is not None:
            direct, documents = await self._knowledge(call, self.knowledge_base)
            if direct:
                said.append(direct)
                heard.append(direct)
                self._close(call, played, said, heard)
                return
        for _ in range(MAX_TOOL_ROUNDS):
            exchange = await self._send(call, _with_documents(history, documents), None)
            played.exchanges.append(exchange)
            if exchange.outcome is not Outcome.COMPLETE or exchange.status is None or exchange.status >= 300:
                played.problem = exchange.error or f"HTTP {exchange.status}"
                record.ended_reason = _ended_reason(exchange)
                break
            text, calls = exchange.reply_text, exchange.reply_tool_calls
            if text.strip():
                said.append(self._spoken(text, cut=False))
                heard.append(said[-1])
            if not calls:
                break
            repeated = repeated_tool_call(history, calls)
            if repeated is not None:  # Vapi would run it again and again: the caller never hears the answer
                played.problem = (
                    f"endless tool loop: {repeated.name} called again with the same arguments after its result"
                )
                break
            message: dict[str, Any] = {
                "role": "assistant",
                "content": text if text.strip() else (None if self.scenario.tool_call_content == "null" else ""),
                "tool_calls": [
                    {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments or "{}"}}
                    for c in calls
                ],
            }
            history.append(message)
            done = await self._run_tools(call, calls, played, heard)
            if played.ended_call or played.transferred_to is not None:
                record.ended_reason = "assistant-ended-call" if played.ended_call else "assistant-forwarded-call"
                break
            history.extend(done.messages)
            if done.said:
                said.append(" ".join(done.said))
            if done.end_call:
                played.ended_call = True
                record.ended_reason = "assistant-ended-call-after-message-spoken"
                break
            if not done.follow_up:
                break  # every call's message was spoken: Vapi makes no follow-up request
        else:
            played.problem = f"still calling tools after {MAX_TOOL_ROUNDS} follow-up requests"
        self._close(call, played, said, heard)

    def _close(self, call: _Call, played: TurnRecord, said: list[str], heard: list[str]) -> None:
        """The turn's speech into the record and history; an end-call phrase in it ends the call."""
        played.spoken = " ".join(s for s in heard if s)
        played.replies = [s for s in said if s]
        tail = said[-1] if said else ""
        if tail:
            call.history.append({"role": "assistant", "content": tail})
        spoken = played.spoken.casefold()
        phrases = [p for p in self.scenario.end_call_phrases if p.strip()]
        if call.record.ended_reason == _ONGOING and any(p.casefold() in spoken for p in phrases):
            played.ended_call = True
            call.record.ended_reason = "assistant-said-end-call-phrase"

    async def _send(self, call: _Call, messages: list[dict[str, Any]], interrupt: Interrupt | None) -> Exchange:
        """One request to the model, read to its end (or to the barge-in); `TokenError` when there is no key."""
        api_key = await self.key() if self.key is not None else self.api_key
        request = build_request(
            call.model, messages, context=call.context, api_key=api_key, stream=self.scenario.stream
        )
        if self.send is not None:
            exchange = await self.send(request, _abort(interrupt))
        else:
            exchange = Exchange(request=request, t_start=time.perf_counter())
            await read_into(self.session, exchange, self.limits, abort=_abort(interrupt))
        if self.on_exchange is not None:
            self.on_exchange(exchange)
        return exchange

    def _spoken(self, text: str, *, cut: bool) -> str:
        if self.scenario.model_output_in_messages:
            return text
        if cut and text and not text[-1].isspace():
            text = text[: max(text.rfind(" "), 0)]  # a half-spoken word is not in the transcript
        return re.sub(r"\s+", " ", text).strip()

    async def _run_tools(
        self, call: _Call, calls: Sequence[AssembledToolCall], played: TurnRecord, heard: list[str]
    ) -> _ToolRound:
        done = _ToolRound()
        hints: list[dict[str, Any]] = []  # request-complete messages with role system: for the model to read
        for assembled in calls:
            name = assembled.name or ""
            try:
                arguments = assembled.parsed_arguments()
            except ValueError:
                arguments = assembled.arguments
            run = ToolRun(id=assembled.id or "", name=name, arguments=arguments)
            played.tool_runs.append(run)
            tool = call.tools.get(name)
            if tool is None:
                run.error = f"the assistant has no tool named {name!r}"
            elif name == "endCall":
                played.ended_call = True
                continue
            elif name == "transferCall":
                destination = arguments.get("destination") if isinstance(arguments, dict) else None
                played.transferred_to = str(destination or "(default destination)")
                continue
            else:
                await self._execute(call, tool, run, heard)
            done.messages.append({"role": "tool", "tool_call_id": run.id, "content": _tool_content(run)})
            closing = None if tool is None or run.background else _closing_message(tool, run)
            if closing is None:
                done.follow_up = True
            elif closing.get("role") == "system":
                hints.append({"role": "system", "content": _text(closing)})
                done.follow_up = True
            else:
                run.spoken = self._spoken(_text(closing), cut=False)
                done.said.append(run.spoken)
                heard.append(run.spoken)
                done.end_call = done.end_call or closing.get("endCallAfterSpokenEnabled") is True
        done.messages += hints
        return done

    async def _execute(self, call: _Call, tool: Mapping[str, Any], run: ToolRun, heard: list[str]) -> None:
        """One tool call as Vapi runs it: its request-start message is said, then the result comes (mocked,
        built in, or from its server URL); an `async` tool's server is called but not waited for."""
        start = _tool_message(tool, "request-start", run.arguments)
        if start is not None:
            run.spoken_start = self._spoken(_text(start), cut=False)
            heard.append(run.spoken_start)
            call.aside(run.spoken_start)
        if tool.get("async") is True:
            run.background = True
            if run.name not in self.scenario.tool_results and (tool.get("server") or {}).get("url"):
                unseen = dataclasses.replace(run)  # its result reaches neither the model nor the record
                call.background.add(asyncio.create_task(self._webhook(call, tool, unseen)))
        elif run.name in self.scenario.tool_results:
            _read_result(run, _mocked(self.scenario.tool_results[run.name]))
        elif run.name in _BUILTIN_TOOLS:
            run.result = "Done."
        else:
            await self._await_webhook(call, tool, run, heard)

    async def _await_webhook(self, call: _Call, tool: Mapping[str, Any], run: ToolRun, heard: list[str]) -> None:
        """The tool's server, waited for; its request-response-delayed message is said if it takes too long."""
        task = asyncio.create_task(self._webhook(call, tool, run))
        delayed = _tool_message(tool, "request-response-delayed", run.arguments)
        try:
            if delayed is not None:
                timing = delayed.get("timingMilliseconds")
                wait_ms = timing if isinstance(timing, int | float) and not isinstance(timing, bool) else None
                finished, _ = await asyncio.wait({task}, timeout=(wait_ms or _DELAYED_AFTER_MS) / 1000)
                if not finished:
                    run.spoken_delayed = self._spoken(_text(delayed), cut=False)
                    heard.append(run.spoken_delayed)
                    call.aside(run.spoken_delayed)
            await task
        finally:
            task.cancel()  # nothing when it is done; the call was cancelled otherwise

    async def _webhook(self, call: _Call, tool: Mapping[str, Any], run: ToolRun) -> None:
        """POST Vapi's `tool-calls` server message to the tool's server URL; read `results[]` for this call."""
        server = tool.get("server") or {}
        if not server.get("url"):
            run.error = (f"the tool has no server.url and no mocked result (the simulator runs {tool.get('type')} "
                         "tools through their server URL)")  # fmt: skip
            return
        call_item = {"id": run.id, "type": "function", "function": {"name": run.name, "arguments": run.arguments}}
        message = {
            "type": "tool-calls",
            "timestamp": _now_ms(),
            "toolCallList": [call_item],
            "toolWithToolCallList": [{**dict(tool), "toolCall": call_item}],
            **call.context.objects(),
            "artifact": {"messages": [dict(m) for m in call.history]},
        }
        timeout = server.get("timeoutSeconds")
        timeout_s = float(timeout) if isinstance(timeout, int | float) and timeout > 0 else _WEBHOOK_TIMEOUT_S
        try:
            status, body = await post_message(self.session, server, message, timeout_s)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            run.error = f"the tool's server URL {server['url']} failed: {type(exc).__name__}: {exc}"
            return
        if status != 200:
            run.error = f"the tool's server answered HTTP {status} (Vapi ignores anything but 200)"
            return
        try:
            payload = json.loads(body)
            result = next(r for r in payload["results"] if r.get("toolCallId") == run.id)
        except (ValueError, KeyError, TypeError, AttributeError, StopIteration):
            run.error = f'the tool\'s server did not answer {{"results": [{{"toolCallId": {run.id!r}, ...}}]}}'
            return
        _read_result(run, result)

    async def _knowledge(self, call: _Call, server: Mapping[str, Any]) -> tuple[str | None, list[Mapping[str, Any]]]:
        """Vapi's `knowledge-base-request` to the custom knowledge base: a message to say in place of the model,
        or the documents for the prompt. A server that fails or answers nothing usable adds nothing."""
        message = {
            "type": "knowledge-base-request",
            "timestamp": _now_ms(),
            "messages": self._vapi_messages(call),
            "messagesOpenAIFormatted": [dict(m) for m in call.history],
            **call.context.objects(),
        }
        try:
            status, body = await post_message(self.session, server, message, _WEBHOOK_TIMEOUT_S)
            payload = json.loads(body) if status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None, []
        if not isinstance(payload, Mapping):
            return None, []
        direct = payload.get("message")
        if isinstance(direct, Mapping) and isinstance(direct.get("content"), str) and direct["content"].strip():
            return self._spoken(direct["content"], cut=False), []
        documents = payload.get("documents")
        if not isinstance(documents, list):
            return None, []
        return None, [d for d in documents if isinstance(d, Mapping) and isinstance(d.get("content"), str)]

    def _vapi_messages(self, call: _Call) -> list[dict[str, Any]]:
        """History in Vapi's message format (`role`, `message`, `time`, `secondsFromStart`), each message timed
        when it was first reported."""
        messages = []
        now = time.time()
        for index, message in enumerate(call.history):
            at = call.times.setdefault(index, now)
            timing = {"time": int(at * 1000), "endTime": int(at * 1000),
                      "secondsFromStart": round(at - call.started_wall, 3)}  # fmt: skip
            role, content = message.get("role"), message.get("content")
            if role == "tool":
                messages.append({"role": "tool_call_result", "toolCallId": message.get("tool_call_id"),
                                 "result": content, **timing})  # fmt: skip
            elif message.get("tool_calls"):
                messages.append({"role": "tool_calls", "toolCalls": message["tool_calls"], "message": content or "",
                                 **timing})  # fmt: skip
            else:
                messages.append({"role": "bot" if role == "assistant" else role, "message": content or "", **timing})
        return messages

    def _status(self, call: _Call, status: str) -> dict[str, Any]:
        """Vapi's `status-update` server message."""
        message: dict[str, Any] = {"type": "status-update", "timestamp": _now_ms(), "status": status,
                                   **call.context.objects()}  # fmt: skip
        if status == "ended":
            message["endedReason"] = call.record.ended_reason
            message["call"] = {**message.get("call", {}), "status": "ended", "endedReason": call.record.ended_reason}
        return message

    def _conversation(self, call: _Call) -> dict[str, Any]:
        """Vapi's `conversation-update` server message: the history as it stands."""
        return {
            "type": "conversation-update",
            "timestamp": _now_ms(),
            "messages": self._vapi_messages(call),
            "messagesOpenAIFormatted": [dict(m) for m in call.history],
            **call.context.objects(),
        }

    async def _notify(self, message: Mapping[str, Any]) -> None:
        if self.server is not None:
            await self.server.send(self.session, message)


def _with_documents(history: list[dict[str, Any]], documents: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The prompt for a request: history, with the knowledge base's documents as a system message right after
    the system prompt (Vapi's format is undocumented: a guess, low confidence)."""
    if not documents:
        return history
    lead = next((i for i, m in enumerate(history) if m.get("role") != "system"), len(history))
    context = {"role": "system", "content": "Context:\n" + "\n\n".join(str(d["content"]) for d in documents)}
    return [*history[:lead], context, *history[lead:]]


def _mocked(value: Any) -> Mapping[str, Any]:
    """A scenario's `toolResults` entry as one of a tool server's `results[]`: `{reply: {...}}` is one already,
    anything else is the result."""
    if isinstance(value, Mapping) and set(value) == {"reply"} and isinstance(value["reply"], Mapping):
        return value["reply"]
    return {"result": value}


def _read_result(run: ToolRun, item: Mapping[str, Any]) -> None:
    """One of a tool server's `results[]`: `result` (text, else JSON) or `error`, and the `message` to say."""
    if "result" in item:
        value = item["result"]
        run.result = value if isinstance(value, str) else json.dumps(value)
    else:
        run.error = str(item.get("error", "no result returned"))
    if isinstance(item.get("message"), Mapping):
        run.reply_message = dict(item["message"])


def _tool_content(run: ToolRun) -> str:
    """The `tool` message's content: the result, the error as `{"error": ...}`, nothing for an async tool."""
    if run.background:
        return ""
    return run.result if run.result is not None else json.dumps({"error": run.error})


def _text(message: Mapping[str, Any]) -> str:
    """What a tool message says: its `content`, else the first of its `contents` variants."""
    if isinstance(message.get("content"), str):
        return str(message["content"])
    variants = message.get("contents")
    first = variants[0] if isinstance(variants, list) and variants else None
    return str(first.get("text") or "") if isinstance(first, Mapping) else ""


_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "neq": operator.ne, "gt": operator.gt, "gte": operator.ge, "lt": operator.lt,
    "lte": operator.le,
}  # fmt: skip


def _holds(condition: Any, arguments: Any) -> bool:
    """A tool message's condition (`{param, operator, value}`) on the call's arguments."""
    if not isinstance(condition, Mapping) or not isinstance(arguments, Mapping):
        return False
    compare = _COMPARE.get(str(condition.get("operator")))
    if compare is None or condition.get("param") not in arguments:
        return False
    actual, wanted = arguments[condition["param"]], condition.get("value", "")
    if isinstance(actual, int | float) and not isinstance(actual, bool):
        try:
            return bool(compare(float(actual), float(wanted)))
        except (TypeError, ValueError):
            return False
    return bool(compare(str(actual), str(wanted)))


def _tool_message(tool: Mapping[str, Any], kind: str, arguments: Any) -> Mapping[str, Any] | None:
    """The first of the tool's `messages` of type `kind` that says something and whose conditions hold."""
    for message in tool.get("messages") or []:
        if not isinstance(message, Mapping) or message.get("type") != kind or not _text(message).strip():
            continue
        if all(_holds(c, arguments) for c in message.get("conditions") or []):
            return message
    return None


def _closing_message(tool: Mapping[str, Any], run: ToolRun) -> Mapping[str, Any] | None:
    """What Vapi says for a finished call instead of asking the model: the result's own `message` of the right
    type (request-complete for a result, request-failed for an error), else the tool's message of that type."""
    kind = "request-complete" if run.result is not None else "request-failed"
    own = run.reply_message
    if own is not None and own.get("type") == kind and _text(own).strip():
        return own
    return _tool_message(tool, kind, run.arguments)


def _abort(interrupt: Interrupt | None) -> Abort:
    """Where the reader closes the reply for this barge-in: `after_ms` from the request, or `after_chars` in."""
    if interrupt is None:
        return Abort.NEVER
    after_s = None if interrupt.after_ms is None else interrupt.after_ms / 1000
    return Abort(after_s=after_s, after_chars=interrupt.after_chars)


_ENDED_BY_STATUS = {
    400: "400-bad-request-validation-failed",
    401: "401-unauthorized",
    403: "403-model-access-denied",
    429: "429-exceeded-quota",
    500: "500-server-error",
    503: "503-server-overloaded-error",
}


def _ended_reason(exchange: Exchange) -> str:
    """Vapi's `endedReason` (own-key form) for a call whose custom LLM failed this way."""
    kind = _ENDED_BY_STATUS.get(exchange.status or 0, "llm-failed")
    return f"pipeline-error-custom-llm-{kind}"


def turn_timing(turn: TurnRecord) -> dict[str, float | None]:
    """What the caller experiences, from the turn's first answering request (tool round trips included).

    `ttft_ms`: to the first spoken content; `first_sentence_ms`: to the first sentence Vapi can send to TTS;
    `total_ms`: to the end of the last request of the turn.
    """
    answering = turn.answering
    if not answering:
        return {"ttft_ms": None, "first_sentence_ms": None, "total_ms": None}
    t0 = answering[0].t_start
    first_content = next((e.sse.t for exchange in answering for e in exchange.spoken_events if e.content.strip()), None)
    first_sentence = next((t for t in (first_sentence_time(x) for x in answering) if t is not None), None)
    last_end = answering[-1].t_end

    def ms(t: float | None) -> float | None:
        return None if t is None else round((t - t0) * 1000, 3)

    return {"ttft_ms": ms(first_content), "first_sentence_ms": ms(first_sentence), "total_ms": ms(last_end)}
