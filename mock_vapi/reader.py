"""Send a Vapi request and read the reply byte by byte, stamping each arrival, within hard bounds.

aiohttp is the transport because its client costs a fraction of httpx's CPU per streamed
response, which keeps the clock honest. Every wait has a deadline, so a hanging or endless
endpoint ends as a recorded `Outcome`, never as a hung harness.
"""

from __future__ import annotations

import ast
import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from operator import attrgetter
from types import SimpleNamespace
from typing import ClassVar

import aiohttp
from aiohttp import http_exceptions, http_parser

from mock_vapi.exchange import Exchange, Outcome, ParsedEvent, Recorder

__all__ = ["Abort", "ReadLimits", "new_session", "read_into"]

_C_PARSER = http_parser.HttpResponseParser is not http_parser.HttpResponseParserPy  # aiohttp's llhttp parser


@dataclass(frozen=True)
class ReadLimits:
    """Bounds on one exchange; `None` for `first_delta_s` means the request's `timeout_s`.

    A pause after the first delta is not cut (Vapi speaks, then waits): `no_long_stall` judges it, and
    `deadline_s` bounds it. `idle_s`, off by default, cuts any silence of that length.

    `max_body_bytes` and `max_events` end an endless or flooding reply as `Outcome.TOO_LARGE`, and bound what
    one exchange keeps for the reports (a voice turn is a few hundred events). The head of the reply is bounded
    by aiohttp's parser: the status line, each header line (the two limits differ, so that a line too long is
    known as one or the other) and the number of header lines; past them the reply is `Outcome.BAD_RESPONSE`.
    """

    first_delta_s: float | None = None
    deadline_s: float = 30.0
    idle_s: float | None = None
    close_grace_s: float = 2.0
    max_body_bytes: int = 4 * 1024 * 1024
    max_event_bytes: int = 1024 * 1024
    max_events: int = 5_000
    max_redirects: int = 10
    max_status_line_bytes: int = 8190  # aiohttp's default
    max_header_line_bytes: int = 16 * 1024  # what Node, Vapi's client, allows a whole header section
    max_headers: int = 128  # aiohttp's default


async def _request_sent(
    session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestChunkSentParams
) -> None:
    # The clock starts when the request is on the wire, so our own request building is not billed to the server.
    request_ctx = context.trace_request_ctx or {}
    exchange = request_ctx.get("exchange")
    if exchange is not None and not request_ctx.get("sent"):
        exchange.t_start = time.perf_counter()
        request_ctx["sent"] = True  # a redirect's second request does not restart the clock


def new_session(limit: int = 100) -> aiohttp.ClientSession:
    """A client session that leaves timing and retries to us, as Vapi's client sees the server."""
    trace = aiohttp.TraceConfig()
    trace.on_request_chunk_sent.append(_request_sent)
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=limit, ttl_dns_cache=300),
        timeout=aiohttp.ClientTimeout(total=None),
        auto_decompress=True,
        trace_configs=[trace],
    )


@dataclass(frozen=True)
class Abort:
    """When the client closes the reply before it ends, as a caller's barge-in does; `Abort.NEVER` reads it all.

    Each point that is set applies, whichever is reached first, and ends the exchange as `Outcome.ABORTED`:
    `at_first_delta` as soon as the first content or tool-call delta arrives, `after_s` this long after the
    request went out (if the reply is still open), `after_chars` once this many characters of spoken content
    have arrived.
    """

    at_first_delta: bool = False
    after_s: float | None = None
    after_chars: int | None = None

    NEVER: ClassVar[Abort]
    AT_FIRST_DELTA: ClassVar[Abort]

    @property
    def counts_chars(self) -> bool:
        """True when the spoken characters must be counted to know the point."""
        return self.after_chars is not None

    def reached(self, first_delta_seen: bool, spoken_chars: int) -> str | None:
        """Why the client closes the reply now, given what has arrived; None to read on."""
        if self.at_first_delta and first_delta_seen:
            return "Closed by the client mid-stream (barge-in)"
        if self.after_chars is not None and spoken_chars >= self.after_chars:
            return f"Closed by the client after {self.after_chars} characters (barge-in)"
        return None


Abort.NEVER = Abort()
Abort.AT_FIRST_DELTA = Abort(at_first_delta=True)


class _Stop(Exception):
    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


@dataclass(frozen=True)
class _Bound:
    """A limit on the wait for more bytes: when it fires, the outcome, and its message (built only if it fires)."""

    at: float  # on the perf_counter clock
    outcome: Outcome
    message: Callable[[], str]


