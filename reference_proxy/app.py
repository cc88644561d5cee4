"""The reference custom-LLM server: Vapi in front, any OpenAI-compatible API behind, nothing buffered.

Server and upstream client are both aiohttp, chosen by measurement (`benchmarks/proxy_overhead.py`, figures in
`docs/performance.md`): against Starlette on uvicorn with the same aiohttp client, it adds less time to first
content, spends less CPU per relayed stream and needs less memory.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from harness.protocol import CHAT_PARAMS, BodyError, encode_event, error_envelope, parse_json_body
from reference_proxy.hooks import Hook, HookError, VapiContext
from reference_proxy.recorder import Exchange as RecordedExchange
from reference_proxy.recorder import TrafficRecorder
from reference_proxy.settings import ProxySettings

__all__ = ["VAPI_FIELDS", "builtin_app", "create_app", "split_vapi_fields"]

log = logging.getLogger("reference_proxy")
VAPI_FIELDS = frozenset({"call", "phoneNumber", "customer", "metadata"})
_FORWARDED = CHAT_PARAMS - VAPI_FIELDS
_ERROR_BODY_LIMIT = 64 * 1024
_MAX_BODY = 16 * 1024 * 1024  # a 40-turn call with tools is tens of kB; aiohttp's default (1 MiB) is too tight
_JSON = {"Content-Type": "application/json"}
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def split_vapi_fields(body: dict[str, Any]) -> tuple[dict[str, Any], VapiContext]:
    """The OpenAI fields to forward, and Vapi's context (call, customer, metadata, destructured keys)."""
    allowed = _FORWARDED
    forward = {k: v for k, v in body.items() if k in allowed}
    destructured = {k: v for k, v in body.items() if k not in allowed and k not in VAPI_FIELDS}
    metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else destructured
    context = VapiContext(
        call=body.get("call") if isinstance(body.get("call"), dict) else None,
        phone_number=body.get("phoneNumber") if isinstance(body.get("phoneNumber"), dict) else None,
        customer=body.get("customer") if isinstance(body.get("customer"), dict) else None,
        metadata=metadata or {},
    )
    return forward, context


def _error(status: int, message: str, type_: str = "invalid_request_error", code: str | None = None) -> web.Response:
    return web.json_response(error_envelope(message, type_, code), status=status)


def _recorded_body(body: object) -> Any:
    """A reply body as recorded: its JSON, or its text when an upstream sent something else."""
    if not isinstance(body, bytes):
        return None
    try:
        return parse_json_body(body)
    except BodyError:
        return body.decode("utf-8", "replace")


