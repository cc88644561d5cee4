"""What the fake LLM says: the reply as a timed list of byte frames, shaped by faults and quirks.

A *fault* breaks exactly one rule the checks enforce; a *quirk* is unusual but correct (CRLF line
ends, no space after `data:`, keep-alive comments, a usage-only final chunk).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Self

from harness.fake_llm.triggers import (
    has_astral_text,
    has_deep_metadata,
    has_long_tool_result,
    has_parallel_tool_calls,
    is_long_history,
    is_web_call,
)
from harness.protocol import chunk, completion, encode_comment, encode_event
from mock_vapi.errors import did_you_mean

__all__ = [
    "DEFAULT_REPLY", "INPUT_FAULTS", "FakeLLMConfig", "Fault", "Frame", "Quirk", "plan_completion", "plan_reply",
    "set_off",
]  # fmt: skip

DEFAULT_REPLY = (
    "Sure! Our office opens at nine in the morning tomorrow, and we close at five in the afternoon. "
    "Is there anything else I can help you with?"
)


class _Named(StrEnum):
    """A name the fake LLM answers to (the value, as `--fault` and `--quirk` take it) and what it does."""

    description: str

    def __new__(cls, name: str, description: str) -> Self:
        member = str.__new__(cls, name)
        member._value_ = name
        member.description = description
        return member

    @classmethod
    def parse(cls, name: str) -> Self:
        """The member called `name`; else a ValueError that names the closest one."""
        for member in cls:
            if member.value == name:
                return member
        names = [member.value for member in cls]
        raise ValueError(f"unknown {cls.__name__.lower()} {name!r}.{did_you_mean(name, names)} See --list-faults")


class Fault(_Named):
    """A rule the fake LLM breaks on request; docs/checks.md names the check that must catch each.

    Planning code tests `Fault.X in config.faults`, so a misspelt fault fails type checking.
    """

    STATUS_500 = "status-500", "answer every completion with HTTP 500"
    REJECT_EXTRA_FIELDS = (
        "reject-extra-fields",
        "answer 400 when the body carries fields OpenAI does not know (call, metadata, ...)",
    )
    JSON_BODY = "json-body", "answer a stream request with a plain chat.completion JSON body"
    INVALID_JSON = "invalid-json", "send a data payload that is not JSON"
    NO_CHOICES = "no-choices", "send a chunk without `choices`"
    ERROR_CHUNK = "error-chunk", "send a chunk with a top-level `error`"
    NO_CONTENT = "no-content", "stream only a role delta and a finish_reason, no text"
    TOOL_NO_INDEX = "tool-no-index", "send tool-call fragments without `index`"
    TOOL_NO_ID = "tool-no-id", "send the first tool-call fragment without `id`"
    TOOL_BAD_ARGUMENTS = "tool-bad-arguments", "send tool-call arguments that are not JSON (streamed and not)"
    EVENT_ERROR = "event-error", "send an `event: error` event mid-stream"
    ENDLESS = "endless", "stream 20,000 content chunks, chunk-delay apart (a reply that does not end in time)"
    HUGE_BODY = "huge-body", "stream more than 8 MiB"
    NEVER_CLOSE = "never-close", "keep the connection open after [DONE]"
    DROP_MID_STREAM = "drop-mid-stream", "break the connection in the middle of the stream"
    UNTERMINATED_EVENT = "unterminated-event", "end the body inside the last content event (no blank line)"
    NO_MESSAGE = "no-message", "answer non-streamed requests without `choices[0].message`"
    IGNORE_AUTH = "ignore-auth", "accept any API key"
    MALFORMED_500 = "malformed-500", "answer a malformed JSON body with HTTP 500"
    HANG = "hang", "never send response headers"
    NO_DONE = "no-done", "end the stream without [DONE]"
    NO_FINISH_REASON = "no-finish-reason", "never send a finish_reason"
    BAD_FINISH_REASON = "bad-finish-reason", "send finish_reason 'done'"
    WRONG_CONTENT_TYPE = "wrong-content-type", "stream with Content-Type application/json"
    EVENT_LINES = "event-lines", "prefix every event with an `event: message` line"
    NO_ROLE = "no-role", "send no role in the first delta"
    INCONSISTENT_ID = "inconsistent-id", "give every chunk a different id"
    MISSING_FIELDS = "missing-fields", "send chunks without id, object, created and model"
    BUFFERED = "buffered", "hold the whole reply and send it in one write"
    STALL = "stall", "pause 1.5 s in the middle of the reply"
    SLOW_FIRST_SENTENCE = "slow-first-sentence", "send the first word at once, then crawl to the first sentence"
    NO_ENVELOPE = "no-envelope", "answer errors with plain text instead of the OpenAI envelope"
    NO_USAGE = "no-usage", "ignore stream_options.include_usage"
    DATA_AFTER_DONE = "data-after-done", "send a chunk after [DONE]"
    INVALID_UTF8 = "invalid-utf8", "send bytes that are not UTF-8 inside a chunk"
    IGNORE_TOOL_RESULTS = (
        "ignore-tool-results",
        "answer a tool result as if it were not there (a scenario's follow-up fails)",
    )
    CRASH_AFTER_ABORT = (
        "crash-after-abort",
        "answer 500 to every request once a client has closed a stream early (noticed at the next write, as a "
        "real server learns of it)",
    )
    TOOL_LOOP = "tool-loop", "answer a tool result by calling the same tool again with the same arguments"
    AUTH_400 = "auth-400", "refuse a wrong or missing API key with HTTP 400 instead of 401"
    OVERSIZE_EVENT = "oversize-event", "send one chunk larger than 1 MiB"
    CREATED_STRING = "created-string", "send `created` as a string"
    # Input faults: each breaks only a request of one class (harness.fake_llm.triggers) and answers any other
    # normally, so the default suite passes and only `explore` finds them.
    ASTRAL_500 = "astral-500", "answer HTTP 500 when a message holds a character beyond the BMP (an emoji)"
    LONG_HISTORY_NO_CHOICES = (
        "long-history-no-choices",
        "send a chunk without `choices` when the history holds more than 40 messages",
    )
    WEB_CALL_INVALID_JSON = (
        "web-call-invalid-json",
        "send a data payload that is not JSON on a web call (Vapi's extras without a customer)",
    )
    DEEP_METADATA_DROP = (
        "deep-metadata-drop",
        "break the stream when the metadata nests 3 levels deep or has a key that is not ASCII",
    )
    PARALLEL_TOOLS_ERROR_CHUNK = (
        "parallel-tools-error-chunk",
        "send a chunk with a top-level `error` when the history holds 2 or more parallel tool calls",
    )
    LONG_TOOL_RESULT_UNTERMINATED = (
        "long-tool-result-unterminated",
        "end the stream inside an event when a tool message is longer than 2,000 characters",
    )


# Each input fault and the class of request that sets it off.
INPUT_FAULTS: dict[Fault, Callable[[Mapping[str, Any]], bool]] = {
    Fault.ASTRAL_500: has_astral_text,
    Fault.LONG_HISTORY_NO_CHOICES: is_long_history,
    Fault.WEB_CALL_INVALID_JSON: is_web_call,
    Fault.DEEP_METADATA_DROP: has_deep_metadata,
    Fault.PARALLEL_TOOLS_ERROR_CHUNK: has_parallel_tool_calls,
    Fault.LONG_TOOL_RESULT_UNTERMINATED: has_long_tool_result,
}


def set_off(faults: frozenset[Fault], body: Mapping[str, Any]) -> frozenset[Fault]:
    """The input faults among `faults` that `body` sets off (its class is theirs)."""
    return frozenset(fault for fault, applies in INPUT_FAULTS.items() if fault in faults and applies(body))


class Quirk(_Named):
    """Framing that is unusual but correct: every check must still pass."""

    CRLF = "crlf", "end lines with CRLF"
    NO_SPACE = "no-space", "write `data:` without the space"
    KEEPALIVE = "keepalive", "send `: keep-alive` comments between events"
    USAGE_CHUNK = "usage-chunk", "always end with a usage-only chunk with empty `choices`"


@dataclass(frozen=True)
class FakeLLMConfig:
    """How the fake LLM behaves; times in milliseconds."""

    ttft_ms: float = 20.0
    chunk_delay_ms: float = 10.0
    reply: str = DEFAULT_REPLY
    tool_mode: str = "auto"  # auto | always | never
    tool_arguments: Mapping[str, Any] | None = None
    faults: frozenset[Fault] = frozenset()
    quirks: frozenset[Quirk] = frozenset()
    api_key: str | None = None
    model: str | None = None
    # Spin the last 2 ms before the first chunk: asyncio's sleep can end up to 1 ms late (epoll counts whole
    # milliseconds). Costs CPU, so it is for timing benchmarks, not load tests.
    precise_ttft: bool = False

    def __post_init__(self) -> None:
        # Names given as text (a test's `faults={"no-done"}`) become members; an unknown one is named, with the
        # closest, as --fault names it.
        object.__setattr__(self, "faults", frozenset(Fault.parse(name) for name in self.faults))
        object.__setattr__(self, "quirks", frozenset(Quirk.parse(name) for name in self.quirks))


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
            if Fault.INCONSISTENT_ID in faults:
                payload["id"] = f"chatcmpl-fake-{self.index}"
            if Fault.MISSING_FIELDS in faults:
                for key in ("id", "object", "created", "model"):
                    payload.pop(key, None)
            if Fault.CREATED_STRING in faults and "created" in payload:
                payload["created"] = str(payload["created"])
        self.index += 1
        data = encode_event(payload, "message" if Fault.EVENT_LINES in faults else None)
        if Quirk.NO_SPACE in quirks:
            data = data.replace(b"data: ", b"data:")
        if Quirk.CRLF in quirks:
            data = data.replace(b"\n", b"\r\n")
        if Quirk.KEEPALIVE in quirks:
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
    if Fault.TOOL_LOOP in config.faults:
        repeated = _answered_call(body)
        if repeated is not None:
            return repeated
    tool = wants_tool(config, body)
    if tool is None:
        return None
    arguments = _arguments(tool, config.tool_arguments)
    return tool, arguments.rstrip("}") if Fault.TOOL_BAD_ARGUMENTS in config.faults else arguments


def reply_text(config: FakeLLMConfig, body: Mapping[str, Any]) -> str:
    """The text answer: after a tool result, a sentence quoting it."""
    messages = body.get("messages") or []
    last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    if last.get("role") == "tool" and Fault.IGNORE_TOOL_RESULTS not in config.faults:
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

    first = {"content": ""} if Fault.NO_ROLE in faults else {"role": "assistant", "content": ""}
    stream.emit(make(first), ttft_s)
    inputs = set_off(faults, body)
    if Fault.NO_CHOICES in faults or Fault.LONG_HISTORY_NO_CHOICES in inputs:
        stream.emit({"id": completion_id, "object": "chat.completion.chunk", "function_call": {"name": "x"}}, gap_s)
    if Fault.WEB_CALL_INVALID_JSON in inputs:
        stream.frames.append(Frame(gap_s, b'data: {"choices": [{"delta": {"content": "web"\n\n'))
    if Fault.PARALLEL_TOOLS_ERROR_CHUNK in inputs:
        stream.emit({"error": {"message": "too many tool calls", "type": "server_error"}}, gap_s)
    if Fault.DEEP_METADATA_DROP in inputs:
        stream.emit(make({"content": "Let me"}), gap_s)
        stream.frames.append(Frame(gap_s, fail=True))
        return stream.frames
    planned = tool_call(config, body)
    finish = "stop"
    if Fault.NO_CONTENT in faults:
        pass
    elif planned is not None:
        finish = "tool_calls"
        tool, arguments = planned
        head: dict[str, Any] = {"index": 0, "id": "call_fake_0", "type": "function"}
        head["function"] = {"name": tool["function"]["name"], "arguments": ""}
        if Fault.TOOL_NO_ID in faults:
            del head["id"]
        pieces = [arguments[: len(arguments) // 2], arguments[len(arguments) // 2 :]]
        fragments = [head] + [{"index": 0, "function": {"arguments": p}} for p in pieces]
        if Fault.TOOL_NO_INDEX in faults:
            for fragment in fragments:
                del fragment["index"]
        for fragment in fragments:
            stream.emit(make({"tool_calls": [fragment]}), gap_s)
    elif Fault.ENDLESS in faults or Fault.HUGE_BODY in faults:
        filler = make({"content": "la " * (2000 if Fault.HUGE_BODY in faults else 1)})
        for _ in range(20_000 if Fault.ENDLESS in faults else 1_500):
            stream.emit(dict(filler), gap_s if Fault.ENDLESS in faults else 0)
    else:
        words = _words(reply_text(config, body))
        for i, word in enumerate(words):
            delay = gap_s
            if Fault.SLOW_FIRST_SENTENCE in faults and i > 0:
                delay = max(gap_s, 0.12)
            if Fault.STALL in faults and i == len(words) // 2:
                delay = 1.5
            if Fault.INVALID_JSON in faults and i == 1:
                stream.frames.append(Frame(gap_s, b'data: {"choices": [{"delta": {"content": "oops"\n\n'))
            if Fault.EVENT_ERROR in faults and i == 2:
                stream.frames.append(Frame(gap_s, b'event: error\ndata: {"message": "overloaded"}\n\n'))
            if Fault.OVERSIZE_EVENT in faults and i == 2:
                stream.emit(make({"content": " " * (1024 * 1024 + 10)}), gap_s)
            if Fault.ERROR_CHUNK in faults and i == 2:
                stream.emit({"error": {"message": "upstream exploded", "type": "server_error"}}, gap_s)
            if Fault.DROP_MID_STREAM in faults and i == len(words) // 2:
                stream.frames.append(Frame(gap_s, fail=True))
                return stream.frames
            payload = make({"content": word})
            if Fault.INVALID_UTF8 in faults and i == 1:
                raw = encode_event(payload).replace(word.encode(), word.encode() + b"\xff\xfe")
                stream.frames.append(Frame(delay, raw))
                continue
            stream.emit(payload, delay)
    if Fault.NO_FINISH_REASON not in faults:
        stream.emit(make({}, "done" if Fault.BAD_FINISH_REASON in faults else finish), gap_s)
    wants_usage = (body.get("stream_options") or {}).get("include_usage") and Fault.NO_USAGE not in faults
    if wants_usage or Quirk.USAGE_CHUNK in config.quirks:
        usage = {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}
        stream.emit({**make({}), "choices": [], "usage": usage}, 0)
    if Fault.UNTERMINATED_EVENT in faults or Fault.LONG_TOOL_RESULT_UNTERMINATED in inputs:
        last = make({"content": " Goodbye."})
        stream.frames.append(Frame(gap_s, b"data: " + json.dumps(last).encode()))
        return stream.frames
    if Fault.NO_DONE not in faults:
        stream.emit("[DONE]", 0)
    if Fault.DATA_AFTER_DONE in faults:
        stream.emit(make({"content": " And one more thing."}), 0)
    if Fault.BUFFERED in faults:
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
    if Fault.NO_MESSAGE in config.faults:
        del body_out["choices"][0]["message"]
    return body_out
