"""One recorded request and reply, with the arrival time of every byte chunk and event."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from typing import Any

import msgspec

from harness.protocol import (
    TOO_DEEP,
    AssembledToolCall,
    Deviation,
    SSEDecoder,
    SSEEvent,
    ToolCallAssembler,
    first_delta,
    tool_call_name,
)
from mock_vapi import VapiRequest

__all__ = ["INVALID_JSON", "Exchange", "Outcome", "ParsedEvent", "Recorder", "js_json", "js_truthy"]


class Outcome(StrEnum):
    """How reading the reply ended."""

    COMPLETE = "complete"
    ABORTED = "aborted"  # we closed it on purpose (a barge-in)
    CONNECT_ERROR = "connect_error"
    REDIRECT_LOOP = "redirect_loop"  # redirects that never reach a response
    BAD_RESPONSE = "bad_response"  # a reply that is not valid HTTP (status line, header section)
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


def js_json(text: str | bytes | bytearray) -> Any:
    """Parse JSON as JavaScript's `JSON.parse` does: `NaN` and `Infinity` are errors, not numbers. Nesting too
    deep for Python's parser is a `ValueError` (`TOO_DEEP`) like any other JSON it cannot read."""
    if isinstance(text, bytes | bytearray):
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    try:
        try:
            value, end = _JS_DECODER.raw_decode(text)
        except ValueError:
            return _JS_DECODER.decode(text)  # leading whitespace, or an error the full path words as json.loads
        if end != len(text) and text[end:].strip(" \t\n\r"):
            return _JS_DECODER.decode(text)  # raises "Extra data"
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
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


class _RecentPayloads:
    """The JSON trees of the payloads read last, by their text, bounded in count and in bytes of text.

    Checks read the payload of every event, one check after another. Keeping each tree on its event for the life
    of the exchange would keep every tree of every exchange of a run; this keeps the most recent, enough for all
    the checks of one exchange of ordinary length. Events with the same text share one tree (never modify it);
    a text dropped from here is parsed again when read again.
    """

    def __init__(self, max_texts: int, max_bytes: int) -> None:
        self.max_texts = max_texts
        self.max_bytes = max_bytes
        self._trees: OrderedDict[str, Any] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()  # servers in threads read exchanges too

    def parse(self, text: str) -> Any:
        """`js_json(text)`, from here when it was read lately (ValueError if it is not JSON)."""
        with self._lock:
            tree = self._trees.get(text, _UNREAD)
        if tree is not _UNREAD:
            return tree
        tree = js_json(text)
        with self._lock:
            if text not in self._trees:
                self._trees[text] = tree
                self._bytes += len(text)
                while len(self._trees) > self.max_texts or self._bytes > self.max_bytes:
                    dropped, _ = self._trees.popitem(last=False)
                    self._bytes -= len(dropped)
        return tree


_RECENT_PAYLOADS = _RecentPayloads(max_texts=5_000, max_bytes=4 * 1024 * 1024)  # ReadLimits.max_events
_IN_PAYLOAD: Any = object()  # a field of a large event, taken from its payload when read
_KEPT_DELTA_BYTES = 4096  # an event larger than this keeps no copy of its content and tool calls


def _delta_fields(payload: Any) -> tuple[str, Sequence[Any]]:
    """The first choice's delta `content` ("" when not a string) and `tool_calls` (() when not a non-empty list)."""
    delta = first_delta(payload)
    if delta is None:
        return "", ()
    content, calls = delta.get("content"), delta.get("tool_calls")
    return (content if isinstance(content, str) else ""), (calls if isinstance(calls, list) and calls else ())


class _Delta(msgspec.Struct, gc=False):
    content: str | None = None
    tool_calls: list[Any] | None = None


class _Choice(msgspec.Struct, gc=False):
    delta: _Delta | None = None
    finish_reason: Any = None


class _Chunk(msgspec.Struct, gc=False):
    """The fields of a chunk the reader takes out; any other member is skipped unbuilt, and a chunk whose
    `choices` is not a list of objects, or whose first delta's fields have other types, does not fit."""

    choices: list[_Choice] | None = None  # absent or null alike: not a list
    error: Any = None


_CHUNK_DECODER = msgspec.json.Decoder(_Chunk)
# An event with more brackets than this takes the strict path (a chunk has about 6): how deep the stdlib parses
# before its RecursionError depends on the caller's stack, so only the strict path judges deep nesting.
_TYPED_MAX_BRACKETS = 500