class _Bounds:
    """The time limits on one exchange, from `ReadLimits`, the request's `timeout_s` and a timed abort."""

    def __init__(self, exchange: Exchange, limits: ReadLimits, abort: Abort, recorder: Recorder, t0: float) -> None:
        self.exchange = exchange
        self.limits = limits
        self.abort = abort
        self.recorder = recorder
        self.t0 = t0
        first_delta_s = limits.first_delta_s
        self.first_delta_s = first_delta_s if first_delta_s is not None else exchange.request.timeout_s
        self.deadline = t0 + limits.deadline_s
        self.first_delta_by = t0 + self.first_delta_s

    @property
    def head_s(self) -> float:
        """How long the response's head may take: to the deadline or the first-delta bound, whichever is sooner."""
        return min(self.deadline, self.first_delta_by) - self.t0

    def no_head(self) -> str:
        return f"No response headers within {min(self.limits.deadline_s, self.first_delta_s):g} s"

    def next(self, now: float) -> _Bound:
        """The earliest limit on the wait for more bytes. It moves only at the first delta, the finish, and with
        `idle_s` at each chunk, so it is recomputed only then: no timer churn."""
        bounds = [_Bound(self.deadline, Outcome.DEADLINE, self._past_deadline)]
        if self.limits.idle_s is not None:
            bounds.append(_Bound(now + self.limits.idle_s, Outcome.IDLE_TIMEOUT, self._idle))
        if self.exchange.request.stream and self.recorder.first_delta_at is None:
            bounds.append(_Bound(self.first_delta_by, Outcome.FIRST_DELTA_TIMEOUT, self._no_first_delta))
        if self.abort.after_s is not None:
            at = self.exchange.t_start + self.abort.after_s  # from the request on the wire
            bounds.append(_Bound(at, Outcome.ABORTED, self._closed_on_time))
        if self.recorder.finished_at is not None:
            at = self.recorder.finished_at + self.limits.close_grace_s
            bounds.append(_Bound(at, Outcome.CLOSE_TIMEOUT, self._not_closed))
        return min(bounds, key=attrgetter("at"))

    def _past_deadline(self) -> str:
        return (
            f"Still open after the {self.limits.deadline_s:g} s deadline ({len(self.exchange.events)} events "
            "so far): the reply never ends, or it is longer than --deadline-s allows"
        )

    def _idle(self) -> str:
        return f"No bytes arrived for {self.limits.idle_s:g} s"

    def _no_first_delta(self) -> str:
        return f"No content or tool-call delta within {self.first_delta_s:g} s"

    def _closed_on_time(self) -> str:
        return f"Closed by the client {(self.abort.after_s or 0.0) * 1000:g} ms after the request (barge-in)"

    def _not_closed(self) -> str:
        return f"The stream finished but the body did not end within {self.limits.close_grace_s:g} s"


