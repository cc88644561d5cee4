"""Vapi's rules for a custom-llm request body: what Vapi could send, and every way a body breaks that.

The rules follow the protocol notes (docs/vapi-protocol.md) and what `mock_vapi` builds:

- the OpenAI fields: `model`, `messages`, `stream`, `temperature` (0 to 2), `max_tokens` (50 to 10000),
  `tools` as OpenAI function tools with distinct names;
- the history: the system prompt first; then user and assistant turns; an assistant message with `tool_calls`
  answered at once by one `tool` message per call id; the request asks for the model's turn, so it never ends
  with an assistant message (`[system]` alone is the start of a model-generated first message);
- the extras `metadataSendMode` sends: none at all when it is `off`; else `call`, with `phoneNumber` and
  `customer` on a phone call and neither on a web call, and `metadata` as an object (`variable`) or spread
  over the top level (`destructured`);
- text Vapi could send: strings without lone surrogates.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from harness.protocol import CHAT_PARAMS

__all__ = ["CALL_TYPES", "rule_problems"]

CALL_TYPES = ("inboundPhoneCall", "outboundPhoneCall", "webCall", "vapi.websocketCall")
_PHONE_CALLS = ("inboundPhoneCall", "outboundPhoneCall")
_VAPI_OBJECTS = ("call", "phoneNumber", "customer")
_ROLES = ("system", "user", "assistant", "tool")
_FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def rule_problems(body: Mapping[str, Any]) -> list[str]:
    """Every way `body` (a request body as sent) breaks Vapi's rules; [] when Vapi could have sent it."""
    if not isinstance(body, Mapping):
        return [f"body: must be a JSON object, got {type(body).__name__}"]
    problems = [*_field_problems(body), *_extras_problems(body), *_text_problems(body, "body")]
    messages = body.get("messages")
    if isinstance(messages, list) and messages:
        problems += _history_problems(messages)
    return problems


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _field_problems(body: Mapping[str, Any]) -> Iterator[str]:
    if not isinstance(body.get("model"), str) or not body["model"]:
        yield "model: required, a non-empty string"
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        yield "messages: required, a non-empty list"
    if not isinstance(body.get("stream"), bool):
        yield "stream: required, true or false"
    temperature: Any = body.get("temperature")
    if not _is_number(temperature) or not 0 <= temperature <= 2:
        yield f"temperature: must be a number from 0 to 2, got {temperature!r}"
    max_tokens: Any = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or not 50 <= max_tokens <= 10000:
        yield f"max_tokens: must be an integer from 50 to 10000, got {max_tokens!r}"
    if "max_completion_tokens" in body:
        yield "max_completion_tokens: Vapi sends max_tokens, never max_completion_tokens"
    if "tools" in body:
        yield from _tools_problems(body["tools"])


def _tools_problems(tools: Any) -> Iterator[str]:
    if not isinstance(tools, list) or not tools:
        yield "tools: when present, a non-empty list (Vapi leaves it out when there are no tools)"
        return
    names: list[str] = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if not isinstance(tool, Mapping) or tool.get("type") != "function" or not isinstance(function, Mapping):
            yield f"tools[{i}]: must be {{type: 'function', function: {{...}}}}"
            continue
        name = function.get("name")
        if not isinstance(name, str) or not _FUNCTION_NAME.fullmatch(name):
            yield f"tools[{i}].function.name: must be 1 to 64 letters, digits, '_' or '-', got {name!r}"
        elif name in names:
            yield f"tools[{i}].function.name: {name!r} is offered twice"
        else:
            names.append(name)
        parameters = function.get("parameters")
        if parameters is not None and (not isinstance(parameters, Mapping) or parameters.get("type") != "object"):
            yield f"tools[{i}].function.parameters: must be a JSON Schema of type 'object'"


def _extras_problems(body: Mapping[str, Any]) -> Iterator[str]:
    """The Vapi extras of the three metadataSendModes."""
    call = body.get("call")
    if call is None:  # metadataSendMode off: only the OpenAI fields
        for key in ("phoneNumber", "customer", "metadata"):
            if key in body:
                yield f"{key}: sent without `call` (metadataSendMode off sends no Vapi extras)"
        unknown = sorted(set(body) - CHAT_PARAMS - set(_VAPI_OBJECTS))
        if unknown:
            yield f"{', '.join(unknown)}: not OpenAI fields (metadataSendMode off sends only those)"
        return
    if not isinstance(call, Mapping):
        yield "call: must be an object"
        return
    if not isinstance(call.get("id"), str) or not call["id"]:
        yield "call.id: required, a non-empty string"
    kind = call.get("type")
    if kind not in CALL_TYPES:
        yield f"call.type: must be one of {', '.join(CALL_TYPES)}, got {kind!r}"
    elif kind in _PHONE_CALLS:
        for key in ("phoneNumber", "customer"):
            if not isinstance(body.get(key), Mapping):
                yield f"{key}: a phone call ({kind}) carries it as an object"
        customer, on_call = body.get("customer"), call.get("customer")
        if (
            isinstance(customer, Mapping)
            and isinstance(on_call, Mapping)
            and customer.get("number") != on_call.get("number")
        ):
            yield "customer.number: differs from call.customer.number"
    else:
        for key in ("phoneNumber", "customer"):
            if key in body:
                yield f"{key}: a {kind} has none"
    if "metadata" in body and not isinstance(body["metadata"], Mapping):
        yield "metadata: must be an object (metadataSendMode variable)"


