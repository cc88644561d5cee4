"""Vapi's tool types, and the OpenAI function tool each becomes in the request to the model.

Every tool reaches a custom LLM as an OpenAI `function` tool. For `function` tools that is the tool's own
`function`; a tool of another type that carries a `function` object (most of Vapi's tool DTOs accept one) is
sent with it too. Otherwise the name, description and parameters Vapi generates are documented only for
`endCall` and `transferCall`; for the other types `TOOL_TYPES` holds a best guess, with its confidence
(docs/mock-vapi.md, "Tools"). An unknown type is refused with the types Vapi knows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mock_vapi.errors import did_you_mean

__all__ = [
    "TOOL_TYPES", "VAPI_TOOL_TYPES", "ToolType", "UnknownToolType", "openai_tool", "tool_name", "unknown_type_hint",
]  # fmt: skip

_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}


class UnknownToolType(ValueError):
    """A tool type Vapi does not have, or a tool that cannot be sent; the message names the field."""


@dataclass(frozen=True)
class ToolType:
    """One of Vapi's tool types: the function it is sent as when it carries none of its own."""

    name: str  # the generated function name, when the tool has no `function.name` (or `name`)
    description: str
    parameters: Callable[[Mapping[str, Any]], dict[str, Any]]
    confidence: str  # of the generated name and description: "documented", "medium" or "low"


def _no_parameters(_: Mapping[str, Any]) -> dict[str, Any]:
    return dict(_OBJECT)


def _transfer_parameters(tool: Mapping[str, Any]) -> dict[str, Any]:
    destinations = tool.get("destinations") or []
    numbers = [d.get("number") or d.get("sipUri") for d in destinations if isinstance(d, Mapping)]
    destination: dict[str, Any] = {"type": "string", "description": "The destination to transfer the call to."}
    if [n for n in numbers if n]:
        destination["enum"] = [n for n in numbers if n]
    return {"type": "object", "properties": {"destination": destination}}


def _digits(_: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"digits": {"type": "string"}}}


def _handoff_parameters(tool: Mapping[str, Any]) -> dict[str, Any]:
    names = [d.get("assistantName") or d.get("assistantId") for d in tool.get("destinations") or []
             if isinstance(d, Mapping)]  # fmt: skip
    destination: dict[str, Any] = {"type": "string", "description": "The assistant to hand the call to."}
    if [n for n in names if n]:
        destination["enum"] = [n for n in names if n]
    return {"type": "object", "properties": {"destination": destination}, "required": ["destination"]}


def _string_parameters(*names: str) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    def parameters(_: Mapping[str, Any]) -> dict[str, Any]:
        return {"type": "object", "properties": {n: {"type": "string"} for n in names}, "required": list(names)}

    return parameters


def _api_request_parameters(tool: Mapping[str, Any]) -> dict[str, Any]:
    body = tool.get("body")
    return dict(body) if isinstance(body, Mapping) and body.get("type") == "object" else dict(_OBJECT)


def _code_parameters(tool: Mapping[str, Any]) -> dict[str, Any]:
    parameters = tool.get("parameters")
    return dict(parameters) if isinstance(parameters, Mapping) else dict(_OBJECT)


