"""Checks on tool calls: streamed fragments must assemble into calls Vapi can run."""

from __future__ import annotations

import json

from harness.checks.base import CheckContext, CheckFailed, Expect, Severity, check, not_applicable
from harness.protocol import ToolCallAssembler, answered_tool_calls, loads, repeated_tool_call, tool_call_name
from mock_vapi.exchange import INVALID_JSON, Exchange


@check(Severity.ERROR, on=(Expect.TURN,), streamed=True)
def tool_calls_assemble(ctx: CheckContext, exchange: Exchange) -> None:
    """Tool-call fragments carry `index`, the first has `id` and `function.name`, and arguments concatenate to JSON."""
    assembler = ToolCallAssembler()
    for event in exchange.spoken_events:
        for fragment in event.tool_calls:
            assembler.add(fragment, f"event {event.sse.index}")
    if not assembler.calls and not assembler.problems:
        not_applicable("no tool call in the reply")
    problems = assembler.finish()
    if problems:
        raise CheckFailed("Tool-call fragments do not assemble", "\n".join(problems[:5]))


@check(Severity.WARNING, on=(Expect.TURN,), streamed=True)
def tool_calls_name_offered(ctx: CheckContext, exchange: Exchange) -> None:
    """Tool calls name a tool the request offered; Vapi runs only tools attached to the assistant."""
    body = exchange.request.json_body or {}
    offered = {
        t["function"].get("name")
        for t in body.get("tools") or []
        if isinstance(t, dict) and isinstance(t.get("function"), dict)
    }
    names = exchange.tool_call_names
    if not names:
        not_applicable("no tool call in the reply")
    unknown = sorted(names - offered)
    if unknown:
        choices = ", ".join(sorted(n for n in offered if n)) or "none"
        raise CheckFailed(f"Tool call to {unknown[0]!r}, which the request did not offer", f"Offered: {choices}")


@check(Severity.ERROR, on=(Expect.TURN,), streamed=False)
def tool_calls_are_valid(ctx: CheckContext, exchange: Exchange) -> None:
    """A non-streamed tool call has `id`, `function.name` and JSON `arguments` as a string."""
    body = exchange.body_json
    choices = body.get("choices") if body is not INVALID_JSON and isinstance(body, dict) else None
    message = (
        choices[0].get("message") if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
    )
    calls = message.get("tool_calls") if isinstance(message, dict) else None
    if not calls:
        not_applicable("no tool call in the reply")
    for i, call in enumerate(calls if isinstance(calls, list) else [calls]):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not call.get("id") or not tool_call_name(call):
            raise CheckFailed(f"Tool call {i} lacks id or function.name", json.dumps(call)[:200])
        arguments = function.get("arguments")
        if not isinstance(arguments, str):
            raise CheckFailed(f"Tool call {i} arguments are not a string", json.dumps(call)[:200])
        try:
            loads(arguments or "{}")
        except ValueError as exc:
            raise CheckFailed(f"Tool call {i} arguments are not JSON", f"{exc}: {arguments[:200]!r}") from None


@check(Severity.WARNING, on=(Expect.TURN,))
def no_repeated_tool_call(ctx: CheckContext, exchange: Exchange) -> None:
    """A reply to a tool result does not call that tool again with the same arguments: an endless tool loop."""
    messages = (exchange.request.json_body or {}).get("messages")
    if not answered_tool_calls(messages):
        not_applicable("the request carries no tool result")
    repeated = repeated_tool_call(messages, exchange.reply_tool_calls)
    if repeated is not None:
        raise CheckFailed(
            f"The reply calls {repeated.name} again with the same arguments after its result",
            f"Arguments {repeated.arguments[:200]!r}. Vapi runs the tool again and asks again, so the caller never "
            "hears the answer: answer from the tool result in the history.",
        )
