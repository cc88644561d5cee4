"""The baseline for `proxy_overhead.py`: the least a streaming relay can do, on the same server library.

It forwards the body unchanged, copies each upstream read to the client, and nothing else: no auth, no field
stripping, no timeouts, no logging, no error envelopes. What the reference proxy adds on top of this is the
price of doing the job properly; what this adds to a direct call is the machine's own floor.

    python -m benchmarks.bare_relay --upstream-url http://127.0.0.1:8000/v1 --port 8081
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

_SESSION = web.AppKey("session", aiohttp.ClientSession)
_URL = web.AppKey("url", str)


async def _relay(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    upstream = await request.app[_SESSION].post(
        request.app[_URL], data=body, headers={"Content-Type": "application/json"}
    )
    response = web.StreamResponse(status=upstream.status, headers={"Content-Type": "text/event-stream"})
    try:
        await response.prepare(request)
        async for data in upstream.content.iter_any():
            await response.write(data)
        await response.write_eof()
    finally:
        upstream.close()
    return response


async def _session(app: web.Application) -> AsyncIterator[None]:
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        app[_SESSION] = session
        yield


def _event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def main() -> None:
    """Serve the bare relay until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bare_relay", description=__doc__.splitlines()[0])
    parser.add_argument("--upstream-url", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app[_URL] = args.upstream_url.rstrip("/") + "/chat/completions"
    app.cleanup_ctx.append(_session)
    app.router.add_post("/chat/completions", _relay)
    app.router.add_post("/v1/chat/completions", _relay)
    loop = _event_loop()
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None, handler_cancellation=True, loop=loop)


if __name__ == "__main__":
    main()