class _IdleWatch:
    """Cancels the relaying task when the upstream sent nothing for `idle_s`.

    Touching it costs one clock read per chunk; the timer is re-armed once per idle period, not per chunk.
    """

    __slots__ = ("_handle", "_idle_s", "_loop", "_task", "expired", "last")

    def __init__(self, idle_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        self._task = task
        self._idle_s = idle_s
        self.last = self._loop.time()
        self.expired = False
        self._handle = self._loop.call_at(self.last + idle_s, self._check)

    def touch(self) -> None:
        """Data arrived now."""
        self.last = self._loop.time()

    def _check(self) -> None:
        due = self.last + self._idle_s
        if self._loop.time() >= due:
            self.expired = True
            self._task.cancel()
        else:
            self._handle = self._loop.call_at(due, self._check)

    def close(self) -> None:
        """Stop watching."""
        self._handle.cancel()


class _Proxy:
    def __init__(self, settings: ProxySettings, hook: Hook | None) -> None:
        self.settings = settings
        self.hook = hook
        self.session: aiohttp.ClientSession | None = None
        self.recorder = TrafficRecorder(settings.record_path) if settings.record_path else None
        self.active_streams = 0
        self.upstream_headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if settings.upstream_api_key:
            self.upstream_headers["Authorization"] = f"Bearer {settings.upstream_api_key}"
        self.expected_auth = f"Bearer {settings.api_key}".encode() if settings.api_key is not None else None

    async def upstream_session(self, app: web.Application) -> AsyncIterator[None]:
        """The upstream connection pool, for as long as the app runs."""
        connector = aiohttp.TCPConnector(limit=self.settings.max_connections, keepalive_timeout=60)
        # No total timeout: a call's stream may last minutes; the first-byte and idle timeouts bound it.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.settings.connect_timeout_s)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            self.session = session
            yield

    async def healthz(self, request: web.Request) -> web.Response:
        """Liveness, and how many streams are being relayed right now."""
        return web.json_response({"status": "ok", "active_streams": self.active_streams})

    def authorized(self, request: web.Request) -> bool:
        if self.expected_auth is None:
            return True
        return hmac.compare_digest(request.headers.get("Authorization", "").encode(), self.expected_auth)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        if not self.authorized(request):
            return _error(401, "Missing or wrong API key.", "authentication_error")
        try:
            body = parse_json_body(await request.read())
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"The body is larger than {_MAX_BODY // (1024 * 1024)} MiB.")
        except BodyError as exc:
            return _error(400, f"The body {exc.problem}.")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "'messages' is a required property and must be an array")
        recording = RecordedExchange(request.headers, body) if self.recorder else None
        forward, context = split_vapi_fields(body)
        if self.hook is not None:
            try:
                forward = await self.hook(forward, context)
            except HookError as exc:
                return self._done(recording, _error(exc.status, exc.message, code=exc.code))
        stream = bool(forward.get("stream"))
        if stream and self.settings.force_include_usage:
            forward["stream_options"] = {**(forward.get("stream_options") or {}), "include_usage": True}
        upstream = await self._open(forward, context)
        # Logged once the upstream has answered, so the log write is not on the way to the first token.
        log.info("turn", extra={"call_id": context.call_id, "stream": stream, "model": forward.get("model")})
        if isinstance(upstream, web.Response):
            return self._done(recording, upstream)
        if upstream.status >= 400:
            return self._done(recording, await self._upstream_error(upstream))
        if not stream:
            async with upstream:
                payload = await upstream.read()
            return self._done(recording, web.Response(body=payload, status=upstream.status, headers=_JSON))
        return await self._relay(request, upstream, context, recording)

    def _done(self, recording: RecordedExchange | None, response: web.Response) -> web.Response:
        if recording is not None:
            recording.status = response.status
            recording.reply = _recorded_body(response.body)
            self._save(recording)
        return response

    def _save(self, recording: RecordedExchange) -> None:
        assert self.recorder is not None
        try:
            self.recorder.write(recording)
        except OSError as exc:  # recording must never break a live call
            log.error("could not record the exchange: %s", exc)

    async def _open(self, forward: dict[str, Any], context: VapiContext) -> aiohttp.ClientResponse | web.Response:
        """The upstream response with its headers read, or the error response to send instead."""
        assert self.session is not None
        try:
            async with asyncio.timeout(self.settings.first_byte_timeout_s):
                return await self.session.post(
                    self.settings.completions_url, data=json.dumps(forward), headers=self.upstream_headers
                )
        except TimeoutError:  # also aiohttp's connect timeout
            log.warning("upstream timeout", extra={"call_id": context.call_id})
            return _error(504, "The upstream model did not answer in time.", "upstream_error", "upstream_timeout")
        except aiohttp.ClientError as exc:
            log.warning("upstream unreachable: %s", exc, extra={"call_id": context.call_id})
            return _error(502, "The upstream model could not be reached.", "upstream_error", "upstream_unreachable")

    async def _upstream_error(self, upstream: aiohttp.ClientResponse) -> web.Response:
        async with upstream:
            raw = await upstream.content.read(_ERROR_BODY_LIMIT)
        try:
            payload = parse_json_body(raw)
        except BodyError:
            payload = None
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            return web.json_response(payload, status=upstream.status)
        text = raw.decode("utf-8", "replace")[:500] or upstream.reason or "error"
        return _error(upstream.status, f"Upstream error {upstream.status}: {text}", "upstream_error")

    async def _relay(
        self,
        request: web.Request,
        upstream: aiohttp.ClientResponse,
        context: VapiContext,
        recording: RecordedExchange | None,
    ) -> web.StreamResponse:
        """Pass each upstream read on at once; a failure mid-stream becomes an error chunk, then the end.

        A client that goes away (a barge-in) cancels this task (the server runs with handler cancellation) or
        fails the next write; either way the upstream connection is dropped at once.
        """
        response = web.StreamResponse(status=upstream.status, headers=_SSE_HEADERS)
        finished = False
        self.active_streams += 1
        watch = _IdleWatch(self.settings.idle_timeout_s)
        try:
            await response.prepare(request)
            while True:
                try:
                    data = await upstream.content.readany()
                except asyncio.CancelledError:
                    if not watch.expired:
                        raise
                    asyncio.current_task().uncancel()  # type: ignore[union-attr]
                    log.warning("upstream stalled mid-stream", extra={"call_id": context.call_id})
                    await response.write(
                        encode_event(
                            error_envelope("The upstream model stalled.", "upstream_error", "upstream_timeout")
                        )
                    )
                    break
                except aiohttp.ClientError as exc:
                    log.warning("upstream broke mid-stream: %s", exc, extra={"call_id": context.call_id})
                    await response.write(
                        encode_event(error_envelope("The upstream stream broke.", "upstream_error", "upstream_broken"))
                    )
                    break
                if not data:
                    finished = True
                    break
                watch.touch()
                if recording is not None:
                    recording.streamed(data)
                await response.write(data)
            await response.write_eof()
        except ConnectionError:  # the client went away between two chunks
            pass
        finally:
            watch.close()
            self.active_streams -= 1
            if recording is not None:
                recording.status = upstream.status
                self._save(recording)
            if finished:
                upstream.release()
            else:
                upstream.close()
                log.info("upstream closed early", extra={"call_id": context.call_id})
        return response


def create_app(settings: ProxySettings, hook: Hook | None = None) -> web.Application:
    """The proxy app; its upstream session lives as long as the app runs.

    Serve it with handler cancellation on (`vapi-harness proxy` does), so a barge-in cancels the upstream
    request even while it is still waiting for the first token.
    """
    proxy = _Proxy(settings, hook)
    app = web.Application(client_max_size=_MAX_BODY)
    app.cleanup_ctx.append(proxy.upstream_session)
    for path in ("/chat/completions", "/v1/chat/completions"):
        app.router.add_post(path, proxy.completions)
    app.router.add_get("/healthz", proxy.healthz)
    return app


def builtin_app(upstream_url: str, api_key: str | None = None) -> web.Application:
    """The proxy as `vapi-harness check`'s built-in endpoint, in front of the given upstream."""
    return create_app(ProxySettings(upstream_url=upstream_url, api_key=api_key))
