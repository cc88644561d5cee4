"""`assistantOverrides` on `POST /call` and `POST /chat`: merged into the assistant as Vapi merges them.

Top-level fields replace the assistant's; `model` is merged one level deep (an override's `messages` or
`tools` replace the assistant's whole list, its other fields replace one by one); `metadata` and
`variableValues` are merged key by key. The merged assistant is validated like any assistant, so a bad
override is a 400 in Vapi's shape. Source and confidence: docs/mock-vapi.md ("Overrides").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mock_vapi.api.validate import ApiError

__all__ = ["OVERRIDABLE", "merge_overrides", "variable_values_of"]

# The fields of Vapi's AssistantOverrides this mock plays (the rest are accepted and kept, as Vapi keeps them).
OVERRIDABLE = frozenset({
    "model", "firstMessage", "firstMessageMode", "metadata", "variableValues", "server", "endCallPhrases",
    "maxDurationSeconds", "silenceTimeoutSeconds", "endCallMessage", "voicemailMessage", "transcriber", "voice",
    "name", "modelOutputInMessagesEnabled", "serverMessages", "backgroundSound", "knowledgeBase",
})  # fmt: skip
_MERGED_BY_KEY = ("metadata", "variableValues")


def variable_values_of(overrides: Any) -> dict[str, Any]:
    """The `variableValues` of an `assistantOverrides` body ({} without any)."""
    if isinstance(overrides, Mapping) and isinstance(overrides.get("variableValues"), Mapping):
        return dict(overrides["variableValues"])
    return {}


def _problems(overrides: Mapping[str, Any]) -> list[str]:
    problems = [f"assistantOverrides.property {k} should not exist" for k in overrides if k not in OVERRIDABLE]
    for key in (*_MERGED_BY_KEY, "model"):
        if key in overrides and not isinstance(overrides[key], Mapping):
            problems.append(f"assistantOverrides.{key} must be an object")
    if "firstMessage" in overrides and not isinstance(overrides["firstMessage"], str):
        problems.append("assistantOverrides.firstMessage must be a string")
    return problems


def merge_overrides(assistant: Mapping[str, Any], overrides: Any) -> dict[str, Any]:
    """The assistant with `overrides` applied (`ApiError` 400 naming each problem); the inputs are not changed.

    The caller validates the merged assistant as it validates any assistant."""
    merged = dict(assistant)
    if overrides is None:
        return merged
    if not isinstance(overrides, Mapping):
        raise ApiError(400, ["assistantOverrides must be an object"])
    problems = _problems(overrides)
    if problems:
        raise ApiError(400, problems)
    for key, value in overrides.items():
        if key in _MERGED_BY_KEY:
            merged[key] = {**(assistant.get(key) or {}), **value}
        elif key == "model":
            merged["model"] = {**(assistant.get("model") or {}), **value}
        else:
            merged[key] = value
    return merged