class _Reading:
    """One exchange being read: its recorder, its bounds, and the spoken characters an abort counts."""

    def __init__(
        self,
        exchange: Exchange,
        limits: ReadLimits,
        abort: Abort,
        on_events: Callable[[list[ParsedEvent]], None] | None,
    ) -> None:
        self.exchange = exchange
        self.limits = limits
        self.abort = abort
        self.on_events = on_events
        t0 = exchange.t_start = time.perf_counter()
        self.recorder = Recorder(exchange, limits.max_event_bytes, limits.max_events)
        self.bounds = _Bounds(exchange, limits, abort, self.recorder, t0)
        self.spoken_chars = 0
        self._closes_early = abort.at_first_delta or abort.counts_chars  # else no read needs `abort.reached`

    async def send(self, session: aiohttp.ClientSession) -> aiohttp.ClientResponse:
        """Send the request and record the response's head; a failure to get one is a `_Stop`."""
        exchange, limits = self.exchange, self.limits
        request = exchange.request
        try:
            async with asyncio.timeout(self.bounds.head_s):
                response = await session.request(
                    request.method,
                    request.url,
                    data=request.body,
                    headers=list(request.headers),
                    allow_redirects=True,  # fetch in Vapi's client follows redirects too
                    max_redirects=limits.max_redirects,
                    max_line_size=limits.max_status_line_bytes,
                    max_field_size=limits.max_header_line_bytes,
                    max_headers=limits.max_headers,
                    trace_request_ctx={"exchange": exchange},
                )
        except TimeoutError:
            raise _Stop(Outcome.HEADERS_TIMEOUT, self.bounds.no_head()) from None
        except aiohttp.ClientConnectorError as exc:
            raise _Stop(
                Outcome.CONNECT_ERROR, f"Cannot reach {request.url}: {_reason(exc)}. Is the server running?"
            ) from None
        except aiohttp.TooManyRedirects as exc:
            exchange.redirects = [str(r.url) for r in exc.history]
            raise _Stop(Outcome.REDIRECT_LOOP, _redirect_loop(exchange.redirects)) from None
        except aiohttp.ClientResponseError as exc:
            not_http = _not_http(exc, limits)
            if not_http is None:
                raise _Stop(Outcome.BROKEN, f"The request to {request.url} failed: {_reason(exc)}") from None
            raise _Stop(Outcome.BAD_RESPONSE, not_http) from None
        except (aiohttp.ClientError, ValueError) as exc:
            raise _Stop(Outcome.BROKEN, f"The request to {request.url} failed: {_closed_in_head(exc)}") from None
        exchange.t_headers = time.perf_counter()
        exchange.status = response.status
        exchange.reason = response.reason
        exchange.redirects = [str(r.url) for r in response.history]
        exchange.headers = {k.lower(): v for k, v in response.headers.items()}
        return response

    async def read_body(self, response: aiohttp.ClientResponse) -> None:
        """Record the body chunk by chunk until it ends; a bound that fires, or the abort point, is a `_Stop`."""
        content = response.content
        loop = asyncio.get_running_loop()
        bound = self.bounds.next(time.perf_counter())
        state = self._state()
        try:
            async with asyncio.timeout(None) as timer:
                timer.reschedule(loop.time() + max(bound.at - time.perf_counter(), 0))
                while True:
                    try:
                        data = await content.readany()
                    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
                        raise _Stop(Outcome.BROKEN, f"The connection broke mid-body: {_reason(exc)}") from None
                    t = time.perf_counter()
                    if not data:
                        self._end(t)
                        break
                    self._feed(data, t)
                    now_state = self._state()
                    if now_state != state or self.limits.idle_s is not None:  # the bound in force moved
                        state = now_state
                        bound = self.bounds.next(t)
                        timer.reschedule(loop.time() + max(bound.at - time.perf_counter(), 0))
        except TimeoutError:
            raise _Stop(bound.outcome, bound.message()) from None

    def _state(self) -> tuple[bool, bool]:
        """What the bounds depend on besides the clock: no delta yet, not finished yet."""
        return self.recorder.first_delta_at is None, self.recorder.finished_at is None

    def _feed(self, data: bytes, t: float) -> None:
        events = self.recorder.feed(data, t)
        if self.on_events is not None and events:
            self.on_events(events)
        if self.recorder.events_cut:
            raise _Stop(Outcome.TOO_LARGE, self._too_many_events())
        if self.exchange.body_bytes > self.limits.max_body_bytes:
            raise _Stop(Outcome.TOO_LARGE, f"The body exceeded {self.limits.max_body_bytes} bytes")
        if not self._closes_early:
            return
        if self.abort.counts_chars:
            self.spoken_chars += sum(len(e.content) for e in events if e.spoken)
        closed = self.abort.reached(self.recorder.first_delta_at is not None, self.spoken_chars)
        if closed is not None:
            raise _Stop(Outcome.ABORTED, closed)

    def _end(self, t: float) -> None:
        self.recorder.end_of_body(t)
        if self.recorder.events_cut:
            raise _Stop(Outcome.TOO_LARGE, self._too_many_events())

    def _too_many_events(self) -> str:
        return (
            f"The stream exceeded {self.limits.max_events} events ({self.exchange.body_bytes} bytes so far): it "
            "never ends, or it is far longer than a spoken reply"
        )


async def read_into(
    session: aiohttp.ClientSession,
    exchange: Exchange,
    limits: ReadLimits,
    *,
    abort: Abort = Abort.NEVER,
    on_events: Callable[[list[ParsedEvent]], None] | None = None,
) -> Exchange:
    """Send `exchange.request` and record the reply into `exchange`; returns it.

    `abort` says when the client closes the connection mid-reply (a barge-in), which ends the exchange as
    `Outcome.ABORTED`. `on_events` sees each batch of newly parsed events as it arrives (to relay a stream
    while it is read).
    """
    reading = _Reading(exchange, limits, abort, on_events)
    response: aiohttp.ClientResponse | None = None
    try:
        response = await reading.send(session)
        await reading.read_body(response)
    except _Stop as stop:
        exchange.outcome = stop.outcome
        exchange.error = str(stop)
    except asyncio.CancelledError:
        exchange.outcome = Outcome.CANCELLED
        exchange.error = "The run was interrupted"
        raise
    finally:
        reading.recorder.finish(time.perf_counter())
        if response is not None:
            if exchange.outcome is Outcome.COMPLETE:
                response.release()
            else:
                response.close()
    return exchange


