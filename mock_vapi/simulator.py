"""The call simulator: plays a scenario against a custom LLM the way Vapi holds a call, turn by turn.

Every request comes from `build_request` and every reply is read by `mock_vapi.reader.read_into`, so a call
sees exactly what `vapi-harness check` sees. What Vapi does between requests, as the protocol notes describe:

- `firstMessageMode`: a static first message goes into history with no request; `...-model-generated-message`
  sends `[system]` alone when the call starts.
- History holds what was spoken: the text of each reply, merged into one assistant message per turn; after a
  barge-in, only the text that arrived before it (cut at the last whole word). `modelOutputInMessagesEnabled`
  keeps the raw text instead.
- A reply that ends in tool calls: `endCall` ends the call and `transferCall` records a transfer (only when the
  assistant has that tool, as Vapi acts on attached tools only); a function tool gets its mocked result or
  Vapi's `tool-calls` message POSTed to its server URL, then the follow-up request carries the assistant
  `tool_calls` message and one `tool` message per call.
- A barge-in closes the stream at its point; with a longer utterance the turn is sent again with it.

For load, a call can also pause between turns (the caller speaking), interrupt a share of its turns at random
(the caller talks over the first words and says the same again) and hand every exchange to a callback as soon
as it ends.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from harness.protocol import AssembledToolCall, repeated_tool_call, tool_call_name
from mock_vapi.context import CallContext
from mock_vapi.exchange import Exchange, Outcome
from mock_vapi.reader import Abort, ReadLimits, read_into
from mock_vapi.request import CustomLLMModel, build_request
from mock_vapi.scenarios.model import Interrupt, Scenario
from mock_vapi.timing import first_sentence_time

__all__ = ["CallRecord", "CallSimulator", "ToolRun", "TurnRecord", "turn_timing"]

MAX_TOOL_ROUNDS = 5  # follow-up requests per turn before the simulator gives up on a tool loop
_WEBHOOK_TIMEOUT_S = 20.0
_BUILTIN_TOOLS = {"endCall", "transferCall", "dtmf"}


@dataclass
class ToolRun:
    """One tool call the model made and what came back."""

    id: str
    name: str
    arguments: Any
    result: str | None = None
    error: str | None = None


@dataclass
class TurnRecord:
    """Everything one turn produced. Index 0 is the call's start (a model-generated first message)."""

    index: int
    user: str | None
    exchanges: list[Exchange] = field(default_factory=list)
    spoken: str = ""
    tool_runs: list[ToolRun] = field(default_factory=list)
    ended_call: bool = False
    transferred_to: str | None = None
    interrupted: bool = False
    problem: str | None = None  # why the turn could not be played to its end

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
    ended_reason: str = "customer-ended-call"

    def transcript(self) -> list[tuple[str, str]]:
        """(role, text) lines of what was said, tool calls and results included."""
        lines: list[tuple[str, str]] = []
        for message in self.messages:
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
        return lines


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
    ) -> None:
        self.scenario = scenario
        self.session = session
        self.api_key = api_key
        self.limits = limits or ReadLimits()
        self.think_s = think_s  # a pause before every turn but the first: the caller speaking
        self.barge_in_rate = barge_in_rate  # share of unscripted turns the caller talks over
        self.on_exchange = on_exchange
        vapi_model = {"provider": "custom-llm", "model": "gpt-4o-mini", **scenario.model, "url": base_url}
        if headers:  # from the command line (check --header), on top of the scenario's model.headers
            vapi_model["headers"] = {**(scenario.model.get("headers") or {}), **headers}
        self.model = CustomLLMModel.from_vapi(vapi_model, where=f"{scenario.source}: assistant.model")
        self.tools = {self._tool_name(t): t for t in self.model.tools}

    @staticmethod
    def _tool_name(tool: Mapping[str, Any]) -> str:
        kind = str(tool.get("type"))
        return str(tool["function"]["name"]) if kind == "function" else kind

    def _context(self, call_id: str) -> CallContext:
        call = self.scenario.call
        metadata = self.scenario.metadata
        if call.get("type") == "webCall":
            return CallContext.web_call(metadata=metadata, call_id=call_id)
        context = CallContext.inbound_phone_call(
            customer_number=str((call.get("customer") or {}).get("number", "+15551234567")),
            assistant_number=str((call.get("phoneNumber") or {}).get("number", "+15557654321")),
            metadata=metadata,
            call_id=call_id,
        )
        customer = {**(context.customer or {}), **(call.get("customer") or {})}
        return CallContext(context.call, context.phone_number, customer, context.metadata)

    async def play(self, copy: int = 0) -> CallRecord:
        """Play the whole call; never raises for what the endpoint does, it is all in the record."""
        call_id = str(self.scenario.call.get("id") or uuid.uuid4())
        if copy:
            call_id = f"{call_id}-{copy}"
        context = self._context(call_id)
        record = CallRecord(self.scenario, copy, call_id)
        history: list[dict[str, Any]] = [dict(m) for m in self.model.messages]
        mode = self.scenario.first_message_mode
        if mode == "assistant-speaks-first-with-model-generated-message":
            opening = TurnRecord(index=0, user=None)
            record.turns.append(opening)
            await self._answer(opening, history, context, record)
        elif mode == "assistant-speaks-first" and self.scenario.first_message:
            history.append({"role": "assistant", "content": self.scenario.first_message})
        for index, turn in enumerate(self.scenario.turns, start=1):
            if record.ended_reason != "customer-ended-call":
                break  # the assistant ended or transferred the call; later turns are not played
            if index > 1 and self.think_s[1] > 0:
                await asyncio.sleep(random.uniform(*self.think_s))
            played = TurnRecord(index=index, user=turn.user)
            record.turns.append(played)
            utterance = turn.user
            cut_off = False
            interrupts = turn.interrupts
            if not interrupts and self.barge_in_rate and random.random() < self.barge_in_rate:
                interrupts = (Interrupt(after_chars=1, user=turn.user),)  # talked over the first words
            for interrupt in interrupts:
                request = [*history, {"role": "user", "content": utterance}]
                exchange = await self._send(request, context, interrupt)
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
                history.append({"role": "user", "content": utterance})
                said = self._spoken(exchange.text, cut=True)
                if said:
                    history.append({"role": "assistant", "content": said})
                played.spoken = said
                cut_off = True
                break
            if cut_off:
                continue
            history.append({"role": "user", "content": utterance})
            played.user = utterance
            await self._answer(played, history, context, record)
        record.messages = history
        return record

    async def _answer(
        self, played: TurnRecord, history: list[dict[str, Any]], context: CallContext, record: CallRecord
    ) -> None:
        """Request, run tools, request again, until the model speaks without calling a tool."""
        said: list[str] = []
        for _ in range(MAX_TOOL_ROUNDS):
            exchange = await self._send(history, context, None)
            played.exchanges.append(exchange)
            if exchange.outcome is not Outcome.COMPLETE or exchange.status is None or exchange.status >= 300:
                played.problem = exchange.error or f"HTTP {exchange.status}"
                record.ended_reason = _ended_reason(exchange)
                break
            text, calls = exchange.reply_text, exchange.reply_tool_calls
            if text.strip():
                said.append(self._spoken(text, cut=False))
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
            results = await self._run_tools(calls, played, context, history)
            if played.ended_call or played.transferred_to is not None:
                record.ended_reason = "assistant-ended-call" if played.ended_call else "assistant-forwarded-call"
                break
            history.extend(results)
        else:
            played.problem = f"still calling tools after {MAX_TOOL_ROUNDS} follow-up requests"
        played.spoken = " ".join(s for s in said if s)
        tail = said[-1] if said else ""
        if tail:
            history.append({"role": "assistant", "content": tail})

    async def _send(
        self, messages: list[dict[str, Any]], context: CallContext, interrupt: Interrupt | None
    ) -> Exchange:
        request = build_request(
            self.model, messages, context=context, api_key=self.api_key, stream=self.scenario.stream
        )
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
        self,
        calls: Sequence[AssembledToolCall],
        played: TurnRecord,
        context: CallContext,
        history: list[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        messages = []
        for call in calls:
            name = call.name or ""
            try:
                arguments = call.parsed_arguments()
            except ValueError:
                arguments = call.arguments
            run = ToolRun(id=call.id or "", name=name, arguments=arguments)
            played.tool_runs.append(run)
            tool = self.tools.get(name)
            if tool is None:
                run.error = f"the assistant has no tool named {name!r}"
            elif name == "endCall":
                played.ended_call = True
                continue
            elif name == "transferCall":
                destination = arguments.get("destination") if isinstance(arguments, dict) else None
                played.transferred_to = str(destination or "(default destination)")
                continue
            elif name in self.scenario.tool_results:
                value = self.scenario.tool_results[name]
                run.result = value if isinstance(value, str) else json.dumps(value)
            elif name in _BUILTIN_TOOLS:
                run.result = "Done."
            else:
                await self._webhook(tool, run, context, history)
            content = run.result if run.result is not None else json.dumps({"error": run.error})
            messages.append({"role": "tool", "tool_call_id": run.id, "content": content})
        return messages

    async def _webhook(
        self, tool: Mapping[str, Any], run: ToolRun, context: CallContext, history: list[dict[str, Any]]
    ) -> None:
        """POST Vapi's `tool-calls` server message to the tool's server URL; read `results[].result`."""
        server = tool.get("server") or {}
        call_item = {"id": run.id, "type": "function", "function": {"name": run.name, "arguments": run.arguments}}
        message = {
            "type": "tool-calls",
            "timestamp": int(datetime.now(UTC).timestamp() * 1000),
            "toolCallList": [call_item],
            "toolWithToolCallList": [{**dict(tool), "toolCall": call_item}],
            **context.objects(),
            "artifact": {"messages": [dict(m) for m in history]},
        }
        headers = {"Content-Type": "application/json"}
        if server.get("secret"):
            headers["X-Vapi-Secret"] = str(server["secret"])
        try:
            async with asyncio.timeout(_WEBHOOK_TIMEOUT_S):
                async with self.session.post(server["url"], json={"message": message}, headers=headers) as response:
                    body = await response.read()
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            run.error = f"the tool's server URL {server['url']} failed: {type(exc).__name__}: {exc}"
            return
        if response.status != 200:
            run.error = f"the tool's server answered HTTP {response.status} (Vapi ignores anything but 200)"
            return
        try:
            payload = json.loads(body)
            result = next(r for r in payload["results"] if r.get("toolCallId") == run.id)
        except (ValueError, KeyError, TypeError, StopIteration):
            run.error = f'the tool\'s server did not answer {{"results": [{{"toolCallId": {run.id!r}, ...}}]}}'
            return
        if "result" in result:
            value = result["result"]
            run.result = value if isinstance(value, str) else json.dumps(value)
        else:
            run.error = str(result.get("error", "no result returned"))


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
