"""How exactly the harness times the first content of a stream, next to three baseline clients.

Run it from the repository root:

    python -m benchmarks.timing_accuracy [--n 300] [--ttft-ms 50] [--json results.json]

A fake upstream on loopback holds back its first content for a fixed `ttft_ms`; each client's measured
time to the first content-bearing SSE event minus `ttft_ms` is its timing error. The methods, all
sending the same Vapi request over one reused connection each:

- `harness`: `mock_vapi.reader.read_into` with an aiohttp session, read as `exchange_metrics(...)["ttft_ms"]`;
- `raw asyncio`: a hand-written HTTP/1.1 client on `asyncio.open_connection` that splits the chunked body;
- `httpx`: `AsyncClient.stream` with `aiter_lines`, each `data:` line parsed as JSON;
- `openai SDK`: `AsyncOpenAI.chat.completions.create(stream=True)`, the first chunk with `delta.content`.

Why the fake is set to `ttft_ms=N, chunk_delay_ms=0, precise_ttft=True` with a one-word reply:
`plan_reply` emits the role delta (empty content) after `ttft_ms`, then each word after `chunk_delay_ms`;
frames due at the same moment leave in one write, so the role delta and the first word go out together,
`ttft_ms` after the request arrived at the fake (its own parsing is inside that time). `precise_ttft`
spins the last 2 ms instead of trusting `asyncio.sleep`, which can end up to 1 ms late because epoll
counts whole milliseconds. A one-word reply keeps what the fake writes after it short, because the fake
runs in a thread of this process and shares its GIL with the clients.

Every method's error still includes the same fixed costs: the request crossing loopback, uvicorn
parsing it before the fake's clock starts, and the write of the first chunk. Client CPU spent while the
fake works also delays the fake through the shared GIL; a real upstream in another process would not
feel it.

Methods take turns request by request, in a new shuffled order each round, so machine noise falls on
all alike and no method always follows the same one. A short pause before each request lets the fake
finish the previous reply and the previous client its cleanup (the SDK closes its generators later,
from the event loop), which would otherwise land on whoever comes next.

CPU per response cannot be told apart in that mix, so it comes from a separate pass of `CPU_RESPONSES`
responses per method, one method after another, as `time.thread_time()` of the client thread: the
fake's thread is excluded. Exit status: 0 when the harness meets the target, 1 when it misses, 2 when
a reply cannot be timed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import re
import sys
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import httpx
import openai

from harness.fake_llm import FakeLLMConfig, create_app
from harness.metrics import exchange_metrics, percentile
from harness.servers import serve_in_thread
from mock_vapi import CustomLLMModel, VapiRequest, build_request
from mock_vapi.exchange import Exchange, Outcome
from mock_vapi.reader import ReadLimits, new_session, read_into

__all__ = [
    "CPU_RESPONSES",
    "TARGET_P50_MS",
    "TARGET_P99_MS",
    "WARMUP_REQUESTS",
    "BenchmarkError",
    "MethodResult",
    "main",
    "run_benchmark",
]

TARGET_P50_MS = 0.7
TARGET_P99_MS = 2.0
WARMUP_REQUESTS = 20
CPU_RESPONSES = 100
REPLY = "Hello."
MESSAGES = ({"role": "user", "content": "hi"},)

_REQUEST_TIMEOUT_S = 10.0
_SETTLE_S = 0.002
_SHUFFLE_SEED = 20
_MAX_HEADER_LINES = 100
_MAX_BODY_PARTS = 10_000  # chunks, lines or SSE events per response, far above the fake's handful
_CONTENT = re.compile(rb'"content":"[^"]')  # non-empty content in the fake's compact JSON
_SDK_PARAMS = ("model", "messages", "temperature", "max_tokens", "stream")

log = logging.getLogger(__name__)


class BenchmarkError(RuntimeError):
    """A client got a reply the benchmark cannot time (an error status, no content, a broken stream)."""


class _Client(Protocol):
    name: str

    async def first_content_ms(self) -> float:
        """Send the request once, read the whole reply; milliseconds from sending to the first content."""
        ...


@dataclass(frozen=True)
class MethodResult:
    """One method's timing errors (ms) and its client-thread CPU per response (ms)."""

    name: str
    errors_ms: tuple[float, ...]
    cpu_ms_per_response: float

    @property
    def p50_ms(self) -> float:
        """Median error."""
        return percentile(sorted(self.errors_ms), 0.5)

    @property
    def p99_ms(self) -> float:
        """99th-percentile error."""
        return percentile(sorted(self.errors_ms), 0.99)


