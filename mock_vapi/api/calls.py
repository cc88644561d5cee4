"""`/call`: simulated calls. A real Vapi call needs audio; here a `simulation` block (a documented extension)
scripts the caller's turns in the scenario format, and the call simulator plays them against the assistant's
model exactly as `check --suite` does. The call runs in the background: `POST /call` answers `queued`, and
`GET /call/{id}` shows it `in-progress`, then `ended` with its `endedReason`, transcript and timings.
`assistantOverrides` are merged into the assistant (its `variableValues` fill the assistant's templates and ride
in `call.assistantOverrides.variableValues`); the assistant's server URL gets the call's server messages.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from mock_vapi.api.llm import ResolvedModel, record_exchange, send_with_retries
from mock_vapi.api.overrides import apply_overrides, public_overrides, variable_values_of
from mock_vapi.api.resources import ModelResource
from mock_vapi.api.store import now_iso
from mock_vapi.api.validate import ApiError
from mock_vapi.exchange import Exchange
from mock_vapi.reader import Abort, ReadLimits
from mock_vapi.request import VapiRequest
from mock_vapi.scenarios.loader import ScenarioError, load_document
from mock_vapi.scenarios.model import Scenario
from mock_vapi.simulator import AssistantServer, CallRecord, CallSimulator, turn_timing

__all__ = ["Calls"]

log = logging.getLogger(__name__)
_MODEL_KEYS = (
    "model",
    "messages",
    "temperature",
    "maxTokens",
    "metadataSendMode",
    "headers",
    "timeoutSeconds",
    "tools",
    "knowledgeBase",
    "wordLevelConfidenceEnabled",
    "emotionRecognitionEnabled",
)
_ASSISTANT_KEYS = ("firstMessage", "firstMessageMode", "metadata", "modelOutputInMessagesEnabled", "endCallPhrases",
                   "maxDurationSeconds", "silenceTimeoutSeconds", "server", "serverMessages")  # fmt: skip
_FIELDS = {"assistantId", "assistant", "assistantOverrides", "customer", "phoneNumber", "phoneNumberId", "name",
           "type", "simulation", "customerId"}  # fmt: skip


class Calls(ModelResource):
    """Creates simulated calls, plays them in the background, and keeps their outcome."""

    kind = "call"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tasks: set[asyncio.Task[None]] = set()

    def _scenario(
        self, body: Mapping[str, Any], assistant: Mapping[str, Any], resolved: ResolvedModel, call_id: str
    ) -> Scenario:
        simulation = body.get("simulation")
        if not isinstance(simulation, Mapping):
            raise ApiError(400, ["simulation must be an object: a real call needs audio, so this mock plays a "
                                 "scripted one (see docs/mock-vapi.md)"])  # fmt: skip
        model = {k: v for k, v in resolved.fields.items() if k in _MODEL_KEYS}
        server = assistant.get("server")
        if isinstance(server, Mapping) and model.get("tools"):  # Vapi sends tool calls to the assistant's server
            model["tools"] = [
                {**t, "server": t.get("server") or dict(server)} if t.get("type") == "function" else t
                for t in model["tools"]
            ]
        call_type = body.get("type", "webCall" if "customer" not in body else "inboundPhoneCall")
        call: dict[str, Any] = {"id": call_id, "type": call_type}
        call.update({k: body[k] for k in ("customer", "phoneNumber") if isinstance(body.get(k), Mapping)})
        document = {
            "name": str(body.get("name") or "call"),
            "assistant": {**{k: assistant[k] for k in _ASSISTANT_KEYS if k in assistant}, "model": model},
            "call": call,
            "variables": variable_values_of(body.get("assistantOverrides")),
            **{k: simulation[k] for k in ("turns", "toolResults", "simulator") if k in simulation},
        }
        try:
            return load_document(document, "simulation")
        except ScenarioError as exc:
            raise ApiError(400, [str(exc)]) from None

    def create(self, body: Any) -> dict[str, Any]:
        """`POST /call` (201): validate, store as `queued`, and start playing."""
        if not isinstance(body, Mapping):
            raise ApiError(400, ["body must be an object"])
        problems = [f"property {key} should not exist" for key in body if key not in _FIELDS]
        if problems:
            raise ApiError(400, problems)
        if body.get("assistantId"):
            assistant = self.assistants.get(str(body["assistantId"]))
        elif body.get("assistant") is not None:
            assistant = self.assistants.prepare(body["assistant"])
        else:
            raise ApiError(
                400, "Couldn't Get Assistant. Need Either `assistant`, `assistantId`, `squad`, or `squadId`."
            )
        fields = {k: body[k] for k in ("assistantId", "customer", "phoneNumber", "name") if k in body}
        if "assistantId" not in body:
            fields["assistant"] = assistant
        overrides = body.get("assistantOverrides")
        assistant = apply_overrides(self.assistants, assistant, overrides)  # what the call plays
        if overrides is not None:
            fields["assistantOverrides"] = public_overrides(overrides, assistant)
        resolved = self.resolve(assistant)  # its tools by id inlined, its OAuth2 plan ready
        call_id = str(uuid.uuid4())
        scenario = self._scenario(body, assistant, resolved, call_id)
        document = self.store.create(
            "call",
            {
                **fields,
                "type": scenario.call.get("type", "webCall"),
                "status": "queued",
                "simulation": body["simulation"],
            },
            resource_id=call_id,
        )
        task = asyncio.create_task(self._play(document, scenario, resolved, assistant))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return document

    async def _play(
        self, document: dict[str, Any], scenario: Scenario, resolved: ResolvedModel, assistant: Mapping[str, Any]
    ) -> None:
        started_wall, started = time.time(), time.perf_counter()
        document = self.store.replace("call", {**document, "status": "in-progress", "startedAt": now_iso()})
        session = self.session()
        key = (lambda: resolved.current_key(session)) if resolved.token_source is not None else None

        def keep(exchange: Exchange) -> None:  # every attempt, as it ends
            record_exchange(self.store, exchange, "call", document["id"])

        async def send(request: VapiRequest, abort: Abort) -> Exchange:
            return await send_with_retries(session, request, ReadLimits(), resolved.retries, abort=abort,
                                           on_exchange=keep)  # fmt: skip

        url = str(resolved.fields["url"])
        simulator = CallSimulator(scenario, url, session, api_key=resolved.api_key, key=key, send=send)
        try:
            record = await simulator.play()
        except Exception as exc:  # the mock must record a broken call, not lose it
            log.exception("simulated call %s failed", document["id"])
            self.store.replace("call", {**document, "status": "ended", "endedReason": "pipeline-error-unknown",
                                        "endedMessage": str(exc), "endedAt": now_iso()})  # fmt: skip
            return
        messages, metrics = _transcript(record, started_wall, started)
        ended = {
            **document,
            "status": "ended",
            "endedReason": record.ended_reason,
            "endedAt": now_iso(),
            "messages": messages,
            "artifact": {
                "messages": messages,
                "messagesOpenAIFormatted": record.messages,
                "transcript": "\n".join(
                    f"{'AI' if m['role'] == 'bot' else 'User'}: {m['message']}"
                    for m in messages
                    if m["role"] in ("bot", "user")
                ),
                "performanceMetrics": {"turnLatencies": metrics},
            },
        }
        if any(t.transferred_to for t in record.turns):
            ended["destination"] = {
                "type": "number",
                "number": next(t.transferred_to for t in record.turns if t.transferred_to),
            }
        self.store.replace("call", ended)
        await self._report(assistant, ended, record)

    async def _report(self, assistant: Mapping[str, Any], call: Mapping[str, Any], record: CallRecord) -> None:
        """POST the end-of-call report to the assistant's server URL, as Vapi does, with the fields its schema
        requires (`endedReason`, `artifact`, `analysis`) and the call's assistant, customer and phone number."""
        server = AssistantServer.of(assistant.get("server"), assistant.get("serverMessages"))
        if server is None:
            return
        context = record.context
        customer = call.get("customer") or (context.customer if context is not None else None)
        phone_number = context.phone_number if context is not None else None
        message = {
            "type": "end-of-call-report",
            "timestamp": int(time.time() * 1000),
            "endedReason": call["endedReason"],
            "call": {k: v for k, v in call.items() if k not in ("messages", "artifact")},
            "artifact": call["artifact"],
            # No analysis plan is played: an empty summary, no evaluation (Vapi's shape; the values a guess).
            "analysis": {"summary": "", "successEvaluation": None},
            "assistant": dict(assistant),
            **({"customer": dict(customer)} if customer else {}),
            **({"phoneNumber": dict(phone_number)} if phone_number else {}),
            "startedAt": call.get("startedAt"),
            "endedAt": call.get("endedAt"),
        }
        await server.send(self.session(), message)

    async def stop(self) -> None:
        """Cancel calls still playing (the mock is shutting down)."""
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def _transcript(
    record: CallRecord, started_wall: float, started: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Vapi's call messages (`role`, `message`, `time`, `secondsFromStart`) and per-turn latencies."""
    messages: list[dict[str, Any]] = []
    metrics: list[dict[str, Any]] = []

    def add(role: str, at: float, **fields: Any) -> None:
        messages.append({"role": role, "time": int((started_wall + at - started) * 1000),
                         "secondsFromStart": round(at - started, 3), **fields})  # fmt: skip

    system = next((m.get("content") for m in record.messages if m.get("role") == "system"), None)
    if system:
        add("system", started, message=system)
    for turn in record.turns:
        at = turn.exchanges[0].t_start if turn.exchanges else started
        if turn.user is not None:
            add("user", at, message=turn.user)
        for run in turn.tool_runs:
            call = {"id": run.id, "type": "function", "function": {"name": run.name, "arguments": run.arguments}}
            add("tool_calls", at, toolCalls=[call], message="")
            for said in (run.spoken_start, run.spoken_delayed):  # said while the tool ran
                if said:
                    add("bot", at, message=said)
            add("tool_call_result", at, toolCallId=run.id, name=run.name, result=run.result or run.error or "")
        if turn.replies:
            timing = turn_timing(turn)
            spoken_at = at + (timing["ttft_ms"] or 0) / 1000
            add("bot", spoken_at, message=" ".join(turn.replies))
        metrics.append({"turn": turn.index, **turn_timing(turn)})
    return messages, metrics
