"""Checks on the JSON shape of chunks and bodies."""

from __future__ import annotations

import json
from typing import Any

from harness.checks.base import CheckContext, CheckFailed, Expect, Severity, check, not_applicable, outcome_words
from harness.protocol import FINISH_REASONS, schema_errors
from mock_vapi.exchange import INVALID_JSON, Exchange, Outcome, ParsedEvent, js_truthy

TURN = (Expect.TURN,)


def _chunks(exchange: Exchange) -> list[ParsedEvent]:
    """The chunks Vapi reads; a check over chunks has nothing to judge without one."""
    if not exchange.spoken_events:
        not_applicable("no chunk that Vapi reads")
    return exchange.spoken_events


def _quote(payload: Any, limit: int = 200) -> str:
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


@check(Severity.ERROR, on=TURN, streamed=True)
def chunks_have_choices(ctx: CheckContext, exchange: Exchange) -> None:
    """Every chunk has an array `choices`; otherwise Vapi fails with `chunk.choices is not iterable`."""
    for event in _chunks(exchange):
        payload = event.payload
        if isinstance(payload, dict) and js_truthy(payload.get("error")):
            continue  # judged by chunk_has_no_error
        if not isinstance(payload, dict) or not isinstance(payload.get("choices"), list):
            raise CheckFailed(f"Chunk {event.sse.index} has no `choices` array", _quote(payload), event=event.sse.index)


@check(Severity.ERROR, on=TURN, streamed=True)
def chunk_has_no_error(ctx: CheckContext, exchange: Exchange) -> None:
    """No chunk carries a top-level `error`; the SDK raises on it and the turn fails."""
    for event in _chunks(exchange):
        if isinstance(event.payload, dict) and js_truthy(event.payload.get("error")):
            raise CheckFailed(f"Chunk {event.sse.index} is an error", _quote(event.payload), event=event.sse.index)


@check(Severity.WARNING, on=TURN, streamed=True)
def finish_reason_is_valid(ctx: CheckContext, exchange: Exchange) -> None:
    """The stream gives a `finish_reason` from OpenAI's set."""
    if exchange.outcome is not Outcome.COMPLETE:  # a cut-off stream is judged by the transport checks
        not_applicable(f"the stream was not read to its end ({outcome_words(exchange.outcome)})")
    reasons = []
    for event in _chunks(exchange):
        for choice in event.payload.get("choices") or [] if isinstance(event.payload, dict) else []:
            if isinstance(choice, dict) and choice.get("finish_reason") is not None:
                reasons.append(choice["finish_reason"])
    if not reasons:
        if not exchange.content_events:
            not_applicable("no content and no tool call")
        raise CheckFailed("No finish_reason in the stream")
    bad = [r for r in reasons if r not in FINISH_REASONS]
    if bad:
        raise CheckFailed(f"Invalid finish_reason {bad[0]!r}", f"Expected one of {', '.join(FINISH_REASONS)}")
    has_tools = any(e.tool_calls for e in exchange.content_events)
    if "tool_calls" in reasons and not has_tools:
        raise CheckFailed("finish_reason 'tool_calls' but the stream has no tool call")
    if has_tools and "stop" in reasons and "tool_calls" not in reasons:
        raise CheckFailed(
            "The stream has tool calls but finish_reason 'stop'", "OpenAI ends a tool call with 'tool_calls'"
        )


@check(Severity.WARNING, on=TURN, streamed=True)
def first_delta_has_role(ctx: CheckContext, exchange: Exchange) -> None:
    """The first chunk's delta sets `role: assistant`, as OpenAI's streams do."""
    for event in _chunks(exchange):
        choices = event.payload.get("choices") if isinstance(event.payload, dict) else None
        if not choices:
            continue
        delta = choices[0].get("delta") if isinstance(choices[0], dict) else None
        if not isinstance(delta, dict) or delta.get("role") != "assistant":
            raise CheckFailed("The first delta has no role 'assistant'", _quote(event.payload))
        return
    not_applicable("no chunk with choices")