class _HarnessClient:
    name = "harness"

    def __init__(self, session: aiohttp.ClientSession, request: VapiRequest) -> None:
        self._session = session
        self._request = request
        self._limits = ReadLimits()

    async def first_content_ms(self) -> float:
        exchange = Exchange(self._request, t_start=0)
        await read_into(self._session, exchange, self._limits)
        if exchange.outcome is not Outcome.COMPLETE or exchange.status != 200:
            raise BenchmarkError(f"{self.name}: {exchange.outcome} (status {exchange.status}): {exchange.error}")
        ttft_ms = exchange_metrics(exchange)["ttft_ms"]
        if ttft_ms is None:
            raise BenchmarkError(f"{self.name}: the reply carried no content: {exchange.body_excerpt()}")
        return ttft_ms


class _RawClient:
    """HTTP/1.1 by hand: enough for the fake's chunked keep-alive replies, and nothing more."""

    name = "raw asyncio"

    def __init__(self, request: VapiRequest) -> None:
        parts = urlsplit(request.url)
        if parts.scheme != "http" or parts.hostname is None or parts.port is None:
            raise BenchmarkError(f"{self.name}: needs an http URL with a port, got {request.url}")
        self._host, self._port = parts.hostname, parts.port
        lines = [f"{request.method} {parts.path} HTTP/1.1", f"Host: {parts.netloc}"]
        lines += [f"{name}: {value}" for name, value in request.headers]
        lines += [f"Content-Length: {len(request.body)}", "", ""]
        self._payload = "\r\n".join(lines).encode("latin-1") + request.body
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        # The fake closes connections idle for 5 s (uvicorn's keep-alive), e.g. during the other methods' CPU pass.
        if self._reader is None or self._writer is None or self._reader.at_eof() or self._writer.is_closing():
            await self.close()
            self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
        return self._reader, self._writer

    async def close(self) -> None:
        """Close the connection, if open."""
        if self._writer is not None:
            self._writer.close()
            await self._writer.wait_closed()
        self._reader = self._writer = None

    async def first_content_ms(self) -> float:
        reader, writer = await self._connection()
        t_first: float | None = None
        pending = b""
        t0 = time.perf_counter()
        writer.write(self._payload)
        status = await reader.readline()
        if b" 200 " not in status:
            raise BenchmarkError(f"{self.name}: unexpected status line {status!r}")
        chunked = False
        for _ in range(_MAX_HEADER_LINES):
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _sep, value = line.partition(b":")
            chunked = chunked or (name.strip().lower() == b"transfer-encoding" and b"chunked" in value.lower())
        else:
            raise BenchmarkError(f"{self.name}: more than {_MAX_HEADER_LINES} header lines")
        if not chunked:
            raise BenchmarkError(f"{self.name}: expected a chunked body")
        for _ in range(_MAX_BODY_PARTS):
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                await reader.readline()  # the blank line closing the body (the fake sends no trailers)
                break
            data = await reader.readexactly(size + 2)
            t = time.perf_counter()
            if t_first is None:
                *events, pending = (pending + data[:-2]).split(b"\n\n")
                if any(_CONTENT.search(event) for event in events):
                    t_first = t
        else:
            raise BenchmarkError(f"{self.name}: more than {_MAX_BODY_PARTS} chunks")
        if t_first is None:
            raise BenchmarkError(f"{self.name}: the reply carried no content")
        return (t_first - t0) * 1000.0


class _HttpxClient:
    name = "httpx"

    def __init__(self, client: httpx.AsyncClient, request: VapiRequest) -> None:
        self._client = client
        self._request = request

    async def first_content_ms(self) -> float:
        request = self._request
        t_first: float | None = None
        t0 = time.perf_counter()
        async with self._client.stream(
            request.method, request.url, content=request.body, headers=list(request.headers)
        ) as response:
            if response.status_code != 200:
                raise BenchmarkError(f"{self.name}: status {response.status_code}")
            count = 0
            async for line in response.aiter_lines():
                t = time.perf_counter()
                count += 1
                if count > _MAX_BODY_PARTS:
                    raise BenchmarkError(f"{self.name}: more than {_MAX_BODY_PARTS} lines")
                if t_first is None and line.startswith("data:"):
                    data = line[5:].strip()
                    if data != "[DONE]" and _delta_content(json.loads(data)):
                        t_first = t
        if t_first is None:
            raise BenchmarkError(f"{self.name}: the reply carried no content")
        return (t_first - t0) * 1000.0


