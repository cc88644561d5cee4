"""Send a Vapi request and read the reply byte by byte, stamping each arrival, within hard bounds.

aiohttp is the transport because its client costs a fraction of httpx's CPU per streamed
response, which keeps the clock honest. Every wait has a deadline, so a hanging or endless
endpoint ends as a recorded `Outcome`, never as a hung harness.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

import aiohttp

from harness.exchange import Exchange, Outcome, ParsedEvent, Recorder

__all__ = ["ReadLimits", "new_session", "read_into"]


@dataclass(frozen=True)
class ReadLimits:
    """Bounds on one exchange; `None` for `first_delta_s` means the request's `timeout_s`.

    A pause after the first delta is not cut (Vapi speaks, then waits): `no_long_stall` judges it, and
    `deadline_s` bounds it. `idle_s`, off by default, cuts any silence of that length.
    """

    first_delta_s: float | None = None
    deadline_s: float = 30.0
    idle_s: float | None = None
    close_grace_s: float = 2.0
    max_body_bytes: int = 4 * 1024 * 1024
    max_event_bytes: int = 1024 * 1024


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
    recorder = Recorder(exchange, limits.max_event_bytes)
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
                    trace_request_ctx={"exchange": exchange},
                )
        except TimeoutError:
            waited_s = min(limits.deadline_s, first_delta_s)
            raise _Stop(Outcome.HEADERS_TIMEOUT, f"No response headers within {waited_s:g} s") from None
        except aiohttp.ClientConnectorError as exc:
            raise _Stop(
                Outcome.CONNECT_ERROR, f"Cannot reach {request.url}: {_reason(exc)}. Is the server running?"
            ) from None
        except (aiohttp.ClientError, ValueError) as exc:
            raise _Stop(Outcome.BROKEN, f"The request to {request.url} failed: {_reason(exc)}") from None
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
                        break
                    events = recorder.feed(data, t)
                    if on_events is not None and events:
                        on_events(events)
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


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "connect call failed" in lowered or "connection refused" in lowered:
        return "connection refused"
    return text