def _history_problems(messages: Sequence[Any]) -> Iterator[str]:
    """The order of the history: system first, each tool call answered at once, the model's turn last."""
    shapes = list(_message_problems(messages))
    yield from shapes
    if shapes:
        return  # the order of malformed messages means nothing
    if messages[0]["role"] != "system":
        yield f"messages[0].role: the system prompt comes first, got {messages[0]['role']!r}"
    pending: list[str] = []  # call ids of the last assistant tool_calls message not yet answered
    previous: Mapping[str, Any] | None = None
    for i, message in enumerate(messages):
        role = message["role"]
        if role == "tool":
            call_id = message["tool_call_id"]
            if call_id not in pending:
                yield f"messages[{i}].tool_call_id: {call_id!r} answers no open tool call"
            else:
                pending.remove(call_id)
        elif pending:
            yield f"messages[{i}].role: {role!r} before every tool call was answered ({', '.join(pending)})"
            pending = []
        if role == "assistant":
            if previous is not None and previous["role"] == "assistant" and not previous.get("tool_calls"):
                yield f"messages[{i}].role: two assistant messages in a row (Vapi merges what was said)"
            pending = [str(call["id"]) for call in message.get("tool_calls") or []]
        previous = message
    if pending:
        yield f"messages[{len(messages) - 1}]: ends with unanswered tool calls ({', '.join(pending)})"
    elif len(messages) > 1 and messages[-1]["role"] == "assistant":
        yield f"messages[{len(messages) - 1}].role: ends with the assistant, so the model has nothing to answer"
    first = next((m for m in messages if m["role"] != "system"), None)
    if first is not None and first["role"] == "tool":
        yield "messages: a tool message before any user or assistant message"
    ids = [str(c["id"]) for m in messages for c in m.get("tool_calls") or []]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        yield f"messages: tool call ids used twice ({', '.join(repeated)})"


def _message_problems(messages: Sequence[Any]) -> Iterator[str]:
    """Each message on its own: a known role and the fields that role carries."""
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, Mapping):
            yield f"{where}: must be an object"
            continue
        role = message.get("role")
        content = message.get("content")
        if role not in _ROLES:
            yield f"{where}.role: must be one of {', '.join(_ROLES)}, got {role!r}"
        elif role in ("system", "user") and (not isinstance(content, str) or not content.strip()):
            yield f"{where}.content: a {role} message says something (a non-empty string)"
        elif role == "tool":
            if not isinstance(message.get("tool_call_id"), str):
                yield f"{where}.tool_call_id: required, a string"
            if not isinstance(content, str):
                yield f"{where}.content: a tool result is a string"
        elif role == "assistant":
            yield from _assistant_problems(message, where)


def _assistant_problems(message: Mapping[str, Any], where: str) -> Iterator[str]:
    content = message.get("content")
    calls = message.get("tool_calls")
    if calls is None:
        if not isinstance(content, str) or not content.strip():
            yield f"{where}.content: an assistant message without tool calls holds what was said"
        return
    if content is not None and not isinstance(content, str):
        yield f"{where}.content: null, '' or what was said with the tool calls"
    if not isinstance(calls, list) or not calls:
        yield f"{where}.tool_calls: when present, a non-empty list"
        return
    for j, call in enumerate(calls):
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(call, Mapping) or not isinstance(call.get("id"), str) or call.get("type") != "function":
            yield f"{where}.tool_calls[{j}]: must be {{id, type: 'function', function}}"
        elif not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            yield f"{where}.tool_calls[{j}].function.name: required, a string"
        elif not isinstance(function.get("arguments"), str):
            yield f"{where}.tool_calls[{j}].function.arguments: a JSON string"


def _text_problems(value: Any, where: str) -> Iterator[str]:
    """Strings Vapi could not send: lone surrogates (not encodable as UTF-8)."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            yield f"{where}: a lone surrogate (not UTF-8)"
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _text_problems(key, f"{where} key")
            yield from _text_problems(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _text_problems(item, f"{where}[{i}]")