def _redirect_loop(hops: list[str]) -> str:
    """The hops up to the first URL seen twice: "Redirect loop: a -> b -> a ... (10 redirects)"."""
    seen: set[str] = set()
    shown: list[str] = []
    for url in hops:
        shown.append(url)
        if url in seen:
            break
        seen.add(url)
    else:  # no URL came back: a chain longer than the limit, not a loop
        return f"Too many redirects: {' -> '.join(_bounded(hops, 6))} ({len(hops)} redirects without a response)"
    more = " ..." if len(shown) < len(hops) else ""
    return f"Redirect loop: {' -> '.join(shown)}{more} ({len(hops)} redirects)"


def _bounded(hops: list[str], keep: int) -> list[str]:
    return hops if len(hops) <= keep else [*hops[: keep - 1], "...", hops[-1]]


def _not_http(exc: aiohttp.ClientResponseError, limits: ReadLimits) -> str | None:
    """What was wrong with a reply aiohttp could not parse as HTTP; None when `exc` is not a parse error.

    aiohttp wraps its parser's error (`BadStatusLine`, `LineTooLong`, `BadHttpMessage`, `InvalidHeader`) in a
    plain `HttpProcessingError`, and that in a `ClientResponseError` with status 400: the cause chain keeps it.
    """
    cause: BaseException | None = exc.__cause__
    parse_error: http_exceptions.HttpProcessingError | None = None
    while cause is not None:
        if isinstance(cause, http_exceptions.HttpProcessingError):
            parse_error = cause
        cause = cause.__cause__
    if parse_error is None:
        return None
    if isinstance(parse_error, http_exceptions.LineTooLong):
        line, limit = parse_error.args[0], parse_error.args[1]
        text = bytes(line).decode("utf-8", "replace") if isinstance(line, bytes | bytearray) else str(line)
        if limit == limits.max_header_line_bytes != limits.max_status_line_bytes:
            return f"The response's header section is too large (a header line over {limit} bytes: {_quote(text)})"
        # The C parser bounds only the status line by the status-line limit; the pure-Python one also bounds
        # any line that has not ended yet by it, and quotes the whole line.
        if limit == limits.max_status_line_bytes and (_C_PARSER or text.startswith("HTTP/")):
            return f"Malformed status line: {_quote(text)} (longer than {limit} bytes)"
        return f"The response's status line or a header line is over {limit} bytes: {_quote(text)}"
    message = parse_error.message if isinstance(parse_error.message, str) else ""
    if message.startswith("Too many headers"):
        return f"The response's header section is too large (over {limits.max_headers} header lines)"
    what, quoted = _parser_message(message)
    if isinstance(parse_error, http_exceptions.BadStatusLine):
        what = what[:1].lower() + what[1:]
        if parse_error.line:  # the pure-Python parser names the line, and its message only repeats it
            what, quoted = "", parse_error.line
        if quoted.startswith(("\x15\x03", "\x16\x03")):
            what = "TLS bytes: the endpoint speaks HTTPS on this port"
        return f"Malformed status line: {_quote(quoted)}" + (f" ({what})" if what else "")
    detail = ": ".join(part for part in (what, _quote(quoted) if quoted else "") if part)
    return "The response is not valid HTTP" + (f": {detail}" if detail else "")


def _parser_message(message: str) -> tuple[str, str]:
    """aiohttp's parser message split into what is wrong and the bytes it quotes; either is "" when it has none.

    The llhttp parser's messages are lines: a heading ("Bad status line:"), what is wrong ("Invalid status code:"),
    the bytes as a Python literal (`b'HTTP/1.1 abc OK'`) and a caret under the bad byte.
    """
    what = ""
    quoted = ""
    for raw in message.splitlines():
        line = raw.strip()
        if line.startswith(("b'", 'b"', "bytearray(b")):
            try:
                value = ast.literal_eval(line.removeprefix("bytearray(").removesuffix(")"))
            except (ValueError, SyntaxError):
                value = line
            quoted = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            break
        if line and line not in ("^", "Bad status line:"):
            what = line.rstrip(":").strip()
    return what, quoted


def _quote(text: str, limit: int = 80) -> str:
    """The first characters of a line received, quoted for a message."""
    text = text.removesuffix("...")  # aiohttp's own ellipsis on a cut line
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _closed_in_head(exc: BaseException) -> str:
    """Why a request got no response; aiohttp reports a close mid-head with the part it had parsed."""
    head = exc.message if isinstance(exc, aiohttp.ServerDisconnectedError) else None
    if head is None or isinstance(head, str):
        return _reason(exc)
    status = f"HTTP/{head.version.major}.{head.version.minor} {head.code} {head.reason}".rstrip()
    lines = len(head.headers)
    return (
        f"the connection closed inside the response's head, after the status line {status!r} and {lines} "
        f"header line{'s' if lines != 1 else ''} (no blank line ended the headers)"
    )


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "connect call failed" in lowered or "connection refused" in lowered:
        return "connection refused"
    return text