class _OpenAIClient:
    name = "openai SDK"

    def __init__(self, client: openai.AsyncOpenAI, request: VapiRequest) -> None:
        body = request.json_body
        if body is None:
            raise BenchmarkError(f"{self.name}: needs the request's JSON body")
        self._client = client
        self._body = body
        # The SDK serializes the body itself; Vapi's extra fields (call, metadata...) ride in extra_body.
        self._extra_body = {k: v for k, v in body.items() if k not in _SDK_PARAMS}
        self._headers = {k: v for k, v in request.headers if k.lower() != "content-type"}

    async def first_content_ms(self) -> float:
        body = self._body
        t_first: float | None = None
        count = 0
        t0 = time.perf_counter()
        stream = await self._client.chat.completions.create(
            model=body["model"],
            messages=body["messages"],
            temperature=body["temperature"],
            max_tokens=body["max_tokens"],
            stream=True,
            extra_body=self._extra_body,
            extra_headers=self._headers,
        )
        async for chunk in stream:
            t = time.perf_counter()
            count += 1
            if count > _MAX_BODY_PARTS:
                await stream.close()
                raise BenchmarkError(f"{self.name}: more than {_MAX_BODY_PARTS} chunks")
            if t_first is None and chunk.choices and chunk.choices[0].delta.content:
                t_first = t
        if t_first is None:
            raise BenchmarkError(f"{self.name}: the reply carried no content")
        return (t_first - t0) * 1000.0


def _delta_content(payload: Any) -> str:
    choices = payload.get("choices") if isinstance(payload, dict) else None
    delta = choices[0].get("delta") if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
    content = delta.get("content") if isinstance(delta, dict) else None
    return content if isinstance(content, str) else ""


@asynccontextmanager
async def _clients(request: VapiRequest, base_url: str) -> AsyncIterator[list[_Client]]:
    """Every method's client, each with its own connection pool, ours first."""
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(new_session())
        raw = _RawClient(request)
        stack.push_async_callback(raw.close)
        timeout = httpx.Timeout(_REQUEST_TIMEOUT_S)
        http = await stack.enter_async_context(httpx.AsyncClient(timeout=timeout))
        sdk = await stack.enter_async_context(
            openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0, timeout=_REQUEST_TIMEOUT_S)
        )
        yield [_HarnessClient(session, request), raw, _HttpxClient(http, request), _OpenAIClient(sdk, request)]


async def _timed(client: _Client) -> float:
    try:
        async with asyncio.timeout(_REQUEST_TIMEOUT_S):
            return await client.first_content_ms()
    except TimeoutError:
        raise BenchmarkError(f"{client.name}: no complete reply within {_REQUEST_TIMEOUT_S:g} s") from None
    except (OSError, EOFError, ValueError, aiohttp.ClientError, httpx.HTTPError, openai.OpenAIError) as exc:
        raise BenchmarkError(f"{client.name}: the request failed: {exc!r}") from exc


async def _measure(request: VapiRequest, base_url: str, n: int, ttft_ms: float) -> list[MethodResult]:
    async with _clients(request, base_url) as clients:
        for client in clients:
            for _ in range(WARMUP_REQUESTS):
                await _timed(client)
        log.info("Timing %d requests per method, interleaved", n)
        errors: list[list[float]] = [[] for _ in clients]
        rng = random.Random(_SHUFFLE_SEED)
        order = list(range(len(clients)))
        for _ in range(n):
            rng.shuffle(order)
            for k in order:
                await asyncio.sleep(_SETTLE_S)
                errors[k].append(await _timed(clients[k]) - ttft_ms)
        log.info("Measuring client CPU over %d responses per method, one method at a time", CPU_RESPONSES)
        cpu_ms: list[float] = []
        for client in clients:
            for _ in range(5):  # reconnect, if the fake closed the idle connection, outside the measured loop
                await _timed(client)
            t0 = time.thread_time()
            for _ in range(CPU_RESPONSES):
                await _timed(client)
            cpu_ms.append((time.thread_time() - t0) * 1000.0 / CPU_RESPONSES)
        return [
            MethodResult(client.name, tuple(samples), cpu)
            for client, samples, cpu in zip(clients, errors, cpu_ms, strict=True)
        ]


