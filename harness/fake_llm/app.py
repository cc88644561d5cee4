"""A deterministic OpenAI-compatible server: the built-in endpoint and every test's upstream double."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import itertools
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from harness.fake_llm.script import FakeLLMConfig, Fault, Frame, plan_completion, plan_reply, set_off
from harness.protocol import CHAT_PARAMS, BodyError, Redactor, error_envelope, parse_json_body

__all__ = ["RecordedRequest", "create_app", "sleep_precisely"]

# OpenAI accepts `metadata` only with `store: true`; a strict fine-tuned endpoint rejects Vapi's.
_VAPI_FIELDS = frozenset({"call", "phoneNumber", "customer", "metadata"})


@dataclass
class RecordedRequest:
    """What the fake LLM received; the Authorization value is never kept.

    The body is kept as bytes and parsed when read: a thousand parsed bodies would be a large live set for the
    garbage collector, whose pauses would then show up as late chunks under load.
    """

    t: float
    path: str
    headers: dict[str, str]
    raw: bytes = b""
    outcome: str = "pending"
    t_closed: float | None = None
    authorized: bool | None = None

    @property
    def body(self) -> Any:
        """The JSON body, or None when it is not JSON (`parse_json_body`'s rules, as the server read it)."""
        try:
            return parse_json_body(self.raw) if self.raw else None
        except BodyError:
            return None


@dataclass
class _State:
    config: FakeLLMConfig
    recorded: deque[RecordedRequest] = field(default_factory=lambda: deque(maxlen=_RECORDED_LIMIT))
    ids: itertools.count[int] = field(default_factory=itertools.count)
    crashed: bool = False  # fault crash-after-abort: a client closed a stream early


def _error(state: _State, status: int, message: str, type_: str = "invalid_request_error") -> Response:
    if Fault.NO_ENVELOPE in state.config.faults:
        return PlainTextResponse(message, status_code=status)
    return JSONResponse(error_envelope(message, type_), status_code=status)


async def _completions(request: Request) -> Response:
    state: _State = request.app.state.fake
    config = state.config
    headers = Redactor().headers(request.headers.items())
    record = RecordedRequest(time.perf_counter(), request.url.path, headers)
    state.recorded.append(record)
    if Fault.HANG in config.faults:
        await _wait_for_disconnect(request, limit_s=600)
        record.outcome = "client_disconnected"
        return Response(status_code=499)
    if config.api_key is not None and Fault.IGNORE_AUTH not in config.faults:
        given = request.headers.get("authorization", "")
        record.authorized = hmac.compare_digest(given.encode(), f"Bearer {config.api_key}".encode())
        if not record.authorized:
            record.outcome = "rejected"
            return _error(
                state,
                400 if Fault.AUTH_400 in config.faults else 401,
                "Incorrect API key provided.",
                "authentication_error",
            )
    raw = record.raw = await request.body()
    try:
        body = parse_json_body(raw)
    except BodyError:
        record.outcome = "rejected"
        if Fault.MALFORMED_500 in config.faults:
            return PlainTextResponse("Internal Server Error", status_code=500)
        return _error(state, 400, "We could not parse the JSON body of your request.")
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        record.outcome = "rejected"
        return _error(state, 400, "'messages' is a required property")
    if Fault.STATUS_500 in config.faults or state.crashed or Fault.ASTRAL_500 in set_off(config.faults, body):
        record.outcome = "rejected"
        return _error(state, 500, "The server had an error while processing your request.", "server_error")
    if Fault.REJECT_EXTRA_FIELDS in config.faults:
        unknown = sorted((set(body) - CHAT_PARAMS) | (set(body) & _VAPI_FIELDS))
        if unknown:
            record.outcome = "rejected"
            return _error(state, 400, f"Unrecognized request argument supplied: {', '.join(unknown)}")
    completion_id = f"chatcmpl-fake-{next(state.ids)}"
    if not body.get("stream") or Fault.JSON_BODY in config.faults:
        await asyncio.sleep(config.ttft_ms / 1000 - (time.perf_counter() - record.t))
        record.outcome = "completed"
        return JSONResponse(plan_completion(config, body, completion_id))
    frames = plan_reply(config, body, completion_id)
    media_type = "application/json" if Fault.WRONG_CONTENT_TYPE in config.faults else "text/event-stream"
    return StreamingResponse(
        _play(
            frames,
            record,
            never_close=Fault.NEVER_CLOSE in config.faults,
            precise=config.precise_ttft,
            on_abort=(lambda: setattr(state, "crashed", True)) if Fault.CRASH_AFTER_ABORT in config.faults else None,
        ),
        media_type=media_type,
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _wait_for_disconnect(request: Request, limit_s: float) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        for _ in range(int(limit_s / 0.05)):
            if await request.is_disconnected():
                return
            await asyncio.sleep(0.05)


_SPIN_S = 0.002
_RECORDED_LIMIT = 1000  # requests kept for /_fake/requests; a long load test must not grow without bound


class _DropConnection(Exception):
    """Raised inside a stream to break the connection mid-body."""


def _segments(frames: list[Frame], elapsed_s: float) -> list[tuple[float, bytes, bool]]:
    """Frames due at the same moment go out in one write; the first delay counts from the request's arrival."""
    segments: list[tuple[float, list[bytes], bool]] = []
    for frame in frames:
        if segments and frame.delay_s <= 0 and not segments[-1][2]:
            delay_s, parts, _ = segments[-1]
            parts.append(frame.data)
            segments[-1] = (delay_s, parts, frame.fail)
        else:
            segments.append((frame.delay_s - (elapsed_s if not segments else 0.0), [frame.data], frame.fail))
    return [(delay_s, b"".join(parts), fail) for delay_s, parts, fail in segments]


async def sleep_precisely(delay_s: float) -> None:
    """Sleep `delay_s` to within a few µs: the timer gets all but the last 2 ms, a bounded yielding spin the rest."""
    due = time.perf_counter() + delay_s
    if delay_s > _SPIN_S:
        await asyncio.sleep(delay_s - _SPIN_S)
    for _ in range(1_000_000):  # bounded spin, a few ms at most
        if time.perf_counter() >= due:
            return
        await asyncio.sleep(0)


async def _play(
    frames: list[Frame],
    record: RecordedRequest,
    *,
    never_close: bool,
    precise: bool = False,
    on_abort: Callable[[], None] | None = None,
) -> AsyncIterator[bytes]:
    segments = _segments(frames, elapsed_s=time.perf_counter() - record.t)
    next_write_at = time.perf_counter()  # when the server would next write, and so learn of a closed client
    try:
        for i, (delay_s, data, fail) in enumerate(segments):
            next_write_at = time.perf_counter() + max(delay_s, 0.0)
            if delay_s > 0:
                await (sleep_precisely(delay_s) if precise and i == 0 else asyncio.sleep(delay_s))
            if data:
                following_s = segments[i + 1][0] if i + 1 < len(segments) else 0.0
                next_write_at = time.perf_counter() + max(following_s, 0.0)
                yield data
            if fail:
                record.outcome = "dropped"
                raise _DropConnection("fault drop-mid-stream")
        if never_close:
            await asyncio.sleep(600)
        record.outcome = "completed"
    except (asyncio.CancelledError, GeneratorExit):
        record.outcome = "client_disconnected"
        if on_abort is not None:  # a server learns of a closed client when its next write fails
            asyncio.get_running_loop().call_later(max(next_write_at - time.perf_counter(), 0.0), on_abort)
        raise
    finally:
        record.t_closed = time.perf_counter()


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def _models(request: Request) -> Response:
    state: _State = request.app.state.fake
    return JSONResponse({"object": "list", "data": [{"id": state.config.model or "fake-llm", "object": "model"}]})


async def _recorded(request: Request) -> Response:
    state: _State = request.app.state.fake
    return JSONResponse(
        [
            {"path": r.path, "headers": r.headers, "body": r.body, "outcome": r.outcome, "authorized": r.authorized}
            for r in state.recorded
        ]
    )


def create_app(config: FakeLLMConfig | None = None) -> Starlette:
    """The fake LLM app; `app.state.fake.recorded` lists what it received."""
    routes = [
        Route("/chat/completions", _completions, methods=["POST"]),
        Route("/v1/chat/completions", _completions, methods=["POST"]),
        Route("/v1/models", _models, methods=["GET"]),
        Route("/healthz", _healthz, methods=["GET"]),
        Route("/_fake/requests", _recorded, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.fake = _State(config or FakeLLMConfig())
    return app
