"""The floor of `loadgen.py`: the least a streaming client can do, on the same client library, without Locust.

N callers (arriving at random over one stream's length) post the benchmark's request back to back on one
aiohttp session and read each stream as it comes, stamping only the first content chunk. No parsing, no
metrics, no Locust. What it measures is the machine's and the upstream's own share of the timing error and of
the CPU per stream; prints one JSON object.

    python -m benchmarks.lean_client --url http://127.0.0.1:8000/v1 --users 200 --seconds 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import time

import aiohttp

__all__ = ["main"]


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _run(url: str, users: int, seconds: float, stagger_s: float, body: bytes) -> dict[str, object]:
    first_content_ms: list[float] = []
    streams = 0
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout(total=60))
    started = time.perf_counter()
    stop = started + seconds
    measured: dict[str, float] = {}

    async def caller() -> None:
        nonlocal streams
        await asyncio.sleep(random.uniform(0, stagger_s))
        while time.perf_counter() < stop:
            sent = time.perf_counter()
            first: float | None = None
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
                while data := await response.content.readany():
                    if first is None and b'"content":"' in data and b'"content":""' not in data:
                        first = time.perf_counter()
            if first is not None:
                first_content_ms.append((first - sent) * 1000)
            streams += 1

    async def mark_spawned() -> None:  # as loadgen counts Locust from the moment every user runs
        await asyncio.sleep(stagger_s)
        measured["cpu"], measured["streams"] = _cpu_s(), streams

    await asyncio.gather(mark_spawned(), *(caller() for _ in range(users)))
    await session.close()
    return {
        "streams": streams,
        "measured_streams": streams - int(measured.get("streams", 0)),
        "cpu_ms": (_cpu_s() - measured.get("cpu", 0.0)) * 1000,
        "first_content_ms": first_content_ms,
    }


def main(argv: list[str] | None = None) -> None:
    """Run, then print the JSON result."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lean_client", description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True, help="the base URL (…/v1)")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--stagger-s", type=float, default=1.07)
    args = parser.parse_args(argv)
    body = os.environ.get("LOADGEN_BODY", '{"model":"bench","messages":[{"role":"user","content":"hi"}],"stream":true}')
    runner = asyncio.run
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:
        pass
    url = args.url.rstrip("/") + "/chat/completions"
    result = runner(_run(url, args.users, args.seconds, args.stagger_s, body.encode()))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
