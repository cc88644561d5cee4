"""The default check suite: the turns Vapi sends, as probes built by the one request builder."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.checks import Expect, RecordedReply
from mock_vapi import CallContext, CustomLLMModel, MetadataSendMode, VapiRequest, build_request
from mock_vapi.reader import Abort
from mock_vapi.scenarios.model import BARGE_IN_PAUSE_MS
from mock_vapi.transcriber import user_message
from mock_vapi.variables import render, variable_values

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
    """The endpoint under test, as an assistant's custom-llm model would point at it.

    `variables` are the call's `assistantOverrides.variableValues`; `system_prompt` (None: `SYSTEM_PROMPT`) is a
    Liquid template filled with them and Vapi's built-ins. `word_confidence` and `emotion` are the model's
    `wordLevelConfidenceEnabled` and `emotionRecognitionEnabled`. `token_auth`: the runner sends each probe
    with a fetched OAuth2 token (`api_key` is then None), so the wrong- and missing-key probes run too.
    """

    model: CustomLLMModel
    api_key: str | None = None
    metadata: Mapping[str, str] = field(default_factory=lambda: {"tenant": "acme", "plan": "gold"})
    variables: Mapping[str, Any] = field(default_factory=dict)
    system_prompt: str | None = None
    word_confidence: bool = False
    emotion: bool = False
    token_auth: bool = False

    @property
    def authenticated(self) -> bool:
        """True when the probes carry a credential: a static key or an OAuth2 token."""
        return bool(self.api_key) or self.token_auth


@dataclass(frozen=True)
class Probe:
    """One request of the suite and what the endpoint should do with it."""

    name: str
    description: str
    request: VapiRequest
    expect: Expect = Expect.TURN
    abort: Abort = Abort.NEVER  # when the client closes the reply (a barge-in)
    # Wait this long before sending (after a barge-in, Vapi re-sends once the caller stops speaking).
    pause_before_s: float = 0.0
    # Vapi does not send this request with the configured assistant: its failures are warnings.
    optional: bool = False
    # For a replayed request: what the recorded reply did.
    reference: RecordedReply | None = None
    # The request carries the run's credential: with OAuth2 the runner puts the current token in it when it
    # sends it. False for the probes that send a wrong key or none on purpose.
    credentials: bool = True
    # The call this request is a turn of. A call's turns are sent one after another, in order; the requests of
    # different calls may be in flight together, as Vapi's calls overlap. Probes that name no call (a replayed
    # recording) share one: they are sent in order, one at a time.
    call: str = ""


def _history(user: str) -> tuple[dict[str, object], ...]:
    return (
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "assistant", "content": FIRST_MESSAGE},
        {"role": "user", "content": user},
    )


_ASK = _history("What time do you open tomorrow?")
_WEATHER = _history("What's the weather like in Paris right now?")
_WEATHER_CALL = {
    "id": "call_weather_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
}
_AFTER_TOOL: tuple[dict[str, object], ...] = (
    *_WEATHER,
    {"role": "assistant", "content": None, "tool_calls": [_WEATHER_CALL]},
    {"role": "tool", "tool_call_id": "call_weather_1", "content": "Sunny, 21 degrees Celsius."},
)


@dataclass(frozen=True)
class _Row:
    """One probe of the default suite as data: the turn it sends, how the request differs, what it expects.

    Every request is `build_request(model, messages, ...)` for the target's model, with `offers` added to its
    tools or `metadata_mode` in place of its `metadataSendMode`; `body` and `headers` then replace the raw body
    or set (a value) and remove (None) headers. A probe of a mode the target is not configured with is optional.
    `after_barge_in_pause` waits the barge-in pause first (`{pause_ms:g}` in the description is that pause).
    A `transcriber_extras` row is sent only when the target enables an extra; its user messages carry them.
    `call` names the call the row is a turn of, when it follows another row's turn (None: a call of its own).
    """

    name: str
    description: str
    messages: tuple[Mapping[str, object], ...]
    expect: Expect = Expect.TURN
    abort: Abort = Abort.NEVER
    after_barge_in_pause: bool = False
    optional: bool = False
    stream: bool = True
    offers: tuple[Mapping[str, Any], ...] = ()
    metadata_mode: MetadataSendMode | None = None
    extra_body: Mapping[str, object] | None = None
    body: bytes | None = None
    headers: Mapping[str, str | None] = field(default_factory=dict)
    needs_api_key: bool = False
    transcriber_extras: bool = False
    call: str | None = None


# The turns that follow one another in one call: the tool turn and the turn after its result; the barge-in, the
# turn sent again after it, and one more turn.
_TOOL_CALL = "tool_call"
_BARGE_IN_CALL = "barge_in"

_DEFAULT_SUITE: tuple[_Row, ...] = (
    _Row("stream_basic", "A streamed plain answer", _ASK),
    _Row("non_stream", "The same turn with stream: false", _ASK, stream=False),
    _Row(
        "stream_tool_call",
        "A get_weather tool is offered and the caller asks for the weather (a tool call must assemble)",
        _WEATHER,
        offers=(WEATHER_TOOL,),
        call=_TOOL_CALL,
    ),
    _Row(
        "non_stream_tool_call",
        "The tool turn with stream: false (OpenAI-compatible clients, not voice calls)",
        _WEATHER,
        stream=False,
        offers=(WEATHER_TOOL,),
    ),
    _Row(
        "after_tool_result",
        "The turn after a tool result (assistant tool_calls and tool messages in history)",
        _AFTER_TOOL,
        offers=(WEATHER_TOOL,),
        call=_TOOL_CALL,
    ),
    *(
        _Row(
            f"metadata_{mode.value}",
            f"The streamed turn with metadataSendMode {mode.value!r}",
            _ASK,
            metadata_mode=mode,
        )
        for mode in MetadataSendMode
    ),
    _Row(
        "transcriber_extras",
        "The streamed turn with the transcriber's extras on the user message (their shape is a guess)",
        _ASK,
        transcriber_extras=True,
    ),
    _Row(
        "stream_usage",
        "A streamed turn asking stream_options.include_usage (Vapi does not send it)",
        _ASK,
        optional=True,
        extra_body={"stream_options": {"include_usage": True}},
    ),
    _Row(
        "malformed_body",
        "A truncated JSON body (expects a 4xx JSON error)",
        _ASK,
        Expect.MALFORMED,
        body=_MALFORMED_BODY,
    ),
    _Row(
        "wrong_api_key",
        "A wrong API key (expects 401/403)",
        _ASK,
        Expect.AUTH,
        headers={"authorization": "Bearer wrong-key-0000"},
        needs_api_key=True,
    ),
    _Row(
        "missing_api_key",
        "No Authorization header (expects 401/403)",
        _ASK,
        Expect.AUTH,
        headers={"authorization": None},
        needs_api_key=True,
    ),
    _Row(
        "barge_in",
        "The caller interrupts: the client aborts the stream at the first content",
        _history("What time do you open tomorrow? And on Saturday?"),
        Expect.BARGE_IN,
        abort=Abort.AT_FIRST_DELTA,
        call=_BARGE_IN_CALL,
    ),
    _Row(
        "after_barge_in",
        "The turn re-sent {pause_ms:g} ms after the barge-in (the caller finished speaking) must succeed",
        _history("What time do you open tomorrow, and on Saturday?"),
        after_barge_in_pause=True,
        call=_BARGE_IN_CALL,
    ),
    _Row(
        "turn_after_barge_in",
        "One more ordinary turn: the server is still healthy after the interruption",
        _history("Thanks. Do you take walk-ins?"),
        call=_BARGE_IN_CALL,
    ),
)


def default_probes(target: Target, *, barge_in_pause_ms: float = BARGE_IN_PAUSE_MS) -> list[Probe]:
    """The default suite, in the order it runs (probes that send a key only when the target has one, the
    transcriber's extras only when it enables one).

    `barge_in_pause_ms`: from the barge-in's abort to the re-sent turn, as Vapi waits for the caller to finish.
    Raises `TemplateError` (naming "system prompt") when the target's system prompt is not valid Liquid.
    """
    context = CallContext.inbound_phone_call(metadata=target.metadata, variable_values=target.variables)
    prompt = None
    if target.system_prompt is not None:
        values = variable_values(target.variables, customer=context.customer)
        prompt = render(target.system_prompt, values, "system prompt")
    extras = target.word_confidence or target.emotion
    return [
        _probe(row, target, context, barge_in_pause_ms, prompt)
        for row in _DEFAULT_SUITE
        if (target.authenticated or not row.needs_api_key) and (extras or not row.transcriber_extras)
    ]


def _messages(row: _Row, target: Target, prompt: str | None) -> list[dict[str, Any]]:
    """The row's turn, a copy of its own: the system prompt filled in, user messages shaped by the transcriber."""
    messages = copy.deepcopy([dict(m) for m in row.messages])  # no probe shares a message with another
    for i, message in enumerate(messages):
        if prompt is not None and message["role"] == "system":
            message["content"] = prompt
        elif row.transcriber_extras and message["role"] == "user":
            flags = {"word_confidence": target.word_confidence, "emotion": target.emotion}
            messages[i] = {**message, **user_message(str(message["content"]), **flags)}
    return messages


def _probe(row: _Row, target: Target, context: CallContext, pause_ms: float, prompt: str | None = None) -> Probe:
    """The probe of one row, for this target and call."""
    model = target.model
    if row.offers:
        model = model.with_(tools=(*model.tools, *row.offers))
    unconfigured = row.metadata_mode not in (None, target.model.metadata_send_mode)
    if row.metadata_mode is not None:
        model = model.with_(metadata_send_mode=row.metadata_mode)
    request = build_request(
        model,
        _messages(row, target, prompt),
        context=context,
        api_key=target.api_key,
        stream=row.stream,
        extra_body=row.extra_body,
    )
    if row.body is not None:
        request = request.with_body(row.body)
    if row.headers:
        request = request.with_headers(**row.headers)
    description = row.description.format(pause_ms=pause_ms) if row.after_barge_in_pause else row.description
    return Probe(
        row.name,
        description + (" (not configured)" if unconfigured else ""),
        request,
        row.expect,
        abort=row.abort,
        pause_before_s=pause_ms / 1000 if row.after_barge_in_pause else 0.0,
        optional=row.optional or unconfigured,
        credentials="authorization" not in {name.lower() for name in row.headers},
        call=row.call or row.name,
    )
