"""Checks on SSE framing and timing, judged the way the OpenAI JS SDK inside Vapi reads a stream."""

from __future__ import annotations

from harness.checks.base import CheckContext, CheckFailed, Expect, Severity, check, not_applicable, outcome_words
from harness.metrics import first_sentence_time, longest_content_gap
from mock_vapi.exchange import INVALID_JSON, Exchange, Outcome

TURN = (Expect.TURN,)


def _deviations(exchange: Exchange, kind: str) -> list[str]:
    return [d.detail for d in exchange.deviations if d.kind == kind]


def _read_to_end(exchange: Exchange) -> None:
    """Not judged unless the body was read to its end (a cut stream proves nothing about how it ends)."""
    if exchange.outcome is not Outcome.COMPLETE:
        not_applicable(f"the stream was not read to its end ({outcome_words(exchange.outcome)})")


@check(Severity.ERROR, on=TURN, streamed=True)
def stream_is_sse(ctx: CheckContext, exchange: Exchange) -> None:
    """A `stream: true` request gets SSE events; a JSON body parses as zero events and the caller hears silence."""
    if exchange.events:
        return
    _read_to_end(exchange)
    if exchange.body_json is not INVALID_JSON:
        raise CheckFailed(
            "JSON body answering a stream request",
            f"Vapi sends stream: true and reads SSE only; this reply has no `data:` events: {exchange.body_excerpt()}\n"
            "Vapi's client sends `Accept: application/json` even when streaming: decide on the body's `stream` "
            "field, not on the Accept header.",
        )
    raise CheckFailed("No SSE events in the reply", f"Body: {exchange.body_excerpt() or '(empty)'}")


@check(Severity.ERROR, on=TURN, streamed=True)
def sse_data_is_json(ctx: CheckContext, exchange: Exchange) -> None:
    """Every `data:` payload is JSON or `[DONE]`; anything else makes the SDK throw mid-turn."""
    if not exchange.events:
        not_applicable("no SSE events")
    for event in exchange.events:
        if event.payload is INVALID_JSON and event.sse.terminated and not event.sse.after_done:
            raise CheckFailed(
                f"Event {event.sse.index} is not JSON",
                f"{event.json_error}; data: {event.sse.data[:200]!r}",
                event=event.sse.index,
            )


@check(Severity.ERROR, on=TURN, streamed=True)
def last_event_terminated(ctx: CheckContext, exchange: Exchange) -> None:
    """Every event ends with a blank line; the SDK drops an unterminated last event, so its text is never spoken."""
    _read_to_end(exchange)
    for event in exchange.events:
        if not event.sse.terminated and (event.content.strip() or event.tool_calls):
            raise CheckFailed(
                "The last event was never terminated and its content is lost",
                f"data: {event.sse.data[:200]!r}",
                event=event.sse.index,
            )


@check(Severity.WARNING, on=TURN, streamed=True)
def events_are_terminated(ctx: CheckContext, exchange: Exchange) -> None:
    """The body does not end inside an event (even one without content)."""
    _read_to_end(exchange)
    details = _deviations(exchange, "unterminated_event")
    if details:
        raise CheckFailed("The body ended inside an event", details[0])


@check(Severity.ERROR, on=TURN, streamed=True)
def first_delta_within_timeout(ctx: CheckContext, exchange: Exchange) -> None:
    """Content or a tool call starts within `timeoutSeconds`, else `pipeline-error-custom-llm-llm-failed`."""
    timeout_s = exchange.request.timeout_s
    if exchange.outcome is Outcome.FIRST_DELTA_TIMEOUT:
        raise CheckFailed(f"No content or tool call within {timeout_s:g} s", exchange.error or "")
    _read_to_end(exchange)  # a cut or broken reply is judged by the transport checks
    if not exchange.events:
        not_applicable("no SSE events (stream_is_sse judges that)")
    if not exchange.content_events:
        texts = [e.sse.data[:80] for e in exchange.events[:5]]
        raise CheckFailed("The reply has no content and no tool call: the caller hears silence", f"Events: {texts}")
    first_ms = exchange.ms(exchange.content_events[0].sse.t) or 0.0
    if first_ms > timeout_s * 1000:
        raise CheckFailed(f"First content after {first_ms:.0f} ms, over the {timeout_s:g} s timeout")


@check(Severity.WARNING, on=TURN, streamed=True)
def stream_ends_with_done(ctx: CheckContext, exchange: Exchange) -> None:
    """A streamed completion ends with `data: [DONE]`."""
    _read_to_end(exchange)
    if not exchange.events:
        not_applicable("no SSE events (stream_is_sse judges that)")
    if not any(e.sse.is_done for e in exchange.events):
        raise CheckFailed("Stream did not end with [DONE]", f"Last event: {exchange.events[-1].sse.data[:120]!r}")


