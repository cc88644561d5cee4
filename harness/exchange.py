"""One recorded request and reply, with the arrival time of every byte chunk and event."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

from harness.protocol import (
    AssembledToolCall,
    Deviation,
    SSEDecoder,
    SSEEvent,
    ToolCallAssembler,
    first_delta,
)
from mock_vapi import VapiRequest

__all__ = ["INVALID_JSON", "Exchange", "Outcome", "ParsedEvent", "Recorder", "js_json", "js_truthy"]


class Outcome(StrEnum):
    """How reading the reply ended."""

    COMPLETE = "complete"
    ABORTED = "aborted"  # we closed it on purpose (a barge-in)
    CONNECT_ERROR = "connect_error"
    HEADERS_TIMEOUT = "headers_timeout"
    FIRST_DELTA_TIMEOUT = "first_delta_timeout"
    IDLE_TIMEOUT = "idle_timeout"
    CLOSE_TIMEOUT = "close_timeout"
    DEADLINE = "deadline"
    TOO_LARGE = "too_large"
    BROKEN = "broken"
    CANCELLED = "cancelled"


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_JS_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # one decoder: building one per call costs


def js_json(text: str | bytes) -> Any:
    """Parse JSON as JavaScript's `JSON.parse` does: `NaN` and `Infinity` are errors, not numbers."""
    if isinstance(text, bytes | bytearray):
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    try:
        value, end = _JS_DECODER.raw_decode(text)
    except ValueError:
        return _JS_DECODER.decode(text)  # leading whitespace, or an error the full path words as json.loads does
    if end != len(text) and text[end:].strip(" \t\n\r"):
        return _JS_DECODER.decode(text)  # raises "Extra data"
    return value


def js_truthy(value: Any) -> bool:
    """JavaScript truthiness: `{}` and `[]` are true, `null`, `false`, `0` and `""` are false."""
    if isinstance(value, dict | list):
        return True
    return bool(value)


class _Invalid:
    def __repr__(self) -> str:
        return "INVALID_JSON"


INVALID_JSON: Any = _Invalid()


_UNREAD: Any = object()  # a payload parsed once for its fields, parsed again only if asked for


class ParsedEvent:
    """An SSE event with its JSON payload (`INVALID_JSON` when it does not parse, None for `[DONE]`).

    What the reader needs (content, tool-call fragments, finish, error and choices) is taken out when the event
    arrives; the JSON tree itself is dropped and parsed again on first access of `payload`. A long stream, or
    200 of them at once in a load run, then keeps one small object per event for the garbage collector to
    scan, not the tree.
    """

    __slots__ = ("_payload", "content", "finishes", "has_choices", "has_error", "json_error", "sse", "tool_calls")

    def __init__(
        self,
        sse: SSEEvent,
        payload: Any,
        content: str = "",
        tool_calls: Sequence[Any] = (),
        json_error: str | None = None,
    ) -> None:
        self.sse = sse
        self._payload = payload
        self.content = content
        self.tool_calls = tool_calls
        self.json_error = json_error
        self.finishes = False  # a choice with a finish_reason
        self.has_error = False  # a truthy top-level `error`
        self.has_choices = False  # `choices` is a list

    def __repr__(self) -> str:
        return f"ParsedEvent({self.sse!r}, content={self.content!r}, json_error={self.json_error!r})"

    @property
    def payload(self) -> Any:
        """The parsed JSON (`INVALID_JSON` when it does not parse, None for `[DONE]`)."""
        if self._payload is _UNREAD:
            self._payload = js_json(self.sse.data)
        return self._payload

    @classmethod
    def parse(cls, sse: SSEEvent) -> ParsedEvent:
        """Parse the event's data as the SDK would."""
        if sse.is_done:
            return cls(sse, None)
        try:
            payload = js_json(sse.data)
        except ValueError as exc:
            return cls(sse, INVALID_JSON, json_error=str(exc))
        if not isinstance(payload, dict):
            return cls(sse, payload)
        event = cls(sse, _UNREAD)
        event.has_error = js_truthy(payload.get("error"))
        choices = payload.get("choices")
        if isinstance(choices, list):
            event.has_choices = True
            for choice in choices:
                if isinstance(choice, dict) and choice.get("finish_reason"):
                    event.finishes = True
                    break
            delta = first_delta(payload)
            if delta is not None:
                content, calls = delta.get("content"), delta.get("tool_calls")
                event.content = content if isinstance(content, str) else ""
                event.tool_calls = calls if isinstance(calls, list) and calls else ()
        return event

    @property
    def spoken(self) -> bool:
        """True when Vapi reads this event (terminated, before `[DONE]`, valid JSON)."""
        return self.sse.terminated and not self.sse.after_done and not self.sse.is_done and self.json_error is None

    @property
    def has_delta(self) -> bool:
        """Non-whitespace content or a tool-call fragment that Vapi would act on."""
        return self.spoken and (bool(self.content.strip()) or bool(self.tool_calls))