def run_benchmark(n: int = 300, ttft_ms: float = 50.0) -> list[MethodResult]:
    """Serve the fake on loopback, time every method against it; the harness's result comes first."""
    config = FakeLLMConfig(ttft_ms=ttft_ms, chunk_delay_ms=0, reply=REPLY, precise_ttft=True)
    with serve_in_thread(create_app(config)) as server:
        request = build_request(CustomLLMModel(url=server.url + "/v1", model="bench"), MESSAGES)
        return asyncio.run(_measure(request, server.url + "/v1", n, ttft_ms))


def meets_target(result: MethodResult) -> bool:
    """True when p50 and p99 errors are within the issue's target."""
    return result.p50_ms <= TARGET_P50_MS and result.p99_ms <= TARGET_P99_MS


def _ratio(baseline_ms: float, ours_ms: float) -> str:
    return f"{baseline_ms / ours_ms:.2f}x" if ours_ms > 0 else "n/a"


def format_table(results: Sequence[MethodResult], n: int, ttft_ms: float) -> str:
    """The results as a plain-text table; ratios are each method's error divided by the harness's."""
    ours = results[0]
    lines = [
        f"Time-to-first-content error (measured - {ttft_ms:g} ms), {n} requests per method, interleaved, one stream",
        f"{'method':<12} {'p50 err ms':>10} {'p99 err ms':>10} {'CPU ms/resp':>11}"
        f" {'p50 / ours':>10} {'p99 / ours':>10}",
    ]
    for r in results:
        lines.append(
            f"{r.name:<12} {r.p50_ms:>10.3f} {r.p99_ms:>10.3f} {r.cpu_ms_per_response:>11.3f}"
            f" {_ratio(r.p50_ms, ours.p50_ms):>10} {_ratio(r.p99_ms, ours.p99_ms):>10}"
        )
    lines.append(
        f"CPU: client thread only, from a separate pass of {CPU_RESPONSES} responses per method, not interleaved."
    )
    verdict = "PASS" if meets_target(ours) else "MISS"
    lines.append(
        f"Target for {ours.name}: p50 <= {TARGET_P50_MS:g} ms and p99 <= {TARGET_P99_MS:g} ms: {verdict}"
        f" (p50 {ours.p50_ms:.3f}, p99 {ours.p99_ms:.3f})"
    )
    return "\n".join(lines) + "\n"


def results_json(results: Sequence[MethodResult], n: int, ttft_ms: float) -> dict[str, Any]:
    """The results, with raw samples, as a JSON-ready dict."""
    ours = results[0]
    return {
        "benchmark": "timing_accuracy",
        "n": n,
        "ttft_ms": ttft_ms,
        "warmup_requests": WARMUP_REQUESTS,
        "cpu_responses": CPU_RESPONSES,
        "order": {"each_round": "every method once, shuffled", "seed": _SHUFFLE_SEED, "pause_ms": _SETTLE_S * 1000},
        "target": {"p50_ms": TARGET_P50_MS, "p99_ms": TARGET_P99_MS, "met": meets_target(ours)},
        "methods": [
            {
                **{k: v for k, v in asdict(r).items() if k != "errors_ms"},
                "p50_error_ms": r.p50_ms,
                "p99_error_ms": r.p99_ms,
                "p50_vs_ours": r.p50_ms / ours.p50_ms if ours.p50_ms > 0 else None,
                "p99_vs_ours": r.p99_ms / ours.p99_ms if ours.p99_ms > 0 else None,
                "errors_ms": [round(e, 4) for e in r.errors_ms],
            }
            for r in results
        ],
    }


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table to stdout; 0 when the harness meets the target, else 1."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.timing_accuracy", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=_positive_int, default=300, help="measured requests per method (default 300)")
    parser.add_argument("--ttft-ms", type=_positive_float, default=50.0, help="the fake's delay (default 50)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results, with samples, as JSON")
    args = parser.parse_args(argv)
    # Progress from this module only: httpx logs every request at INFO.
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    log.setLevel(logging.INFO)
    try:
        results = run_benchmark(args.n, args.ttft_ms)
    except BenchmarkError as exc:
        log.error("The benchmark stopped: %s", exc)
        return 2
    sys.stdout.write(format_table(results, args.n, args.ttft_ms))
    if args.json is not None:
        try:
            args.json.write_text(json.dumps(results_json(results, args.n, args.ttft_ms), indent=2) + "\n")
        except OSError as exc:
            log.error("Cannot write %s: %s", args.json, exc)
            return 2
    return 0 if meets_target(results[0]) else 1


if __name__ == "__main__":
    sys.exit(main())