@check(Severity.WARNING, on=TURN, streamed=True)
def no_event_field(ctx: CheckContext, exchange: Exchange) -> None:
    """No `event:` lines: the SDK v5 hands named events back without `choices`, and `event: error` throws."""
    details = _deviations(exchange, "event_field")
    if details:
        count = exchange.deviation_counts.get("event_field", len(details))  # details keep the first 100 only
        raise CheckFailed(f"{count} `event:` line(s) in the stream", details[0])


@check(Severity.ERROR, on=TURN, streamed=True)
def no_error_event(ctx: CheckContext, exchange: Exchange) -> None:
    """No `event: error`: the SDK v5 raises on it."""
    for event in exchange.events:
        if event.sse.event == "error" and not event.sse.after_done:
            raise CheckFailed("`event: error` in the stream", f"data: {event.sse.data[:200]!r}", event=event.sse.index)


@check(Severity.WARNING, on=TURN, streamed=True)
def nothing_after_done(ctx: CheckContext, exchange: Exchange) -> None:
    """Nothing follows `[DONE]`; the SDK ignores it, so that text is never spoken."""
    details = _deviations(exchange, "data_after_done") + _deviations(exchange, "second_done")
    if details:
        raise CheckFailed("Events after [DONE]", "; ".join(details[:3]))


@check(Severity.WARNING, on=TURN, streamed=True)
def stream_is_utf8(ctx: CheckContext, exchange: Exchange) -> None:
    """The stream is valid UTF-8; invalid bytes are replaced with U+FFFD and the spoken text is garbled."""
    details = _deviations(exchange, "invalid_utf8")
    if details:
        raise CheckFailed("Invalid UTF-8 in the stream", details[0])


@check(Severity.WARNING, on=TURN, streamed=True)
def no_byte_order_mark(ctx: CheckContext, exchange: Exchange) -> None:
    """The stream does not start with a UTF-8 BOM: the SDK v4 on Node reads it into the first field name."""
    details = _deviations(exchange, "byte_order_mark")
    if details:
        raise CheckFailed("Byte order mark at the start of the stream", details[0])


@check(Severity.WARNING, on=TURN, streamed=True)
def events_within_size_limit(ctx: CheckContext, exchange: Exchange) -> None:
    """No single event exceeds the reader's event-size bound."""
    details = _deviations(exchange, "oversize_event")
    if details:
        raise CheckFailed("Oversize event", details[0])


@check(Severity.WARNING, on=TURN, streamed=True)
def stream_is_incremental(ctx: CheckContext, exchange: Exchange) -> None:
    """Text arrives as it is generated, not buffered and sent at once (fake streaming delays speech)."""
    events = [e for e in exchange.content_events if e.content.strip()]
    if len(events) < 3:
        not_applicable(f"{len(events)} content events, too few to tell streaming from buffering")
    spread_ms = (events[-1].sse.t - events[0].sse.t) * 1000
    if spread_ms <= ctx.thresholds.buffered_window_ms:
        first_ms = exchange.ms(events[0].sse.t) or 0.0
        raise CheckFailed(
            "The reply arrived all at once (buffered)",
            f"{len(events)} content events arrived within {spread_ms:.1f} ms, {first_ms:.0f} ms after the request",
        )


@check(Severity.WARNING, on=TURN, streamed=True)
def no_long_stall(ctx: CheckContext, exchange: Exchange) -> None:
    """No long gap between content events; the caller hears the pause."""
    gap = longest_content_gap(exchange)
    if gap is None:
        not_applicable("fewer than two content events")
    if gap[0] > ctx.thresholds.max_stall_ms:
        gap_ms, after_index = gap
        raise CheckFailed(
            f"Stalled {gap_ms:.0f} ms mid-reply",
            f"Gap after event {after_index}, over the {ctx.thresholds.max_stall_ms:.0f} ms budget",
        )


@check(Severity.WARNING, on=TURN, streamed=True)
def first_sentence_within_budget(ctx: CheckContext, exchange: Exchange) -> None:
    """The first speakable sentence arrives within budget; Vapi's TTS waits for it."""
    t = first_sentence_time(exchange)
    if t is None:
        not_applicable("no speakable sentence in the reply")
    ms = exchange.ms(t) or 0.0
    if ms > ctx.thresholds.first_sentence_ms:
        raise CheckFailed(
            f"First sentence after {ms:.0f} ms", f"Over the {ctx.thresholds.first_sentence_ms:.0f} ms budget"
        )