@dataclass
class Exchange:
    """A request and everything observed of its reply; times are `time.perf_counter()` seconds."""

    request: VapiRequest
    t_start: float
    outcome: Outcome = Outcome.COMPLETE
    error: str | None = None
    status: int | None = None
    reason: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    t_headers: float | None = None
    t_end: float | None = None
    byte_chunks: list[tuple[float, int]] = field(default_factory=list)
    body: bytes = b""
    body_bytes: int = 0
    events: list[ParsedEvent] = field(default_factory=list)
    deviations: list[Deviation] = field(default_factory=list)
    comments: int = 0
    redirects: list[str] = field(default_factory=list)

    @property
    def streamed(self) -> bool:
        """True when the request asked for a stream."""
        return self.request.stream

    @property
    def reached(self) -> bool:
        """True when the server answered with a status line."""
        return self.status is not None

    def ms(self, t: float | None) -> float | None:
        """Milliseconds from the request's start to `t`."""
        return None if t is None else (t - self.t_start) * 1000.0

    @cached_property
    def spoken_events(self) -> list[ParsedEvent]:
        """Events Vapi reads, in order."""
        return [e for e in self.events if e.spoken]

    @cached_property
    def content_events(self) -> list[ParsedEvent]:
        """Events that carry non-whitespace content or tool-call fragments."""
        return [e for e in self.events if e.has_delta]

    @cached_property
    def tool_call_names(self) -> frozenset[str]:
        """Names of the functions the streamed reply called (from fragments that carry a name)."""
        return frozenset(
            fragment["function"]["name"]
            for event in self.spoken_events
            for fragment in event.tool_calls
            if isinstance(fragment, dict)
            and isinstance(fragment.get("function"), dict)
            and isinstance(fragment["function"].get("name"), str)
        )

    @cached_property
    def tool_calls(self) -> list[AssembledToolCall]:
        """The streamed tool calls, assembled by `index` (malformed fragments are the checks' business)."""
        assembler = ToolCallAssembler()
        for event in self.spoken_events:
            for fragment in event.tool_calls:
                assembler.add(fragment, f"event {event.sse.index}")
        return [assembler.calls[i] for i in sorted(assembler.calls)]

    @property
    def text(self) -> str:
        """The streamed text Vapi would speak."""
        return "".join(e.content for e in self.spoken_events)

    @cached_property
    def body_json(self) -> Any:
        """The body parsed as JSON, or `INVALID_JSON`."""
        try:
            return js_json(self.body)
        except ValueError:
            return INVALID_JSON

    def body_excerpt(self, limit: int = 300) -> str:
        """The start of the body as text, for messages."""
        text = self.body[:limit].decode("utf-8", errors="replace")
        return text + ("…" if len(self.body) > limit else "")


class Recorder:
    """Feeds a reply's bytes into an `Exchange`: the sans-IO half of the stream reader, shared by every transport."""

    def __init__(self, exchange: Exchange, max_event_bytes: int = 1024 * 1024) -> None:
        self.exchange = exchange
        self.finished_at: float | None = None  # when [DONE] or a finish_reason arrived
        self.first_delta_at: float | None = None
        self._decoder = SSEDecoder(max_event_bytes)
        self._body = bytearray()

    def feed(self, data: bytes, t: float) -> list[ParsedEvent]:
        """Record `data`, received at `t`; return the events it completed."""
        exchange = self.exchange
        exchange.byte_chunks.append((t, len(data)))
        exchange.body_bytes += len(data)
        self._body += data
        events = [ParsedEvent.parse(sse) for sse in self._decoder.feed(data, t)]
        for event in events:
            exchange.events.append(event)
            if self.finished_at is None and (event.sse.is_done or event.finishes):
                self.finished_at = t
            if self.first_delta_at is None and event.has_delta:
                self.first_delta_at = t
        return events

    def end_of_body(self, t: float) -> None:
        """The body ended at `t`: an unterminated last event is recorded as such."""
        self.exchange.events.extend(ParsedEvent.parse(sse) for sse in self._decoder.close(t))

    def finish(self, t: float) -> Exchange:
        """Stop recording at `t` (whatever the outcome) and fill in the body and deviations."""
        exchange = self.exchange
        exchange.t_end = t
        exchange.body = bytes(self._body)
        exchange.deviations = self._decoder.deviations
        exchange.comments = self._decoder.comments
        return exchange
