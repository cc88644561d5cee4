"""Server-sent events, decoded the way the OpenAI JS SDK decodes them, and encoded for our servers.

The decoder is sans-IO: feed it bytes with their arrival time, get events back. Every departure
from a clean stream is recorded as a `Deviation` instead of being smoothed over, so checks can
judge it. The SDK's rules (openai-node `src/core/streaming.ts`):

- lines end at LF, CRLF or a lone CR; an empty line dispatches the event;
- `:` starts a comment; `field: value` drops one leading space from the value;
- several `data` lines are joined with LF; only `event` and `data` fields matter;
- an event is dispatched only when it has an `event` or at least one `data` line;
- an event not closed by an empty line before the body ends is dropped;
- a payload starting with `[DONE]` ends the stream; anything after it is ignored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_MAX_EVENT_BYTES",
    "DONE",
    "Deviation",
    "SSEDecoder",
    "SSEEvent",
    "encode_comment",
    "encode_event",
]

DONE = "[DONE]"
DEFAULT_MAX_EVENT_BYTES = 1024 * 1024
_DEVIATIONS_KEPT_PER_KIND = 100  # a hostile stream can repeat one deviation per line; the rest are only counted


@dataclass(slots=True, init=False)
class SSEEvent:
    """One dispatched event with the monotonic time (seconds) of the byte that completed it."""

    index: int
    t: float
    data: str
    event: str | None
    size_bytes: int
    terminated: bool
    after_done: bool
    is_done: bool  # the `[DONE]` sentinel (the SDK matches the prefix)

    def __init__(  # written out: one call per event, where a generated one calls `__post_init__` too
        self,
        index: int,
        t: float,
        data: str,
        event: str | None = None,
        size_bytes: int = 0,
        terminated: bool = True,
        after_done: bool = False,
    ) -> None:
        self.index = index
        self.t = t
        self.data = data
        self.event = event
        self.size_bytes = size_bytes
        self.terminated = terminated
        self.after_done = after_done
        self.is_done = data.startswith(DONE)


@dataclass(slots=True)
class Deviation:
    """Something in the byte stream a strict reader would not expect."""

    kind: str
    detail: str
    t: float
    event_index: int | None = None


@dataclass(slots=True)
class _Pending:
    data: list[str] = field(default_factory=list)
    event: str | None = None
    size_bytes: int = 0
    oversize: bool = False


class SSEDecoder:
    """Incremental, OpenAI-SDK-faithful SSE decoder that records deviations.

    Deviation kinds: `invalid_utf8`, `byte_order_mark`, `event_field`, `oversize_event`, `data_after_done`,
    `second_done`, `unterminated_event`. A leading BOM is skipped (as the SDK v5's TextDecoder does), and an
    oversize event is kept whole: the caller bounds the body. `deviations` keeps the first 100 of each kind;
    `deviation_counts` counts them all.
    """

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self.max_event_bytes = max_event_bytes
        self.deviations: list[Deviation] = []
        self.deviation_counts: dict[str, int] = {}
        self.comments = 0
        self.done_seen = False
        self._buffer = b""
        self._skip_lf = False
        self._pending = _Pending()
        self._count = 0
        self._utf8_reported = False
        self._started = False

    def feed(self, chunk: bytes, t: float) -> list[SSEEvent]:
        """Decode `chunk`, received at monotonic time `t`; return the events it completed."""
        if not chunk:
            return []
        if not self._started:
            self._started = True
            if chunk.startswith(b"\xef\xbb\xbf"):
                chunk = chunk[3:]
                self._deviate(
                    Deviation(
                        "byte_order_mark", "The stream starts with a UTF-8 BOM; SDK v4 on Node loses the first event", t
                    )
                )
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._skip_lf = False
        if not self._buffer and not self._pending.data and not self._pending.event:
            fast = self._whole_data_events(chunk, t)
            if fast is not None:
                return fast
        buffer = self._buffer + chunk if self._buffer else chunk
        # bytes.splitlines ends lines at exactly SSE's LF, CRLF and lone CR; the last piece may be unfinished.
        lines = buffer.splitlines(keepends=True)
        rest = b""
        if lines and not lines[-1].endswith((b"\n", b"\r")):
            rest = lines.pop()
        elif lines and lines[-1].endswith(b"\r"):
            self._skip_lf = True  # a CR at the very end: its LF, if any, arrives with the next chunk
        events: list[SSEEvent] = []
        for raw in lines:
            event = self._line(raw.rstrip(b"\r\n"), t)  # one line end per piece
            if event is not None:
                events.append(event)
        self._buffer = rest
        if len(rest) > self.max_event_bytes:
            self._oversize(t)
        return events

    def close(self, t: float) -> list[SSEEvent]:
        """Signal the end of the body; return an unterminated final event, marked as such."""
        events: list[SSEEvent] = []
        if self._buffer:
            line, self._buffer = self._buffer, b""
            event = self._line(line, t)
            if event is not None:
                events.append(event)
        pending = self._pending
        if pending.data or pending.event:
            event = self._dispatch(t, terminated=False)
            self._deviate(
                Deviation(
                    "unterminated_event",
                    f"The body ended inside an event (no blank line after it); the OpenAI SDK drops it: "
                    f"{_excerpt(event.data)}",
                    t,
                    event.index,
                )
            )
            events.append(event)
        return events

    def _line(self, raw: bytes, t: float) -> SSEEvent | None:
        if not raw:
            if not self._pending.data and not self._pending.event:
                self._pending = _Pending()
                return None
            return self._dispatch(t, terminated=True)
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw.decode("utf-8", errors="replace")
            if not self._utf8_reported:
                self._utf8_reported = True
                self._deviate(
                    Deviation("invalid_utf8", f"Invalid UTF-8 at byte {exc.start} of line {_excerpt(line)}", t)
                )
        if line[0] == ":":
            self.comments += 1
            return None
        name, sep, value = line.partition(":")
        if sep and value[:1] == " ":
            value = value[1:]
        pending = self._pending
        if name == "data":
            pending.size_bytes += len(raw) + 1
            if pending.size_bytes > self.max_event_bytes:
                self._oversize(t)
            pending.data.append(value)
        elif name == "event":
            pending.event = value
            self._deviate(
                Deviation(
                    "event_field", f"`event: {_clip(value)}` line; the OpenAI SDK v5 treats named events apart", t
                )
            )
        return None

    def _deviate(self, deviation: Deviation) -> None:
        count = self.deviation_counts.get(deviation.kind, 0)
        self.deviation_counts[deviation.kind] = count + 1
        if count < _DEVIATIONS_KEPT_PER_KIND:
            self.deviations.append(deviation)

    def _oversize(self, t: float) -> None:
        # Recorded once per event and kept whole: the SDK has no size limit, the reader bounds the body.
        if not self._pending.oversize:
            self._pending.oversize = True
            self._deviate(Deviation("oversize_event", f"An event exceeded {self.max_event_bytes} bytes", t))

    def _whole_data_events(self, chunk: bytes, t: float) -> list[SSEEvent] | None:
        """The common chunk, whole `data: ...` events each closed by a blank line, decoded in one pass.

        None when the chunk is anything else (CR line ends, comments, fields, several data lines, a partial
        event, invalid UTF-8): the line-by-line path takes it, with the same result. The chunk is checked and
        decoded whole, not line by line: the blocks between blank lines hold no other line end when the chunk
        has exactly two LFs per block, and each starts with `data:` when every blank line is followed by one.
        """
        if not chunk.endswith(b"\n\n") or not chunk.startswith(b"data:") or b"\r" in chunk:
            return None
        if len(chunk) > self.max_event_bytes:
            return None
        end = len(chunk) - 2
        if chunk.find(b"\n", 0, end) < 0:  # one event, the most common read of a paced stream
            try:
                text = chunk[6 if chunk[5:6] == b" " else 5 : end].decode("utf-8")
            except UnicodeDecodeError:
                return None
            return [self._emit(text, None, end + 1, t, terminated=True)]
        blocks = chunk.count(b"\n\ndata:") + 1
        if chunk.count(b"\n") != 2 * blocks:
            return None
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError:
            return None
        ascii_only = len(text) == len(chunk)  # then a block's length in characters is its length in bytes
        events = []
        for block in text[:-2].split("\n\n"):
            value = block[6:] if block[5:6] == " " else block[5:]
            size = len(block) + 1 if ascii_only else len(block.encode("utf-8")) + 1
            if self.done_seen or value.startswith(DONE):
                events.append(self._emit(value, None, size, t, terminated=True))
            else:  # the common event, made here rather than by `_emit`: one call fewer per event
                events.append(SSEEvent(self._count, t, value, None, size))
                self._count += 1
        return events

    def _dispatch(self, t: float, *, terminated: bool) -> SSEEvent:
        pending = self._pending
        self._pending = _Pending()
        return self._emit("\n".join(pending.data), pending.event, pending.size_bytes, t, terminated=terminated)

    def _emit(self, data: str, name: str | None, size_bytes: int, t: float, *, terminated: bool) -> SSEEvent:
        event = SSEEvent(
            index=self._count,
            t=t,
            data=data,
            event=name,
            size_bytes=size_bytes,
            terminated=terminated,
            after_done=self.done_seen,
        )
        self._count += 1
        if event.is_done:
            if self.done_seen:
                self._deviate(Deviation("second_done", "A second [DONE] arrived", t, event.index))
            self.done_seen = True
        elif event.after_done:
            self._deviate(Deviation("data_after_done", f"Data after [DONE]: {_excerpt(event.data)}", t, event.index))
        return event


def _excerpt(text: str, limit: int = 120) -> str:
    return repr(_clip(text, limit))


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def encode_event(payload: Any, event: str | None = None) -> bytes:
    """Frame one SSE event: a JSON payload (or a raw string such as `[DONE]`) then a blank line."""
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    head = f"event: {event}\n" if event is not None else ""
    return f"{head}data: {data}\n\n".encode()


def encode_comment(text: str = "") -> bytes:
    """Frame an SSE comment line, as used for keep-alives."""
    return f": {text}\n\n".encode() if text else b":\n\n"
