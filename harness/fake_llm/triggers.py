"""The input classes that set off the fake LLM's input faults: one predicate per class, over the request body.

An input fault breaks a reply only when the request belongs to its class and answers normally otherwise, so
`check`'s default suite (which sends none of these classes) passes and only `explore` finds it. Tests import
the predicates to build a triggering request and an ordinary one; `script.INPUT_FAULTS` pairs each fault with
its predicate.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from harness.protocol import CHAT_PARAMS

__all__ = [
    "LONG_HISTORY_MESSAGES",
    "LONG_TOOL_RESULT_CHARS",
    "METADATA_DEPTH",
    "has_astral_text",
    "has_deep_metadata",
    "has_long_tool_result",
    "has_parallel_tool_calls",
    "is_long_history",
    "is_web_call",
    "strings",
]

LONG_HISTORY_MESSAGES = 40  # more messages than this make a long history
LONG_TOOL_RESULT_CHARS = 2000  # a tool message longer than this is a long tool result
METADATA_DEPTH = 3  # a metadata value this many levels deep (metadata.a.b.c) is deep
_VAPI_OBJECTS = frozenset({"call", "phoneNumber", "customer"})


def _messages(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    messages = body.get("messages")
    return [m for m in messages if isinstance(m, Mapping)] if isinstance(messages, list) else []


def strings(value: Any) -> Iterator[str]:
    """Every string in `value` (a JSON value: a message's content, its parts, nested objects and lists)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def has_astral_text(body: Mapping[str, Any]) -> bool:
    """A message's content holds a character beyond the Basic Multilingual Plane (most emoji)."""
    return any(ord(c) > 0xFFFF for m in _messages(body) for text in strings(m.get("content")) for c in text)


def is_long_history(body: Mapping[str, Any]) -> bool:
    """The history holds more than `LONG_HISTORY_MESSAGES` messages."""
    return len(_messages(body)) > LONG_HISTORY_MESSAGES


def is_web_call(body: Mapping[str, Any]) -> bool:
    """A web call: Vapi's extras are on (there is a `call`) but there is no `customer`."""
    return isinstance(body.get("call"), Mapping) and "customer" not in body


def _metadata(body: Mapping[str, Any]) -> Mapping[str, Any]:
    """The assistant's metadata as sent: `metadata` (mode variable), else spread over the top (destructured)."""
    if not isinstance(body.get("call"), Mapping):
        return {}
    if isinstance(body.get("metadata"), Mapping):
        return dict(body["metadata"])
    return {k: v for k, v in body.items() if k not in CHAT_PARAMS and k not in _VAPI_OBJECTS}


def _depth(value: Any) -> int:
    if isinstance(value, Mapping):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    return 0


def _keys(value: Any) -> Iterator[str]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from _keys(item)
    elif isinstance(value, list):
        for item in value:
            yield from _keys(item)


def has_deep_metadata(body: Mapping[str, Any]) -> bool:
    """The metadata holds a value `METADATA_DEPTH` levels deep, or a key that is not ASCII."""
    metadata = _metadata(body)
    return _depth(metadata) >= METADATA_DEPTH or not all(key.isascii() for key in _keys(metadata))


def has_parallel_tool_calls(body: Mapping[str, Any]) -> bool:
    """An assistant message in the history made two or more tool calls at once."""
    return any(
        m.get("role") == "assistant" and isinstance(m.get("tool_calls"), list) and len(m["tool_calls"]) >= 2
        for m in _messages(body)
    )


def has_long_tool_result(body: Mapping[str, Any]) -> bool:
    """A tool message longer than `LONG_TOOL_RESULT_CHARS` characters."""
    return any(
        m.get("role") == "tool" and sum(map(len, strings(m.get("content")))) > LONG_TOOL_RESULT_CHARS
        for m in _messages(body)
    )