@check(Severity.WARNING, on=TURN, streamed=True)
def chunk_fields_present(ctx: CheckContext, exchange: Exchange) -> None:
    """Every chunk has `id`, `model` and `object: chat.completion.chunk`."""
    for event in _chunks(exchange):
        payload = event.payload
        if not isinstance(payload, dict) or js_truthy(payload.get("error")):
            continue
        missing = [k for k in ("id", "model", "object") if k not in payload]
        if missing:
            raise CheckFailed(
                f"Chunk {event.sse.index} lacks {', '.join(missing)}", _quote(payload), event=event.sse.index
            )
        if payload["object"] != "chat.completion.chunk":
            raise CheckFailed(
                f"Chunk {event.sse.index} has object {payload['object']!r}", _quote(payload), event=event.sse.index
            )


@check(Severity.WARNING, on=TURN, streamed=True)
def chunk_fields_consistent(ctx: CheckContext, exchange: Exchange) -> None:
    """All chunks of one completion share `id` and `model`."""
    for key in ("id", "model"):
        values = {
            event.payload[key]
            for event in _chunks(exchange)
            if isinstance(event.payload, dict) and isinstance(event.payload.get(key), str)
        }
        if len(values) > 1:
            raise CheckFailed(f"Chunks disagree on `{key}`", f"Values: {sorted(values)[:5]}")


@check(Severity.WARNING, on=TURN, streamed=True)
def chunks_match_openai_schema(ctx: CheckContext, exchange: Exchange) -> None:
    """Every chunk validates against the `openai` package's `ChatCompletionChunk` schema."""
    valid: set[str] = set()  # texts of chunks found valid; schema_errors also validates each shape of chunk once
    for event in _chunks(exchange):
        if event.sse.data in valid:
            continue
        payload = event.payload
        if isinstance(payload, dict) and js_truthy(payload.get("error")):
            continue
        errors = schema_errors("chunk", payload)
        if errors:
            raise CheckFailed(
                f"Chunk {event.sse.index} does not match ChatCompletionChunk", "; ".join(errors), event=event.sse.index
            )
        valid.add(event.sse.data)


@check(Severity.WARNING, on=TURN, streamed=True)
def usage_when_requested(ctx: CheckContext, exchange: Exchange) -> None:
    """With `stream_options.include_usage`, a final chunk carries `usage`."""
    options = (exchange.request.json_body or {}).get("stream_options") or {}
    if not options.get("include_usage"):
        not_applicable("the request did not ask for usage")
    if exchange.outcome is not Outcome.COMPLETE:
        not_applicable(f"the stream was not read to its end ({outcome_words(exchange.outcome)})")
    if not any(isinstance(e.payload, dict) and isinstance(e.payload.get("usage"), dict) for e in _chunks(exchange)):
        raise CheckFailed("No usage chunk although stream_options.include_usage was set")


@check(Severity.ERROR, on=TURN, streamed=False)
def message_in_reply(ctx: CheckContext, exchange: Exchange) -> None:
    """A non-streamed reply has `choices[0].message` with content or tool calls."""
    body = exchange.body_json
    if body is INVALID_JSON:
        raise CheckFailed("The reply is not JSON", exchange.body_excerpt())
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise CheckFailed("The reply has no choices[0]", exchange.body_excerpt())
    message = choices[0].get("message")
    if not isinstance(message, dict):
        raise CheckFailed("The reply has no choices[0].message", exchange.body_excerpt())
    if not isinstance(message.get("content"), str) and not message.get("tool_calls"):
        raise CheckFailed("choices[0].message has neither content nor tool_calls", exchange.body_excerpt())


@check(Severity.WARNING, on=TURN, streamed=False)
def completion_matches_openai_schema(ctx: CheckContext, exchange: Exchange) -> None:
    """A non-streamed reply validates against the `openai` package's `ChatCompletion` schema."""
    body = exchange.body_json
    if body is INVALID_JSON:
        not_applicable("the reply is not JSON (message_in_reply judges that)")
    errors = schema_errors("completion", body)
    if errors:
        raise CheckFailed("The reply does not match ChatCompletion", "; ".join(errors))
