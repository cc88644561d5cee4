"""`assistantOverrides` on `POST /call` and `POST /chat`: merged into the assistant as Vapi merges them.

Top-level fields replace the assistant's; `model` is merged one level deep (an override's `messages` or
`tools` replace the assistant's whole list, its other fields replace one by one); `metadata` and
`variableValues` are merged key by key. The merged assistant is validated like any assistant, so a bad
override is a 400 in Vapi's shape (`apply_overrides`). Then `fill_variables` renders the assistant's Liquid
with the variables. Source and confidence: docs/mock-vapi.md ("Overrides", "Variables").
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from mock_vapi.api.llm import with_tools_by_id
from mock_vapi.api.resources import Assistants
from mock_vapi.api.store import Store
from mock_vapi.api.validate import ApiError
from mock_vapi.variables import TemplateError, fill_assistant, variable_values

__all__ = [
    "OVERRIDABLE",
    "apply_overrides",
    "fill_variables",
    "merge_overrides",
    "public_overrides",
    "variable_values_of",
]

# The fields of Vapi's AssistantOverrides (vapi_server_sdk 3.0's `AssistantOverrides`, and the call-ending ones
# the mock plays); the ones the mock does not play are accepted and kept, as Vapi keeps them.
OVERRIDABLE = frozenset({
    "model", "firstMessage", "firstMessageMode", "metadata", "variableValues", "server", "endCallPhrases",
    "maxDurationSeconds", "silenceTimeoutSeconds", "endCallMessage", "voicemailMessage", "transcriber", "voice",
    "name", "modelOutputInMessagesEnabled", "serverMessages", "backgroundSound", "knowledgeBase",
    "credentials", "credentialIds", "hooks", "clientMessages", "firstMessageInterruptionsEnabled",
    "voicemailDetection", "transportConfigurations", "analysisPlan", "artifactPlan", "compliancePlan",
    "startSpeakingPlan", "stopSpeakingPlan", "monitorPlan", "observabilityPlan", "keypadInputPlan",
    "backgroundSpeechDenoisingPlan",
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


def apply_overrides(assistants: Assistants, assistant: Mapping[str, Any], overrides: Any) -> dict[str, Any]:
    """The assistant a chat or call plays: `overrides` (a body's `assistantOverrides`, None for none) merged
    in, then validated and prepared like any assistant (`ApiError` 400 naming each problem). Inline
    credentials in the overrides get ids, their keys kept apart."""
    if overrides is None:
        return dict(assistant)
    return assistants.prepare(merge_overrides(assistant, overrides))


def public_overrides(overrides: Any, played: Mapping[str, Any]) -> Any:
    """`overrides` as a chat or call keeps and returns them: inline credentials as `played` holds them (with
    ids, their keys kept apart), so no key is ever returned and applying them again finds the same keys."""
    if not isinstance(overrides, Mapping) or "credentials" not in overrides:
        return overrides
    return {**overrides, "credentials": played.get("credentials", [])}


def fill_variables(
    store: Store,
    assistant: Mapping[str, Any],
    given: Mapping[str, Any] | None,
    *,
    customer: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The assistant with its tools by id inlined and its Liquid filled (system prompt, first, voicemail and
    end-call messages, tool messages) from Vapi's built-in variables and the `given` values (which win);
    `customer` gives `{{customer.number}}`. A template that does not render is a 400 naming its field."""
    inlined = with_tools_by_id(store, assistant)
    try:
        return fill_assistant(inlined, variable_values(given, now=now, customer=customer))
    except TemplateError as exc:
        raise ApiError(400, [str(exc)]) from None
