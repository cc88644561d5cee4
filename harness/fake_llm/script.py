"""What the fake LLM says: the reply as a timed list of byte frames, shaped by faults and quirks.

A *fault* breaks exactly one rule the checks enforce; a *quirk* is unusual but correct (CRLF line
ends, no space after `data:`, keep-alive comments, a usage-only final chunk).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.protocol import chunk, completion, encode_comment, encode_event

__all__ = ["DEFAULT_REPLY", "FAULTS", "QUIRKS", "FakeLLMConfig", "Frame", "plan_completion", "plan_reply"]

DEFAULT_REPLY = (
    "Sure! Our office opens at nine in the morning tomorrow, and we close at five in the afternoon. "
    "Is there anything else I can help you with?"
)

# fault -> what it breaks (the check that must catch it is named in docs/checks.md)
FAULTS = {
    "status-500": "answer every completion with HTTP 500",
    "reject-extra-fields": "answer 400 when the body carries fields OpenAI does not know (call, metadata, ...)",
    "json-body": "answer a stream request with a plain chat.completion JSON body",
    "invalid-json": "send a data payload that is not JSON",
    "no-choices": "send a chunk without `choices`",
    "error-chunk": "send a chunk with a top-level `error`",
    "no-content": "stream only a role delta and a finish_reason, no text",
    "tool-no-index": "send tool-call fragments without `index`",
    "tool-no-id": "send the first tool-call fragment without `id`",
    "tool-bad-arguments": "send tool-call arguments that are not JSON (streamed and not)",
    "event-error": "send an `event: error` event mid-stream",
    "endless": "stream 20,000 content chunks, chunk-delay apart (a reply that does not end in time)",
    "huge-body": "stream more than 8 MiB",
    "never-close": "keep the connection open after [DONE]",
    "drop-mid-stream": "break the connection in the middle of the stream",
    "unterminated-event": "end the body inside the last content event (no blank line)",
    "no-message": "answer non-streamed requests without `choices[0].message`",
    "ignore-auth": "accept any API key",
    "malformed-500": "answer a malformed JSON body with HTTP 500",
    "hang": "never send response headers",
    "no-done": "end the stream without [DONE]",
    "no-finish-reason": "never send a finish_reason",
    "bad-finish-reason": "send finish_reason 'done'",
    "wrong-content-type": "stream with Content-Type application/json",
    "event-lines": "prefix every event with an `event: message` line",
    "no-role": "send no role in the first delta",
    "inconsistent-id": "give every chunk a different id",
    "missing-fields": "send chunks without id, object, created and model",
    "buffered": "hold the whole reply and send it in one write",
    "stall": "pause 1.5 s in the middle of the reply",
    "slow-first-sentence": "send the first word at once, then crawl to the first sentence",
    "no-envelope": "answer errors with plain text instead of the OpenAI envelope",
    "no-usage": "ignore stream_options.include_usage",
    "data-after-done": "send a chunk after [DONE]",
    "invalid-utf8": "send bytes that are not UTF-8 inside a chunk",
    "ignore-tool-results": "answer a tool result as if it were not there (a scenario's follow-up fails)",
    "crash-after-abort": "answer 500 to every request once a client has closed a stream early (noticed at the "
    "next write, as a real server learns of it)",
    "tool-loop": "answer a tool result by calling the same tool again with the same arguments",
    "auth-400": "refuse a wrong or missing API key with HTTP 400 instead of 401",
    "oversize-event": "send one chunk larger than 1 MiB",
    "created-string": "send `created` as a string",
}

QUIRKS = {
    "crlf": "end lines with CRLF",
    "no-space": "write `data:` without the space",
    "keepalive": "send `: keep-alive` comments between events",
    "usage-chunk": "always end with a usage-only chunk with empty `choices`",
}


@dataclass(frozen=True)
class FakeLLMConfig:
    """How the fake LLM behaves; times in milliseconds."""

    ttft_ms: float = 20.0
    chunk_delay_ms: float = 10.0
    reply: str = DEFAULT_REPLY
    tool_mode: str = "auto"  # auto | always | never
    tool_arguments: Mapping[str, Any] | None = None
    faults: frozenset[str] = frozenset()
    quirks: frozenset[str] = frozenset()
    api_key: str | None = None
    model: str | None = None
    # Spin the last 2 ms before the first chunk: asyncio's sleep can end up to 1 ms late (epoll counts whole
    # milliseconds). Costs CPU, so it is for timing benchmarks, not load tests.
    precise_ttft: bool = False


@dataclass
class Frame:
    """Bytes to send after waiting `delay_s`; `fail` breaks the connection instead."""

    delay_s: float
    data: bytes = b""
    fail: bool = False


@dataclass
class _Stream:
    config: FakeLLMConfig
    model: str
    frames: list[Frame] = field(default_factory=list)
    index: int = 0

    def emit(self, payload: Any, delay_s: float) -> None:
        faults, quirks = self.config.faults, self.config.quirks
        if isinstance(payload, dict):
            if "inconsistent-id" in faults:
                payload["id"] = f"chatcmpl-fake-{self.index}"
            if "missing-fields" in faults:
                for key in ("id", "object", "created", "model"):
                    payload.pop(key, None)
            if "created-string" in faults and "created" in payload:
                payload["created"] = str(payload["created"])
        self.index += 1
        data = encode_event(payload, "message" if "event-lines" in faults else None)
        if "no-space" in quirks:
            data = data.replace(b"data: ", b"data:")
        if "crlf" in quirks:
            data = data.replace(b"\n", b"\r\n")
        if "keepalive" in quirks:
            data = encode_comment("keep-alive") + data
        self.frames.append(Frame(delay_s, data))


def _words(text: str) -> list[str]:
    return re.findall(r"\S+\s*", text)


def _arguments(tool: Mapping[str, Any], override: Mapping[str, Any] | None) -> str:
    if override is not None:
        return json.dumps(override)
    params = tool.get("function", {}).get("parameters") or {}
    props = params.get("properties") or {}
    samples = {"string": "Paris", "number": 1, "integer": 1, "boolean": True}
    args = {}
    for name in params.get("required") or list(props)[:1]:
        spec = props.get(name, {})
        args[name] = spec["enum"][0] if spec.get("enum") else samples.get(spec.get("type", "string"), "x")
    return json.dumps(args)


# Words that make the fake call Vapi's built-in tools, as a caller would say them.
_TOOL_CUES = {
    "endCall": ("goodbye", "bye", "hang up"),
    "transferCall": ("transfer", "real person", "human", "operator"),
}


def _name_words(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).replace("_", " ").replace("-", " ")
    return [w for w in spaced.lower().split() if len(w) >= 4]


def _mentioned(tool: Mapping[str, Any], text: str) -> bool:
    name = str(tool.get("function", {}).get("name", ""))
    cues = _TOOL_CUES.get(name, ())
    return any(cue in text for cue in cues) or any(word in text for word in _name_words(name))


def wants_tool(config: FakeLLMConfig, body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The tool to call for this request, if any.

    `auto`: after a user message, the first tool the message mentions (a word of its name, e.g. "weather" for
    `get_weather`, or "goodbye" for `endCall`); `always`: the first tool; `never`: none.
    """
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type") == "function"]
    messages = body.get("messages") or []
    last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    if not tools or config.tool_mode == "never" or last.get("role") == "tool":
        return None
    if config.tool_mode == "always":
        return tools[0]
    if last.get("role") != "user":
        return None
    text = str(last.get("content") or "").lower()
    return next((t for t in tools if _mentioned(t, text)), None)