class ParsedEvent:
    """An SSE event with its JSON payload (`INVALID_JSON` when it does not parse, None for `[DONE]`).

    What the reader needs (content, tool-call fragments, finish, error and choices) is taken out when the event
    arrives; the JSON tree itself is dropped and parsed again on access of `payload`, and kept only while it is
    among the most recently read (`_RecentPayloads`). A long stream, or 200 of them at once in a load run, or a
    run of many exchanges, then keeps one small object per event for the garbage collector to scan, not the tree.
    An event over 4 KiB keeps no copy of its content and tool calls either: they are read from its payload.
    """

    __slots__ = (
        "_content", "_payload", "_tool_calls", "finishes", "has_choices", "has_error", "json_error", "spoken", "sse",
    )  # fmt: skip

    def __init__(
        self,
        sse: SSEEvent,
        payload: Any,
        content: str = "",
        tool_calls: Sequence[Any] = (),
        json_error: str | None = None,
        *,
        finishes: bool = False,
        has_error: bool = False,
        has_choices: bool = False,
    ) -> None:
        self.sse = sse
        self._payload = payload
        self._content: str = content
        self._tool_calls: Sequence[Any] = tool_calls
        self.json_error = json_error
        self.finishes = finishes  # a choice with a finish_reason
        self.has_error = has_error  # a truthy top-level `error`
        self.has_choices = has_choices  # `choices` is a list
        # True when Vapi reads this event (terminated, before `[DONE]`, valid JSON); every check asks, so it is
        # known once.
        self.spoken: bool = sse.terminated and not sse.after_done and not sse.is_done and json_error is None

    def __repr__(self) -> str:
        return f"ParsedEvent({self.sse!r}, content={self.content!r}, json_error={self.json_error!r})"

    @property
    def payload(self) -> Any:
        """The parsed JSON (`INVALID_JSON` when it does not parse, None for `[DONE]`)."""
        if self._payload is _UNREAD:
            return _RECENT_PAYLOADS.parse(self.sse.data)  # parsed before, so it is JSON
        return self._payload

    @property
    def content(self) -> str:
        """The first choice's delta `content`; "" when it has none."""
        if self._content is _IN_PAYLOAD:
            return _delta_fields(self.payload)[0]
        return self._content

    @property
    def tool_calls(self) -> Sequence[Any]:
        """The first choice's delta `tool_calls` fragments; empty when it has none."""
        if self._tool_calls is _IN_PAYLOAD:
            return _delta_fields(self.payload)[1]
        return self._tool_calls

    def again(self, sse: SSEEvent) -> ParsedEvent:
        """The event for `sse`, whose data equals this event's: the same fields, without parsing it again."""
        sse.data = self.sse.data  # one string for every copy of a repeated event
        return ParsedEvent(
            sse, self._payload, self._content, self._tool_calls, self.json_error,
            finishes=self.finishes, has_error=self.has_error, has_choices=self.has_choices,
        )  # fmt: skip

    @classmethod
    def parse(cls, sse: SSEEvent) -> ParsedEvent:
        """Parse the event's data as the SDK would: the fields the reader needs, without the whole JSON tree.

        A typed decode (`_Chunk`) reads only `choices[].delta.content`, `tool_calls`, `finish_reason` and the
        top-level `error`. An event it does not fit (another shape, or JSON it refuses: NaN, lone surrogate
        escapes, numbers out of a double's range, invalid syntax) takes `parse_strict`, so every field, and
        the error message of an event that is not JSON, is what the strict path gives.
        """
        if sse.is_done:
            return cls(sse, None)
        data = sse.data
        if len(data) > _TYPED_MAX_BRACKETS and data.count("[") + data.count("{") > _TYPED_MAX_BRACKETS:
            return cls.parse_strict(sse)
        try:
            typed = _CHUNK_DECODER.decode(data)
        except (msgspec.DecodeError, ValueError):  # ValueError: a str that is not UTF-8 (a lone surrogate)
            return cls.parse_strict(sse)
        has_error = typed.error is not None and js_truthy(typed.error)
        choices = typed.choices
        if choices is None:
            return cls(sse, _UNREAD, has_error=has_error)
        finishes = False
        for choice in choices:
            if choice.finish_reason:
                finishes = True
                break
        content: Any = ""
        calls: Any = ()
        if len(data) > _KEPT_DELTA_BYTES:  # not kept twice: the payload has them, and its text is kept
            content = calls = _IN_PAYLOAD
        elif choices and (delta := choices[0].delta) is not None:
            content = delta.content if delta.content is not None else ""
            calls = delta.tool_calls or ()
        return cls(sse, _UNREAD, content, calls, finishes=finishes, has_error=has_error, has_choices=True)

    @classmethod
    def parse_strict(cls, sse: SSEEvent) -> ParsedEvent:
        """Parse the event's data as the SDK would, from the whole JSON tree (`js_json`): the reference path."""
        if sse.is_done:
            return cls(sse, None)
        try:
            payload = js_json(sse.data)
        except ValueError as exc:
            return cls(sse, INVALID_JSON, json_error=str(exc))
        event = cls(sse, _UNREAD)  # the tree is parsed again if asked for, so no event keeps a large one
        if not isinstance(payload, dict):
            return event
        event.has_error = js_truthy(payload.get("error"))
        choices = payload.get("choices")
        if isinstance(choices, list):
            event.has_choices = True
            for choice in choices:
                if isinstance(choice, dict) and choice.get("finish_reason"):
                    event.finishes = True
                    break
            if len(sse.data) > _KEPT_DELTA_BYTES:  # not kept twice: the payload has them, and its text is kept
                event._content = event._tool_calls = _IN_PAYLOAD
            else:
                event._content, event._tool_calls = _delta_fields(payload)
        return event

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
    byte_chunks: list[tuple[float, int]] = field(default_factory=list)  # (t, size) of the first 10,000 chunks
    body: bytes = b""  # for an SSE reply over 64 KiB, its first 64 KiB (`body_cut`); `body_bytes` counts all
    body_bytes: int = 0
    events: list[ParsedEvent] = field(default_factory=list)
    deviations: list[Deviation] = field(default_factory=list)  # the first 100 of each kind
    comments: int = 0
    redirects: list[str] = field(default_factory=list)
    deviation_counts: dict[str, int] = field(default_factory=dict)  # every deviation, by kind
    body_cut: bool = False
    _body_json: Any = field(default=_UNREAD, init=False, repr=False, compare=False)

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
            name
            for event in self.spoken_events
            for fragment in event.tool_calls
            if (name := tool_call_name(fragment)) is not None
        )

    @cached_property
    def tool_calls(self) -> list[AssembledToolCall]:
        """The streamed tool calls, assembled by `index` (malformed fragments are the checks' business)."""
        assembler = ToolCallAssembler()
        for event in self.spoken_events:
            for fragment in event.tool_calls:
                assembler.add(fragment, f"event {event.sse.index}")
        return [assembler.calls[i] for i in sorted(assembler.calls)]

    @cached_property
    def reply_tool_calls(self) -> list[AssembledToolCall]:
        """The reply's tool calls, streamed (assembled) or not (`choices[0].message.tool_calls`)."""
        if self.streamed:
            return self.tool_calls
        message = self.reply_message
        calls = message.get("tool_calls") if message is not None else None
        return [
            AssembledToolCall(
                index=i,
                id=c.get("id"),
                type="function",
                name=tool_call_name(c),
                arguments=str(c["function"].get("arguments") or ""),
            )
            for i, c in enumerate(calls if isinstance(calls, list) else [])
            if isinstance(c, dict) and isinstance(c.get("function"), dict)
        ]

    @cached_property
    def reply_text(self) -> str:
        """What the reply says, streamed (the spoken text) or not (`choices[0].message.content`)."""
        if self.streamed:
            return self.text
        content = self.reply_message.get("content") if self.reply_message is not None else None
        return content if isinstance(content, str) else ""

    @cached_property
    def reply_message(self) -> dict[str, Any] | None:
        """A non-streamed reply's `choices[0].message`, when it is an object."""
        body = self.body_json
        choices = body.get("choices") if isinstance(body, dict) else None
        first = choices[0] if isinstance(choices, list) and choices else None
        message = first.get("message") if isinstance(first, dict) else None
        return message if isinstance(message, dict) else None

    @property
    def text(self) -> str:
        """The streamed text Vapi would speak."""
        return "".join(e.content for e in self.spoken_events)

    @property
    def body_json(self) -> Any:
        """The body parsed as JSON, or `INVALID_JSON`; a tree of a body over 64 KiB is parsed again, not kept."""
        value = self._body_json
        if value is not _UNREAD:
            return value
        if self.body_cut:  # the recorder cut it only after finding that the whole body is not JSON
            value = INVALID_JSON
        else:
            try:
                value = js_json(self.body)
            except ValueError:
                value = INVALID_JSON
        if value is INVALID_JSON or len(self.body) <= _KEPT_BODY_BYTES:
            self._body_json = value
        return value

    def body_excerpt(self, limit: int = 300) -> str:
        """The start of the body as text, for messages."""
        text = self.body[:limit].decode("utf-8", errors="replace")
        return text + ("…" if len(self.body) > limit or self.body_cut else "")


