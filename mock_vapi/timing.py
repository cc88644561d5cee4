"""When a recorded reply reached the caller: the voice-latency timings of one exchange (definitions:
docs/metrics.md). The first sentence is Vapi's: the point where it can hand text to the voice.
"""

from __future__ import annotations

import itertools
import re

from mock_vapi.exchange import Exchange, Outcome

__all__ = ["FIRST_SENTENCE_MIN_CHARS", "METRICS", "exchange_metrics", "first_sentence_time", "longest_content_gap"]

FIRST_SENTENCE_MIN_CHARS = 30
_SENTENCE_END = frozenset(".!?")
# Vapi's flush tag: <flush />, <flush> or </flush>, any case and spacing.
_FLUSH = re.compile(r"<\s*flush\s*/?>|<\s*/\s*flush\s*>", re.IGNORECASE)

_CUT_BY_US = frozenset({Outcome.ABORTED, Outcome.CANCELLED})

# name -> unit, in report order
METRICS = {
    "headers_ms": "ms",
    "first_event_ms": "ms",
    "ttft_ms": "ms",
    "first_tool_delta_ms": "ms",
    "first_sentence_ms": "ms",
    "total_ms": "ms",
    "max_gap_ms": "ms",
    "chunk_count": "chunks",
    "content_chars_per_s": "chars/s",
}


def first_sentence_time(exchange: Exchange) -> float | None:
    """When the first speakable sentence was complete: >= 30 chars ending at . ! ? or a flush tag.

    If the reply ends first, its end (Vapi speaks the rest when the stream ends); None without content, and
    None when the reply was cut (a barge-in, a break) before a sentence was complete: no sentence was spoken.
    """
    text = ""
    last_t = None
    for event in exchange.spoken_events:
        if not event.content:
            continue
        start = len(text)
        text += event.content
        last_t = event.sse.t
        if _FLUSH.search(text, max(0, start - 16)):
            return event.sse.t
        for i in range(max(start, FIRST_SENTENCE_MIN_CHARS - 1), len(text)):
            if text[i] in _SENTENCE_END:
                return event.sse.t
    if last_t is None or not text.strip() or exchange.outcome is not Outcome.COMPLETE:
        return None
    return exchange.t_end or last_t


def longest_content_gap(exchange: Exchange) -> tuple[float, int] | None:
    """The longest gap (ms) between consecutive content events, and the index of the event before it."""
    events = exchange.content_events
    if len(events) < 2:
        return None
    gap_s, after = max((b.sse.t - a.sse.t, a.sse.index) for a, b in itertools.pairwise(events))
    return gap_s * 1000.0, after


def exchange_metrics(exchange: Exchange) -> dict[str, float | None]:
    """Every metric of one exchange; None where it does not apply (no content, no tool call...)."""
    spoken = exchange.spoken_events
    content = [e for e in exchange.content_events if e.content.strip()]
    tools = [e for e in exchange.content_events if e.tool_calls]
    chars = sum(len(e.content) for e in spoken)
    rate = None
    if len(content) >= 2 and content[-1].sse.t > content[0].sse.t:
        rate = chars / (content[-1].sse.t - content[0].sse.t)
    gap = longest_content_gap(exchange)
    return {
        "headers_ms": exchange.ms(exchange.t_headers),
        "first_event_ms": exchange.ms(exchange.events[0].sse.t) if exchange.events else None,
        "ttft_ms": exchange.ms(content[0].sse.t) if content else None,
        "first_tool_delta_ms": exchange.ms(tools[0].sse.t) if tools else None,
        "first_sentence_ms": exchange.ms(first_sentence_time(exchange)),
        # A reply the caller cut off has no total: it did not end, we stopped reading it.
        "total_ms": None if exchange.outcome in _CUT_BY_US else exchange.ms(exchange.t_end),
        "max_gap_ms": gap[0] if gap else None,
        "chunk_count": float(len(spoken)) if exchange.streamed else None,
        "content_chars_per_s": rate,
    }