def _answered_call(body: Mapping[str, Any]) -> tuple[Mapping[str, Any], str] | None:
    """The offered tool and the arguments of the call the last `tool` message answers (for fault tool-loop)."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    if not messages or messages[-1].get("role") != "tool":
        return None
    answered = messages[-1].get("tool_call_id")
    tools = {
        t["function"].get("name"): t
        for t in body.get("tools") or []
        if isinstance(t, dict) and isinstance(t.get("function"), dict)
    }
    for message in reversed(messages):
        for call in message.get("tool_calls") or [] if message.get("role") == "assistant" else []:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and call.get("id") == answered and function.get("name") in tools:
                return tools[function["name"]], str(function.get("arguments") or "{}")
    return None


def tool_call(config: FakeLLMConfig, body: Mapping[str, Any]) -> tuple[Mapping[str, Any], str] | None:
    """The tool to call for this request and its JSON arguments, if any (see `wants_tool`)."""
    if "tool-loop" in config.faults:
        repeated = _answered_call(body)
        if repeated is not None:
            return repeated
    tool = wants_tool(config, body)
    if tool is None:
        return None
    arguments = _arguments(tool, config.tool_arguments)
    return tool, arguments.rstrip("}") if "tool-bad-arguments" in config.faults else arguments


def reply_text(config: FakeLLMConfig, body: Mapping[str, Any]) -> str:
    """The text answer: after a tool result, a sentence quoting it."""
    messages = body.get("messages") or []
    last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    if last.get("role") == "tool" and "ignore-tool-results" not in config.faults:
        return f"Thanks for waiting, I have the answer now. {last.get('content') or ''}".strip()
    return config.reply


def plan_reply(config: FakeLLMConfig, body: Mapping[str, Any], completion_id: str) -> list[Frame]:
    """The streamed reply as timed frames."""
    faults = config.faults
    model = config.model or str(body.get("model") or "fake-llm")
    stream = _Stream(config, model)
    ttft_s, gap_s = config.ttft_ms / 1000, config.chunk_delay_ms / 1000
    created = 1_787_341_097

    def make(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return chunk(completion_id, model, delta, finish_reason=finish, created=created)

    first = {"content": ""} if "no-role" in faults else {"role": "assistant", "content": ""}
    stream.emit(make(first), ttft_s)
    if "no-choices" in faults:
        stream.emit({"id": completion_id, "object": "chat.completion.chunk", "function_call": {"name": "x"}}, gap_s)
    planned = tool_call(config, body)
    finish = "stop"
    if "no-content" in faults:
        pass
    elif planned is not None:
        finish = "tool_calls"
        tool, arguments = planned
        head: dict[str, Any] = {"index": 0, "id": "call_fake_0", "type": "function"}
        head["function"] = {"name": tool["function"]["name"], "arguments": ""}
        if "tool-no-id" in faults:
            del head["id"]
        pieces = [arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]]
        fragments = [head] + [{"index": 0, "function": {"arguments": p}} for p in pieces]
        if "tool-no-index" in faults:
            for fragment in fragments:
                del fragment["index"]
        for fragment in fragments:
            stream.emit(make({"tool_calls": [fragment]}), gap_s)
    elif "endless" in faults or "huge-body" in faults:
        filler = make({"content": "la " * (2000 if "huge-body" in faults else 1)})
        for _ in range(20_000 if "endless" in faults else 1_500):
            stream.emit(dict(filler), gap_s if "endless" in faults else 0)
    else:
        words = _words(reply_text(config, body))
        for i, word in enumerate(words):
            delay = gap_s
            if "slow-first-sentence" in faults and i > 0:
                delay = max(gap_s, 0.12)
            if "stall" in faults and i == len(words) // 2:
                delay = 1.5
            if "invalid-json" in faults and i == 1:
                stream.frames.append(Frame(gap_s, b'data: {"choices": [{"delta": {"content": "oops"\n\n'))
            if "event-error" in faults and i == 2:
                stream.frames.append(Frame(gap_s, b'event: error\ndata: {"message": "overloaded"}\n\n'))
            if "oversize-event" in faults and i == 2:
                stream.emit(make({"content": " " * (1024 * 1024 + 10)}), gap_s)
            if "error-chunk" in faults and i == 2:
                stream.emit({"error": {"message": "upstream exploded", "type": "server_error"}}, gap_s)
            if "drop-mid-stream" in faults and i == len(words) // 2:
                stream.frames.append(Frame(gap_s, fail=True))
                return stream.frames
            payload = make({"content": word})
            if "invalid-utf8" in faults and i == 1:
                raw = encode_event(payload).replace(word.encode(), word.encode() + b"\xff\xfe")
                stream.frames.append(Frame(delay, raw))
                continue
            stream.emit(payload, delay)
    if "no-finish-reason" not in faults:
        stream.emit(make({}, "done" if "bad-finish-reason" in faults else finish), gap_s)
    wants_usage = (body.get("stream_options") or {}).get("include_usage") and "no-usage" not in faults
    if wants_usage or "usage-chunk" in config.quirks:
        usage = {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}
        stream.emit({**make({}), "choices": [], "usage": usage}, 0)
    if "unterminated-event" in faults:
        last = make({"content": " Goodbye."})
        stream.frames.append(Frame(gap_s, b"data: " + json.dumps(last).encode()))
        return stream.frames
    if "no-done" not in faults:
        stream.emit("[DONE]", 0)
    if "data-after-done" in faults:
        stream.emit(make({"content": " And one more thing."}), 0)
    if "buffered" in faults:
        joined = b"".join(f.data for f in stream.frames)
        return [Frame(ttft_s + gap_s * len(stream.frames), joined)]
    return stream.frames


def plan_completion(config: FakeLLMConfig, body: Mapping[str, Any], completion_id: str) -> dict[str, Any]:
    """The non-streamed reply body."""
    model = config.model or str(body.get("model") or "fake-llm")
    planned = tool_call(config, body)
    usage = {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}
    if planned is not None:
        tool, arguments = planned
        call: dict[str, Any] = {
            "id": "call_fake_0",
            "type": "function",
            "function": {"name": tool["function"]["name"], "arguments": arguments},
        }
        message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [call]}
        body_out = completion(completion_id, model, message, finish_reason="tool_calls", usage=usage)
    else:
        message = {"role": "assistant", "content": reply_text(config, body)}
        body_out = completion(completion_id, model, message, usage=usage)
    if "no-message" in config.faults:
        del body_out["choices"][0]["message"]
    return body_out
