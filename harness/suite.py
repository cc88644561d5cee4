"""The default check suite: the turns Vapi sends, as probes built by the one request builder."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.checks import Expect
from mock_vapi import CallContext, CustomLLMModel, MetadataSendMode, VapiRequest, build_request
from mock_vapi.scenarios.model import BARGE_IN_PAUSE_MS

__all__ = ["SYSTEM_PROMPT", "WEATHER_TOOL", "Probe", "Target", "default_probes"]

SYSTEM_PROMPT = "You are Ava, the receptionist for Acme Dental. Keep answers short: they are spoken on a phone call."
FIRST_MESSAGE = "Hi, this is Ava from Acme Dental. How can I help?"
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string", "description": "City name, e.g. Paris"}},
            "required": ["location"],
        },
    },
}
_MALFORMED_BODY = b'{"model": "x", "messages": [{"role": "user", "content": "Hello"'


@dataclass(frozen=True)
class Target:
    """The endpoint under test, as an assistant's custom-llm model would point at it."""

    model: CustomLLMModel
    api_key: str | None = None
    metadata: Mapping[str, str] = field(default_factory=lambda: {"tenant": "acme", "plan": "gold"})


@dataclass(frozen=True)
class Probe:
    """One request of the suite and what the endpoint should do with it."""

    name: str
    description: str
    request: VapiRequest
    expect: Expect = Expect.TURN
    abort_after_content: bool = False
    # Wait this long before sending (after a barge-in, Vapi re-sends once the caller stops speaking).
    pause_before_s: float = 0.0
    # Vapi does not send this request with the configured assistant: its failures are warnings.
    optional: bool = False
    # For a replayed request: what the recorded reply did (`status`, `tool_names`, `has_content`).
    reference: Mapping[str, Any] | None = None


def _history(user: str) -> list[dict[str, object]]:
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "assistant", "content": FIRST_MESSAGE},
        {"role": "user", "content": user},
    ]


def default_probes(target: Target, *, barge_in_pause_ms: float = BARGE_IN_PAUSE_MS) -> list[Probe]:
    """The default suite, in the order it runs.

    `barge_in_pause_ms`: from the barge-in's abort to the re-sent turn, as Vapi waits for the caller to finish.
    """
    model, key = target.model, target.api_key
    context = CallContext.inbound_phone_call(metadata=target.metadata)

    def turn(
        messages: list[dict[str, object]], *, stream: bool = True, extra_body: Mapping[str, object] | None = None
    ) -> VapiRequest:
        return build_request(model, messages, context=context, api_key=key, stream=stream, extra_body=extra_body)

    ask = _history("What time do you open tomorrow?")
    weather = _history("What's the weather like in Paris right now?")
    tool_model = model.with_(tools=(*model.tools, WEATHER_TOOL))
    call = {
        "id": "call_weather_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
    }
    after_tool: list[dict[str, object]] = [
        *weather,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_weather_1", "content": "Sunny, 21 degrees Celsius."},
    ]
    probes = [
        Probe("stream_basic", "A streamed plain answer", turn(ask)),
        Probe("non_stream", "The same turn with stream: false", turn(ask, stream=False)),
        Probe(
            "stream_tool_call",
            "A get_weather tool is offered and the caller asks for the weather (a tool call must assemble)",
            build_request(tool_model, weather, context=context, api_key=key),
        ),
        Probe(
            "non_stream_tool_call",
            "The tool turn with stream: false (OpenAI-compatible clients, not voice calls)",
            build_request(tool_model, weather, context=context, api_key=key, stream=False),
        ),
        Probe(
            "after_tool_result",
            "The turn after a tool result (assistant tool_calls and tool messages in history)",
            build_request(tool_model, after_tool, context=context, api_key=key),
        ),
    ]
    for mode in MetadataSendMode:
        configured = mode is model.metadata_send_mode
        probes.append(
            Probe(
                f"metadata_{mode.value}",
                f"The streamed turn with metadataSendMode {mode.value!r}" + ("" if configured else " (not configured)"),
                build_request(model.with_(metadata_send_mode=mode), ask, context=context, api_key=key),
                optional=not configured,
            )
        )
    probes.append(
        Probe(
            "stream_usage",
            "A streamed turn asking stream_options.include_usage (Vapi does not send it)",
            turn(ask, extra_body={"stream_options": {"include_usage": True}}),
            optional=True,
        )
    )
    probes.append(
        Probe(
            "malformed_body",
            "A truncated JSON body (expects a 4xx JSON error)",
            turn(ask).with_body(_MALFORMED_BODY),
            Expect.MALFORMED,
        )
    )
    if key:
        probes.append(
            Probe(
                "wrong_api_key",
                "A wrong API key (expects 401/403)",
                turn(ask).with_headers(authorization="Bearer wrong-key-0000"),
                Expect.AUTH,
            )
        )
        probes.append(
            Probe(
                "missing_api_key",
                "No Authorization header (expects 401/403)",
                turn(ask).with_headers(authorization=None),
                Expect.AUTH,
            )
        )
    probes.append(
        Probe(
            "barge_in",
            "The caller interrupts: the client aborts the stream at the first content",
            turn(_history("What time do you open tomorrow? And on Saturday?")),
            Expect.BARGE_IN,
            abort_after_content=True,
        )
    )
    probes.append(
        Probe(
            "after_barge_in",
            f"The turn re-sent {barge_in_pause_ms:g} ms after the barge-in (the caller finished speaking) must succeed",
            turn(_history("What time do you open tomorrow, and on Saturday?")),
            pause_before_s=barge_in_pause_ms / 1000,
        )
    )
    probes.append(
        Probe(
            "turn_after_barge_in",
            "One more ordinary turn: the server is still healthy after the interruption",
            turn(_history("Thanks. Do you take walk-ins?")),
        )
    )
    return probes
