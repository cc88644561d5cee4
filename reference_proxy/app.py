"""The reference custom-LLM server: Vapi in front, any OpenAI-compatible API behind, nothing buffered.

aiohttp is the upstream client: per streamed response it costs a fraction of httpx's CPU, which is what
keeps added latency flat at hundreds of concurrent calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from harness.protocol import encode_event, error_envelope, openai_chat_params
from reference_proxy.hooks import Hook, HookError, VapiContext
from reference_proxy.recorder import Exchange as RecordedExchange
from reference_proxy.recorder import TrafficRecorder
from reference_proxy.settings import ProxySettings

__all__ = ["VAPI_FIELDS", "builtin_app", "create_app", "split_vapi_fields"]

log = logging.getLogger("reference_proxy")
VAPI_FIELDS = frozenset({"call", "phoneNumber", "customer", "metadata"})
_ERROR_BODY_LIMIT = 64 * 1024


def split_vapi_fields(body: dict[str, Any]) -> tuple[dict[str, Any], VapiContext]:
    """The OpenAI fields to forward, and Vapi's context (call, customer, metadata, destructured keys)."""
    allowed = openai_chat_params() - VAPI_FIELDS
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


def _error(status: int, message: str, type_: str = "invalid_request_error", code: str | None = None) -> JSONResponse:
    return JSONResponse(error_envelope(message, type_, code), status_code=status)


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

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.settings.max_connections, keepalive_timeout=60)
        self.session = aiohttp.ClientSession(connector=connector, auto_decompress=True)

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()

    async def healthz(self, request: Request) -> Response:
        """Liveness, and how many streams are being relayed right now."""
        return JSONResponse({"status": "ok", "active_streams": self.active_streams})

    def authorized(self, request: Request) -> bool:
        expected = self.settings.api_key
        if expected is None:
            return True
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {expected}".encode())

    async def completions(self, request: Request) -> Response:
        if not self.authorized(request):
            return _error(401, "Missing or wrong API key.", "authentication_error")
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            return _error(400, f"The body is not valid JSON: {exc}")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "'messages' is a required property and must be an array")
        recording = RecordedExchange(request.headers, body) if self.recorder else None
        response = await self._turn(body, recording)
        if recording is not None and not isinstance(response, StreamingResponse):
            recording.status = response.status_code
            recording.reply = json.loads(bytes(response.body)) if response.body else None
            self._save(recording)
        return response

    def _save(self, recording: RecordedExchange) -> None:
        assert self.recorder is not None
        try:
            self.recorder.write(recording)
        except OSError as exc:  # recording must never break a live call
            log.error("could not record the exchange: %s", exc)

    async def _turn(self, body: dict[str, Any], recording: RecordedExchange | None) -> Response:
        forward, context = split_vapi_fields(body)
        if self.hook is not None:
            try:
                forward = await self.hook(forward, context)
            except HookError as exc:
                return _error(exc.status, exc.message, code=exc.code)
        stream = bool(forward.get("stream"))
        if stream and self.settings.force_include_usage:
            forward["stream_options"] = {**(forward.get("stream_options") or {}), "include_usage": True}
        log.info("turn", extra={"call_id": context.call_id, "stream": stream, "model": forward.get("model")})
        return await self._forward(forward, stream, context, recording)

    async def _forward(
        self, forward: dict[str, Any], stream: bool, context: VapiContext, recording: RecordedExchange | None
    ) -> Response:
        assert self.session is not None
        settings = self.settings
        timeout = aiohttp.ClientTimeout(
            sock_connect=settings.connect_timeout_s, sock_read=settings.first_byte_timeout_s
        )
        try:
            upstream = await self.session.post(
                settings.completions_url, data=json.dumps(forward), headers=self.upstream_headers, timeout=timeout
            )
        except (TimeoutError, aiohttp.ServerTimeoutError):
            log.warning("upstream timeout", extra={"call_id": context.call_id})
            return _error(504, "The upstream model did not answer in time.", "upstream_error", "upstream_timeout")
        except aiohttp.ClientError as exc:
            log.warning("upstream unreachable: %s", exc, extra={"call_id": context.call_id})
            return _error(502, "The upstream model could not be reached.", "upstream_error", "upstream_unreachable")
        if upstream.status >= 400:
            return await self._upstream_error(upstream)
        if not stream:
            async with upstream:
                payload = await upstream.read()
            return Response(payload, status_code=upstream.status, media_type="application/json")
        return StreamingResponse(
            self._relay(upstream, context, recording),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    async def _upstream_error(self, upstream: aiohttp.ClientResponse) -> Response:
        async with upstream:
            raw = await upstream.content.read(_ERROR_BODY_LIMIT)
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        if isinstance(payload, dict) and isinstance(payload.get("error"), dict):
            return JSONResponse(payload, status_code=upstream.status)
        text = raw.decode("utf-8", "replace")[:500] or upstream.reason or "error"
        return _error(upstream.status, f"Upstream error {upstream.status}: {text}", "upstream_error")

    async def _relay(
        self, upstream: aiohttp.ClientResponse, context: VapiContext, recording: RecordedExchange | None
    ) -> AsyncIterator[bytes]:
        """Pass each upstream read on at once; a failure mid-stream becomes an error chunk, then the end."""
        finished = False
        self.active_streams += 1
        try:
            while True:
                try:
                    async with asyncio.timeout(self.settings.idle_timeout_s):
                        data = await upstream.content.readany()
                except TimeoutError:
                    yield encode_event(error_envelope("The upstream model stalled mid-stream.", "upstream_timeout"))
                    break
                except aiohttp.ClientError as exc:
                    log.warning("upstream broke mid-stream: %s", exc, extra={"call_id": context.call_id})
                    yield encode_event(error_envelope("The upstream stream broke.", "upstream_error"))
                    break
                if not data:
                    finished = True
                    break
                if recording is not None:
                    recording.streamed(data)
                yield data
        finally:
            self.active_streams -= 1
            if recording is not None:
                recording.status = upstream.status
                self._save(recording)
            # A client that went away (barge-in) cancels us here: closing drops the upstream connection now.
            if finished:
                upstream.release()
            else:
                upstream.close()
                log.info("upstream closed early", extra={"call_id": context.call_id})


def create_app(settings: ProxySettings, hook: Hook | None = None) -> Starlette:
    """The proxy app; its upstream session lives as long as the app's lifespan."""
    proxy = _Proxy(settings, hook)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await proxy.start()
        try:
            yield
        finally:
            await proxy.stop()

    routes = [
        Route("/chat/completions", proxy.completions, methods=["POST"]),
        Route("/v1/chat/completions", proxy.completions, methods=["POST"]),
        Route("/healthz", proxy.healthz, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def builtin_app(upstream_url: str, api_key: str | None = None) -> Starlette:
    """The proxy as `vapi-harness check`'s built-in endpoint, in front of the given upstream."""
    return create_app(ProxySettings(upstream_url=upstream_url, api_key=api_key))
