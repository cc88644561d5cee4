"""Chat-completions shapes shared by the harness, the simulators and the servers.

Builders produce the OpenAI wire shapes our own servers emit; readers pull out what Vapi reads
from a streamed chunk (`choices[0].delta.content` and `tool_calls`), and `ToolCallAssembler`
accumulates tool-call fragments by `index` the way the OpenAI SDK's consumers do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from harness.protocol.jsonbody import loads

__all__ = [
    "CHAT_PARAMS",
    "FINISH_REASONS",
    "AssembledToolCall",
    "ToolCallAssembler",
    "answered_tool_calls",
    "chunk",
    "completion",
    "delta_content",
    "delta_tool_calls",
    "error_envelope",
    "first_delta",
    "openai_chat_params",
    "repeated_tool_call",
    "tool_call_name",
]

FINISH_REASONS = ("stop", "length", "tool_calls", "content_filter", "function_call")


# OpenAI's chat-completions request parameters, as `openai_chat_params()` reads them from the `openai` package.
# Kept as a literal so a server (the reference proxy) need not import `openai` (~22 MB, ~0.6 s) to use it;
# a test fails when the installed package's set differs, and the fix is pasting the derived set here.
CHAT_PARAMS = frozenset(
    {
        "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
        "max_completion_tokens", "max_tokens", "messages", "metadata", "modalities", "model", "moderation", "n",
        "parallel_tool_calls", "prediction", "presence_penalty", "prompt_cache_key", "prompt_cache_options",
        "prompt_cache_retention", "reasoning_effort", "response_format", "safety_identifier", "seed",
        "service_tier", "stop", "store", "stream", "stream_options", "temperature", "tool_choice", "tools",
        "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
    }
)  # fmt: skip


@cache
def openai_chat_params() -> frozenset[str]:
    """The request parameters of OpenAI's chat-completions endpoint, read from the `openai` package's own types.

    This is the allow-list a proxy forwards upstream: a strict server (a fine-tuned OpenAI model) rejects
    anything else as an unrecognized argument. Imported lazily: the openai package takes ~0.6 s to import.
    Servers use `CHAT_PARAMS`, its literal copy.
    """
    from openai.types.chat.completion_create_params import CompletionCreateParamsBase

    keys = CompletionCreateParamsBase.__required_keys__ | CompletionCreateParamsBase.__optional_keys__
    return frozenset(keys | {"stream"})  # `stream` is declared on the streaming and non-streaming subtypes


def chunk(
    completion_id: str,
    model: str,
    delta: dict[str, Any],
    *,
    finish_reason: str | None = None,
    created: int | None = None,
    usage: dict[str, int] | None = None,
) -> dict[str, Any]:
    """One `chat.completion.chunk` with a single choice."""
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()) if created is None else created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def completion(
    completion_id: str,
    model: str,
    message: dict[str, Any],
    *,
    finish_reason: str = "stop",
    usage: dict[str, int] | None = None,
) -> dict[str, Any]:
    """A non-streamed `chat.completion` with a single choice."""
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def error_envelope(message: str, type_: str = "invalid_request_error", code: str | None = None) -> dict[str, Any]:
    """The OpenAI error envelope: `{"error": {"message", "type", "param", "code"}}`."""
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


def first_delta(payload: Any) -> dict[str, Any] | None:
    """`choices[0].delta` when it is an object, else None."""
    if not isinstance(payload, dict):
        return None
    choices = payload.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    delta = choices[0].get("delta")
    return delta if isinstance(delta, dict) else None


def delta_content(payload: Any) -> str:
    """The text Vapi would speak from this chunk (`choices[0].delta.content`), or ""."""
    delta = first_delta(payload)
    content = delta.get("content") if delta else None
    return content if isinstance(content, str) else ""


def delta_tool_calls(payload: Any) -> list[Any]:
    """The raw tool-call fragments of this chunk (`choices[0].delta.tool_calls`), or []."""
    delta = first_delta(payload)
    calls = delta.get("tool_calls") if delta else None
    return calls if isinstance(calls, list) else []


def tool_call_name(call: Any) -> str | None:
    """The function a tool call or tool-call fragment names (`function.name`), or None when it names none.

    The one reader of a call's name: streamed fragments, `message.tool_calls` of a reply or of history alike.
    """
    function = call.get("function") if isinstance(call, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) else None


@dataclass
class AssembledToolCall:
    """A tool call put together from its streamed fragments."""

    index: int
    id: str | None = None
    type: str | None = None
    name: str | None = None
    arguments: str = ""
    fragments: int = 0

    def parsed_arguments(self) -> Any:
        """The arguments as JSON; raises `ValueError` when they do not parse."""
        return loads(self.arguments or "{}")


@dataclass
class ToolCallAssembler:
    """Accumulates tool-call fragments by `index`, noting each way they fail to assemble."""

    calls: dict[int, AssembledToolCall] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, fragment: Any, where: str) -> None:
        """Add one fragment; `where` names it in problem messages (e.g. "event 3")."""
        if not isinstance(fragment, dict):
            self.problems.append(f"{where}: tool-call fragment is not an object: {fragment!r}")
            return
        index = fragment.get("index")
        if not isinstance(index, int) or isinstance(index, bool):
            self.problems.append(f"{where}: tool-call fragment without an integer `index`: {_short(fragment)}")
            return
        function = fragment.get("function")
        if function is not None and not isinstance(function, dict):
            self.problems.append(f"{where}: `function` is not an object: {_short(fragment)}")
            return
        function = function or {}
        name = tool_call_name(fragment)
        call = self.calls.get(index)
        if call is None:
            call = self.calls[index] = AssembledToolCall(index=index)
            if not fragment.get("id") or not name:
                self.problems.append(
                    f"{where}: the first fragment of tool call {index} lacks `id` or `function.name`: "
                    f"{_short(fragment)}"
                )
        call.fragments += 1
        call.id = call.id or fragment.get("id")
        call.type = call.type or fragment.get("type")
        call.name = call.name or name
        arguments = function.get("arguments")
        if arguments is None:
            return
        if not isinstance(arguments, str):
            self.problems.append(
                f"{where}: `function.arguments` of tool call {index} is {type(arguments).__name__}, not a string"
            )
            return
        call.arguments += arguments

    def finish(self) -> list[str]:
        """Problems found, including arguments that do not concatenate to valid JSON."""
        problems = list(self.problems)
        for call in self.calls.values():
            try:
                call.parsed_arguments()
            except ValueError as exc:
                problems.append(
                    f"tool call {call.index} ({call.name}): arguments {call.arguments!r} are not JSON: {exc}"
                )
        return problems


def _short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, separators=(",", ":"))
    return text if len(text) <= limit else text[:limit] + "…"


def _call_key(name: str | None, arguments: str) -> tuple[str | None, str]:
    """A tool call's identity for loop detection: its name and its arguments as canonical JSON (or as given)."""
    try:
        canonical = json.dumps(loads(arguments or "{}"), sort_keys=True, separators=(",", ":"))
    except ValueError:
        canonical = arguments.strip()
    return name, canonical


def answered_tool_calls(messages: Any) -> set[tuple[str | None, str]]:
    """The calls in this turn's history (since the last user message) that a `tool` message answered."""
    if not isinstance(messages, list):
        return set()
    turn: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, dict):
            turn = [] if message.get("role") == "user" else [*turn, message]
    answered = {m.get("tool_call_id") for m in turn if m.get("role") == "tool"}
    keys = set()
    for message in turn:
        for call in message.get("tool_calls") or [] if message.get("role") == "assistant" else []:
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and call.get("id") in answered:
                keys.add(_call_key(tool_call_name(call), str(function.get("arguments") or "")))
    return keys


def repeated_tool_call(messages: Any, calls: Sequence[AssembledToolCall]) -> AssembledToolCall | None:
    """The first of `calls` that repeats, name and arguments, a call this turn already has the result of."""
    answered = answered_tool_calls(messages)
    return next((c for c in calls if _call_key(c.name, c.arguments) in answered), None)