_KEPT_BODY_BYTES = 64 * 1024  # what an exchange keeps of an SSE body, and the largest body whose tree it keeps
_KEPT_BYTE_CHUNKS = 10_000  # arrival stamps kept per exchange (the report's timeline shows the first 2,000 items)


class Recorder:
    """Feeds a reply's bytes into an `Exchange`: the sans-IO half of the stream reader, shared by every transport."""

    def __init__(
        self,
        exchange: Exchange,
        max_event_bytes: int = 1024 * 1024,
        max_events: int | None = None,
        parse: Callable[[SSEEvent], ParsedEvent] = ParsedEvent.parse,
    ) -> None:
        """`parse` reads each event; `ParsedEvent.parse_strict` reads every event's whole tree (the reference)."""
        self.exchange = exchange
        self.max_events = max_events
        self.parse = parse
        self.finished_at: float | None = None  # when [DONE] or a finish_reason arrived
        self.first_delta_at: float | None = None
        self.events_cut = False  # events beyond `max_events` arrived and were not recorded
        self._decoder = SSEDecoder(max_event_bytes)
        self._body = bytearray()

    def feed(self, data: bytes, t: float) -> list[ParsedEvent]:
        """Record `data`, received at `t`; return the events it completed (none beyond `max_events`)."""
        exchange = self.exchange
        chunks = exchange.byte_chunks
        if len(chunks) < _KEPT_BYTE_CHUNKS:
            chunks.append((t, len(data)))
        exchange.body_bytes += len(data)
        self._body += data
        sses = self._decoder.feed(data, t)
        if not sses:
            return []
        events = self._parse(sses)
        exchange.events += events
        if self.finished_at is None or self.first_delta_at is None:
            self._note(events, t)
        return events

    def end_of_body(self, t: float) -> None:
        """The body ended at `t`: an unterminated last event is recorded as such."""
        self.exchange.events.extend(self._parse(self._decoder.close(t)))

    def _note(self, events: list[ParsedEvent], t: float) -> None:
        """Stamp the finish and the first delta, if these events bring them."""
        for event in events:
            if self.finished_at is None and (event.sse.is_done or event.finishes):
                self.finished_at = t
            if self.first_delta_at is None and event.has_delta:
                self.first_delta_at = t

    def _parse(self, sses: list[SSEEvent]) -> list[ParsedEvent]:
        """The events of one read, parsed in one pass."""
        recorded = self.exchange.events
        if self.max_events is not None and len(recorded) + len(sses) > self.max_events:
            sses = sses[: max(self.max_events - len(recorded), 0)]
            self.events_cut = True
        events = []
        previous = recorded[-1] if recorded else None
        parse = self.parse
        for sse in sses:
            # A stream that repeats one chunk (an endless or stuck one) keeps one string and parses it once.
            event = previous.again(sse) if previous is not None and sse.data == previous.sse.data else parse(sse)
            events.append(event)
            previous = event
        return events

    def finish(self, t: float) -> Exchange:
        """Stop recording at `t` (whatever the outcome) and fill in the body and deviations.

        An SSE body over 64 KiB is kept only in part: its events hold what the checks read, and the reports quote
        only its start. A body that parses as JSON is kept whole whatever else it holds.
        """
        exchange = self.exchange
        exchange.t_end = t
        body = self._body
        if len(body) > _KEPT_BODY_BYTES and exchange.events and not _is_json(body):
            exchange.body, exchange.body_cut = bytes(body[:_KEPT_BODY_BYTES]), True
        else:
            exchange.body = bytes(body)
        exchange.deviations = self._decoder.deviations
        exchange.deviation_counts = self._decoder.deviation_counts
        exchange.comments = self._decoder.comments
        return exchange


def _is_json(body: bytes | bytearray) -> bool:
    try:
        js_json(body)
    except ValueError:
        return False
    return True
