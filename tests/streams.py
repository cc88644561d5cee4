"""Recorded byte streams and a way to turn them into exchanges, as the reader would record them."""

from __future__ import annotations

import json
from typing import Any

from mock_vapi import CustomLLMModel, MetadataSendMode, build_request
from mock_vapi.exchange import Exchange, Outcome, Recorder

MODEL = CustomLLMModel(url="http://127.0.0.1:9/v1", model="m", metadata_send_mode=MetadataSendMode.OFF)
MESSAGES = [{"role": "user", "content": "hi"}]
SSE = {"content-type": "text/event-stream"}


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    body = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    body["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish}]
    body.update(extra)
    return b"data: " + json.dumps(body).encode() + b"\n\n"


ROLE = chunk({"role": "assistant", "content": ""})
WORDS = [chunk({"content": w}) for w in ("We open ", "at nine tomorrow ", "morning, see you then. ", "Bye!")]
STOP = chunk({}, "stop")
DONE = b"data: [DONE]\n\n"
IDEAL = [ROLE, *WORDS, STOP, DONE]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
    },
}
TOOL_HEAD = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}


def recorded(
    frames: list[bytes],
    *,
    status: int | None = 200,
    headers: dict[str, str] | None = None,
    stream: bool = True,
    outcome: Outcome = Outcome.COMPLETE,
    gap_s: float = 0.05,
    times: list[float] | None = None,
    extra_body: dict[str, Any] | None = None,
    url: str | None = None,
    max_event_bytes: int = 1024 * 1024,
    tools: tuple[dict[str, Any], ...] = (),
) -> Exchange:
    """An exchange as the reader would record it, from frames arriving `gap_s` apart (or at `times`)."""
    model = MODEL.with_(tools=tools) if url is None else MODEL.with_(url=url, tools=tools)
    request = build_request(model, MESSAGES, stream=stream, extra_body=extra_body)
    exchange = Exchange(request, t_start=0.0)
    exchange.status = status
    exchange.headers = dict(SSE if headers is None else headers)
    exchange.t_headers = 0.001 if status is not None else None
    recorder = Recorder(exchange, max_event_bytes)
    t = 0.0
    for i, data in enumerate(frames):
        t = times[i] if times else t + gap_s
        recorder.feed(data, t)
    if outcome is Outcome.COMPLETE:
        recorder.end_of_body(t + 0.001)
    recorder.finish(t + 0.001)
    exchange.outcome = outcome
    return exchange
