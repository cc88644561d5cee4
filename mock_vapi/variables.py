"""Vapi's variables: the assistant's text is a LiquidJS template, filled before anything reaches the model.

`{{customerName}}` and `{{ plan | default: "basic" }}` in the system prompt, the first message and the tools'
messages are filled from `assistantOverrides.variableValues` and Vapi's built-in variables (`now`, `date`,
`time`, `year`, `month`, `day`, `customer.number`, ...), with Liquid's filters (python-liquid, which follows
the same Liquid language LiquidJS implements). A name without a value renders as nothing, as LiquidJS does by
default. Sources and confidence: docs/mock-vapi.md ("Variables").
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from liquid import Environment
from liquid.exceptions import LiquidError

__all__ = ["TemplateError", "builtin_variables", "fill_assistant", "render", "variable_values"]

_ENV = Environment()
# The built-ins' formats are not documented to the letter (low confidence): readable English, in UTC.
_FORMATS = {"date": "%b %d, %Y", "time": "%I:%M %p", "month": "%B", "day": "%d", "year": "%Y"}


class TemplateError(ValueError):
    """A template Vapi could not render; the message names where it is."""


def builtin_variables(now: datetime | None = None, customer: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Vapi's default variables for a call or chat starting at `now` (UTC)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    values: dict[str, Any] = {"now": f"{now.strftime('%b %d, %Y, %I:%M %p')} UTC"}
    values |= {name: now.strftime(pattern) for name, pattern in _FORMATS.items()}
    values["customer"] = dict(customer or {})
    return values


def variable_values(
    given: Mapping[str, Any] | None, *, now: datetime | None = None, customer: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What a template sees: the built-ins, then the values given (which win)."""
    return builtin_variables(now, customer) | dict(given or {})


def render(text: str, values: Mapping[str, Any], where: str) -> str:
    """`text` with its Liquid filled in; `TemplateError` naming `where` when it is not valid Liquid."""
    if "{" not in text:
        return text  # nothing to fill: the common case costs nothing
    try:
        return _ENV.from_string(text).render(**values)
    except LiquidError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TemplateError(f"{where}: {first}") from None


def _fill_messages(messages: Any, values: Mapping[str, Any], where: str) -> Any:
    if not isinstance(messages, list):
        return messages
    for i, message in enumerate(messages):
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            message["content"] = render(message["content"], values, f"{where}[{i}].content")
    return messages


def fill_assistant(assistant: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the assistant with every text Vapi fills rendered: the model's messages (the system prompt),
    the first, voicemail and end-call messages, and the messages of its inline tools."""
    filled = copy.deepcopy(dict(assistant))
    for key in ("firstMessage", "voicemailMessage", "endCallMessage"):
        if isinstance(filled.get(key), str):
            filled[key] = render(filled[key], values, key)
    model = filled.get("model")
    if isinstance(model, dict):
        _fill_messages(model.get("messages"), values, "model.messages")
        for i, tool in enumerate(model.get("tools") or []):
            if isinstance(tool, dict):
                _fill_messages(tool.get("messages"), values, f"model.tools[{i}].messages")
    return filled