TOOL_TYPES: dict[str, ToolType] = {
    "endCall": ToolType("endCall", "Use this function to end the call.", _no_parameters, "documented"),
    "transferCall": ToolType("transferCall", "Use this function to transfer the call.", _transfer_parameters,
                             "documented"),
    "dtmf": ToolType("dtmf", "Press keys on the phone keypad.", _digits, "medium"),
    "apiRequest": ToolType("apiRequest", "Make an HTTP request.", _api_request_parameters, "low"),
    "query": ToolType("query", "Search the knowledge base for the answer.", _string_parameters("query"), "low"),
    "sms": ToolType("sms", "Send a text message to the caller.", _string_parameters("message"), "low"),
    "voicemail": ToolType("voicemail", "Leave a voicemail message.", _no_parameters, "low"),
    "handoff": ToolType("handoff", "Hand the call to another assistant.", _handoff_parameters, "low"),
    "mcp": ToolType("mcp", "Call a tool of the MCP server.", _no_parameters, "low"),
    "code": ToolType("code", "Run the tool's code.", _code_parameters, "low"),
    "bash": ToolType("bash", "Run a shell command.", _string_parameters("command"), "low"),
    "computer": ToolType("computer", "Use the computer.", _no_parameters, "low"),
    "textEditor": ToolType("textEditor", "Edit a text file.", _no_parameters, "low"),
    "sipRequest": ToolType("sipRequest", "Send a SIP request on the call.", _no_parameters, "low"),
    # Vapi's integrations: OpenAI names allow no dots, so the guess replaces them with underscores.
    "google.calendar.event.create": ToolType("google_calendar_event_create", "Create an event in Google Calendar.",
                                             _no_parameters, "low"),
    "google.calendar.availability.check": ToolType("google_calendar_availability_check",
                                                   "Check availability in Google Calendar.", _no_parameters, "low"),
    "google.sheets.row.append": ToolType("google_sheets_row_append", "Append a row to a Google Sheet.",
                                         _no_parameters, "low"),
    "slack.message.send": ToolType("slack_message_send", "Send a message on Slack.", _no_parameters, "low"),
    "gohighlevel.calendar.availability.check": ToolType("gohighlevel_calendar_availability_check",
                                                        "Check availability in GoHighLevel.", _no_parameters, "low"),
    "gohighlevel.calendar.event.create": ToolType("gohighlevel_calendar_event_create",
                                                  "Create an event in GoHighLevel.", _no_parameters, "low"),
    "gohighlevel.contact.create": ToolType("gohighlevel_contact_create", "Create a contact in GoHighLevel.",
                                           _no_parameters, "low"),
    "gohighlevel.contact.get": ToolType("gohighlevel_contact_get", "Look up a contact in GoHighLevel.",
                                        _no_parameters, "low"),
}  # fmt: skip
VAPI_TOOL_TYPES = ("function", *TOOL_TYPES)  # every type `POST /tool` and `model.tools` accept


def unknown_type_hint(kind: object) -> str:
    """` Did you mean 'x'?` for a near miss, else the types Vapi has."""
    return did_you_mean(str(kind), VAPI_TOOL_TYPES, cutoff=0.75) or f" Known types: {', '.join(VAPI_TOOL_TYPES)}."


def tool_name(tool: Mapping[str, Any]) -> str | None:
    """The function name a tool is sent as (None for a tool that cannot be sent)."""
    function = tool.get("function")
    if isinstance(function, Mapping) and isinstance(function.get("name"), str):
        return str(function["name"])
    kind = tool.get("type")
    if kind in ("apiRequest", "code") and isinstance(tool.get("name"), str):
        return str(tool["name"])
    known = TOOL_TYPES.get(str(kind))
    return known.name if known is not None else None


def openai_tool(tool: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The OpenAI function tool Vapi sends for `tool`; `UnknownToolType` naming `where` when it cannot be sent."""
    kind = tool.get("type")
    function = tool.get("function")
    if kind == "function":
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise UnknownToolType(f"{where}.function.name: required for a function tool")
        return {"type": "function", "function": _spec(function)}
    known = TOOL_TYPES.get(str(kind))
    if known is None:
        raise UnknownToolType(f"{where}.type: {kind!r} is not a Vapi tool type.{unknown_type_hint(kind)}")
    if isinstance(function, Mapping) and isinstance(function.get("name"), str):
        return {"type": "function", "function": _spec(function)}
    spec: dict[str, Any] = {"name": tool_name(tool), "description": known.description}
    if isinstance(tool.get("description"), str):
        spec["description"] = tool["description"]
    spec["parameters"] = known.parameters(tool)
    return {"type": "function", "function": spec}


def _spec(function: Mapping[str, Any]) -> dict[str, Any]:
    return {k: function[k] for k in ("name", "description", "parameters", "strict") if k in function}
