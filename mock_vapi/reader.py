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
from types import SimpleNamespace

import aiohttp
from aiohttp import http_exceptions, http_parser

from mock_vapi.exchange import Exchange, Outcome, ParsedEvent, Recorder

__all__ = ["ReadLimits", "new_session", "read_into"]

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


class _Stop(Exception):
    def __init__(self, outcome: Outcome, message: str) -> None:
        super().__init__(message)
        self.outcome = outcome


async def read_into(
    session: aiohttp.ClientSession,
    exchange: Exchange,
    limits: ReadLimits,
    *,
    abort_after_content: bool = False,
    abort_after_s: float | None = None,
    abort_after_chars: int | None = None,
    on_events: Callable[[list[ParsedEvent]], None] | None = None,
) -> Exchange:
    """Send `exchange.request` and record the reply into `exchange`; returns it.

    A barge-in closes the connection mid-reply and ends the exchange as `Outcome.ABORTED`:

    Args:
        abort_after_content: as soon as the first content or tool-call delta arrives.
        abort_after_s: this long after the request went out, if the reply is still open.
        abort_after_chars: once this many characters of content have arrived.

    `on_events` sees each batch of newly parsed events as it arrives (to relay a stream while it is read).
    """
    request = exchange.request
    first_delta_s = limits.first_delta_s if limits.first_delta_s is not None else request.timeout_s
    t0 = exchange.t_start = time.perf_counter()
    deadline = t0 + limits.deadline_s
    first_delta_by = t0 + first_delta_s
    recorder = Recorder(exchange, limits.max_event_bytes, limits.max_events)
    response: aiohttp.ClientResponse | None = None
    spoken_chars = 0
    try:
        try:
            async with asyncio.timeout(min(deadline, first_delta_by) - t0):
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
            waited_s = min(limits.deadline_s, first_delta_s)
            raise _Stop(Outcome.HEADERS_TIMEOUT, f"No response headers within {waited_s:g} s") from None
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
        content = response.content
        loop = asyncio.get_running_loop()

        def next_bound(now: float) -> tuple[float, Outcome, Callable[[], str]]:
            # The earliest limit on the wait for more bytes: when, the outcome, its message (built only if it
            # fires). Recomputed only when it can move (first delta, finish, each chunk with idle_s): no timer churn.
            bounds: list[tuple[float, Outcome, Callable[[], str]]] = [
                (
                    deadline,
                    Outcome.DEADLINE,
                    lambda: (
                        f"Still open after the {limits.deadline_s:g} s deadline ({len(exchange.events)} events "
                        "so far): the reply never ends, or it is longer than --deadline-s allows"
                    ),
                )
            ]
            if limits.idle_s is not None:
                bounds.append(
                    (now + limits.idle_s, Outcome.IDLE_TIMEOUT, lambda: f"No bytes arrived for {limits.idle_s:g} s")
                )
            if request.stream and recorder.first_delta_at is None:
                bounds.append(
                    (
                        first_delta_by,
                        Outcome.FIRST_DELTA_TIMEOUT,
                        lambda: f"No content or tool-call delta within {first_delta_s:g} s",
                    )
                )
            if abort_after_s is not None:
                bounds.append(
                    (
                        exchange.t_start + abort_after_s,
                        Outcome.ABORTED,
                        lambda: f"Closed by the client {abort_after_s * 1000:g} ms after the request (barge-in)",
                    )
                )
            if recorder.finished_at is not None:
                bounds.append(
                    (
                        recorder.finished_at + limits.close_grace_s,
                        Outcome.CLOSE_TIMEOUT,
                        lambda: f"The stream finished but the body did not end within {limits.close_grace_s:g} s",
                    )
                )
            return min(bounds, key=lambda b: b[0])

        def too_many_events() -> str:
            return (
                f"The stream exceeded {limits.max_events} events ({exchange.body_bytes} bytes so far): it never "
                "ends, or it is far longer than a spoken reply"
            )

        bound = next_bound(time.perf_counter())
        state = (recorder.first_delta_at is None, recorder.finished_at is None)
        try:
            async with asyncio.timeout(None) as timer:
                timer.reschedule(loop.time() + max(bound[0] - time.perf_counter(), 0))
                while True:
                    try:
                        data = await content.readany()
                    except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
                        raise _Stop(Outcome.BROKEN, f"The connection broke mid-body: {_reason(exc)}") from None
                    t = time.perf_counter()
                    if not data:
                        recorder.end_of_body(t)
                        if recorder.events_cut:
                            raise _Stop(Outcome.TOO_LARGE, too_many_events())
                        break
                    events = recorder.feed(data, t)
                    if on_events is not None and events:
                        on_events(events)
                    if recorder.events_cut:
                        raise _Stop(Outcome.TOO_LARGE, too_many_events())
                    if exchange.body_bytes > limits.max_body_bytes:
                        raise _Stop(Outcome.TOO_LARGE, f"The body exceeded {limits.max_body_bytes} bytes")
                    if abort_after_content and recorder.first_delta_at is not None:
                        raise _Stop(Outcome.ABORTED, "Closed by the client mid-stream (barge-in)")
                    if abort_after_chars is not None:
                        spoken_chars += sum(len(e.content) for e in events if e.spoken)
                        if spoken_chars >= abort_after_chars:
                            raise _Stop(
                                Outcome.ABORTED, f"Closed by the client after {abort_after_chars} characters (barge-in)"
                            )
                    now_state = (recorder.first_delta_at is None, recorder.finished_at is None)
                    if now_state != state or limits.idle_s is not None:  # the bound in force moved
                        state = now_state
                        bound = next_bound(t)
                        timer.reschedule(loop.time() + max(bound[0] - time.perf_counter(), 0))
        except TimeoutError:
            raise _Stop(bound[1], bound[2]()) from None
    except _Stop as stop:
        exchange.outcome = stop.outcome
        exchange.error = str(stop)
    except asyncio.CancelledError:
        exchange.outcome = Outcome.CANCELLED
        exchange.error = "The run was interrupted"
        raise
    finally:
        recorder.finish(time.perf_counter())
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
