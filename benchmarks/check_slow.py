"""How long `check`'s default suite takes on endpoints that are slow in the ways real ones are.

Run it from the repository root:

    python -m benchmarks.check_slow [--only NAME] [--timeout-s 20] [--stall-s 10] [--json results.json]

Each endpoint runs on loopback in a thread of this process; `check` runs as its own process with its
defaults (`--timeout-s 20`, so the deadline is 30 s), as a user runs it:

- `correct`: the fake LLM, no fault;
- `hang`: the fake LLM's `hang` fault, never a response head;
- `stall`: a server of this file that pauses `--stall-s` in the middle of every reply (a stream's and a
  non-streamed one's);
- `endless`: the fake LLM's `endless` fault, 20,000 content chunks 10 ms apart (a reply that outlives the
  deadline);
- `empty`: a server of this file that streams chunks with empty content, 10 ms apart, until the client leaves.

It prints each endpoint's seconds next to the figure measured before `check` sent independent probes
concurrently and stopped waiting on a hanging endpoint (`BASELINE_S`), the ratio, and the target: at most
`--timeout-s` + 15 s. `max open` is the most requests the endpoint held open at once (the fake LLM does not
count them). Exit status: 0 when every slow endpoint meets the target and the correct one is no slower than
its baseline allows, 1 otherwise.

`--timing-passes N` also plays N passes of the suite against a correct fake LLM in its own process (first
event 50 ms after each request), once one request at a time and once with the runner's default number in
flight, and prints each streamed turn's time to its first event minus 50 ms: what overlapping calls on one
event loop cost the timestamps (the fake's own loop serving eight streams is in it too).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from aiohttp import web

from harness.checks import Expect
from harness.fake_llm import FakeLLMConfig, Fault, create_app
from harness.judging import MAX_IN_FLIGHT, RunSettings
from harness.metrics import percentile
from harness.protocol import BodyError, chunk, completion, encode_event, error_envelope, parse_json_body
from harness.results import RunInfo
from harness.runner import Runner
from harness.servers import ServerThread
from harness.suite import Target, default_probes
from mock_vapi import CustomLLMModel

__all__ = ["BASELINE_S", "ENDPOINTS", "SlowServer", "Slowness", "main", "slow_app"]

# Seconds of `check` with its defaults on each endpoint before the runner overlapped calls (one probe at a time,
# giving up after three hung requests in a row): the mean of two runs of this script (correct: of four) on the
# project's 2-core machine.
BASELINE_S = {"correct": 5.2, "hang": 62.4, "stall": 115.5, "endless": 123.7, "empty": 63.8}
ENDPOINTS = tuple(BASELINE_S)
TARGET_MARGIN_S = 15.0
CORRECT_SLACK = 1.25  # the correct endpoint may not get slower than this times its baseline

_WORDS = "Sure! We open at nine tomorrow, and we close at five in the afternoon.".split()
_TTFT_S = 0.02  # before the first chunk
_GAP_S = 0.01  # between chunks


class Slowness(StrEnum):
    """How a `slow_app` server is slow."""

    STALL = "stall"  # pause in the middle of every reply
    EMPTY = "empty"  # stream chunks with empty content until the client leaves


@dataclass
class SlowServer:
    """What a `slow_app` server saw: requests received, and the most it held open at once."""

    mode: Slowness
    stall_s: float
    received: int = 0
    open: int = 0
    max_open: int = 0


def _tool_turn(body: dict[str, Any]) -> bool:
    """The caller asks for the weather with the tool offered: the reply is a get_weather call."""
    messages = body.get("messages") or []
    last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    return bool(body.get("tools")) and last.get("role") == "user"


def _pieces(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The deltas of a streamed reply after the role delta: a tool call's fragments, or the words."""
    if _tool_turn(body):
        head = {"index": 0, "id": "call_slow_0", "type": "function", "function": {"name": "get_weather"}}
        return [
            {"tool_calls": [{**head, "function": {"name": "get_weather", "arguments": ""}}]},
            {"tool_calls": [{"index": 0, "function": {"arguments": '{"location":'}}]},
            {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]},
        ]
    return [{"content": word if i == 0 else f" {word}"} for i, word in enumerate(_WORDS)]


async def _stream(request: web.Request, state: SlowServer, body: dict[str, Any]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    model = str(body.get("model") or "slow")
    await asyncio.sleep(_TTFT_S)
    await response.write(encode_event(chunk("slow-1", model, {"role": "assistant", "content": ""})))
    if state.mode is Slowness.EMPTY:
        while True:
            await asyncio.sleep(_GAP_S)
            await response.write(encode_event(chunk("slow-1", model, {"content": ""})))
    pieces = _pieces(body)
    for i, delta in enumerate(pieces):
        await asyncio.sleep(state.stall_s if i == len(pieces) // 2 else _GAP_S)
        await response.write(encode_event(chunk("slow-1", model, delta)))
    finish = "tool_calls" if _tool_turn(body) else "stop"
    await response.write(encode_event(chunk("slow-1", model, {}, finish_reason=finish)))
    await response.write(encode_event("[DONE]"))
    await response.write_eof()
    return response


def slow_app(state: SlowServer) -> web.Application:
    """An OpenAI-compatible server that answers correctly but slowly, as `state.mode` says; it counts in `state`."""

    async def completions(request: web.Request) -> web.StreamResponse:
        try:
            body = parse_json_body(await request.read())
        except BodyError:
            return web.json_response(error_envelope("We could not parse the JSON body of your request."), status=400)
        if not isinstance(body, dict):
            return web.json_response(error_envelope("'messages' is a required property"), status=400)
        state.received += 1
        state.open += 1
        state.max_open = max(state.max_open, state.open)
        try:
            if body.get("stream"):
                return await _stream(request, state, body)
            await asyncio.sleep(state.stall_s if state.mode is Slowness.STALL else 0)
            message = {"role": "assistant", "content": " ".join(_WORDS)}
            return web.json_response(completion("slow-1", str(body.get("model") or "slow"), message))
        finally:
            state.open -= 1

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    return app


@dataclass(frozen=True)
class Measured:
    """One endpoint's run of `check`."""

    endpoint: str
    seconds: float
    exit_code: int
    requests: int
    max_open: int | None
    stopped_early: str | None


@contextmanager
def _endpoint(name: str, stall_s: float) -> Iterator[tuple[str, Callable[[], tuple[int, int | None]]]]:
    """The endpoint's base URL, and what it saw (requests received, most open at once)."""
    if name in ("stall", "empty"):
        state = SlowServer(Slowness(name), stall_s)
        server = ServerThread(slow_app(state)).start()
        seen: Callable[[], tuple[int, int | None]] = lambda: (state.received, state.max_open)  # noqa: E731
    else:
        faults = {"correct": frozenset(), "hang": {Fault.HANG}, "endless": {Fault.ENDLESS}}[name]
        server = ServerThread(create_app(FakeLLMConfig(faults=frozenset(faults)))).start()
        fake = server.app.state.fake
        seen = lambda: (sum(r.path.endswith("/chat/completions") for r in fake.recorded), None)  # noqa: E731
    try:
        yield f"{server.url}/v1", seen
    finally:
        server.stop()


def measure(name: str, timeout_s: float, stall_s: float) -> Measured:
    """Run `check` with its defaults (and `--timeout-s`) against one endpoint, as a separate process."""
    with tempfile.TemporaryDirectory() as folder, _endpoint(name, stall_s) as (url, seen):
        report = Path(folder) / "report.json"
        command = [sys.executable, "-m", "harness", "check", "--url", url, "--timeout-s", f"{timeout_s:g}"]
        command += ["--quiet", "--json", str(report), "--report-dir", folder]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        seconds = time.perf_counter() - started
        requests, max_open = seen()
        stopped = json.loads(report.read_text())["stopped_early"] if report.exists() else None
    return Measured(name, seconds, done.returncode, requests, max_open, stopped)


@contextmanager
def _fake_llm_process(*args: str) -> Iterator[str]:
    """`vapi-harness fake-llm ARGS` as its own process (its CPU is not ours), and its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", "fake-llm", "--port", "0", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        for _ in range(20):  # it names its URL on one of its first lines
            match = re.search(r"http://127\.0\.0\.1:\d+/v1", process.stderr.readline())
            if match:
                break
        else:
            raise RuntimeError("the fake LLM did not say where it listens")
        yield match.group(0)
    finally:
        process.terminate()
        process.wait(timeout=30)


def timing_errors(max_in_flight: int, repeat: int, ttft_ms: float = 50.0) -> list[float]:
    """Each streamed turn's time to its first event minus the fake's `ttft_ms`, over `repeat` passes of the
    default suite with at most `max_in_flight` requests at once; sorted."""
    with _fake_llm_process("--ttft-ms", f"{ttft_ms:g}", "--chunk-delay-ms", "10") as url:
        probes = default_probes(Target(CustomLLMModel(url=url, model="m")))
        info = RunInfo("timing", url, "m", "variable", False, False, 20.0, repeat, False,
                       tuple(p.name for p in probes), datetime.now(UTC))  # fmt: skip
        runner = Runner(info, probes, RunSettings(repeat=repeat, max_in_flight=max_in_flight))

        async def drain() -> None:
            async for _ in runner.events():
                pass

        asyncio.run(drain())
    return sorted(
        ms - ttft_ms
        for r in runner.run.results
        if r.exchange.streamed and r.probe.expect is Expect.TURN and (ms := r.metrics.get("first_event_ms")) is not None
    )


def _timing_lines(repeat: int) -> list[str]:
    out = [f"time to first event minus the fake's 50 ms, streamed turns of {repeat} passes (fake in its own process):"]
    for label, in_flight in (("one at a time", 1), (f"{MAX_IN_FLIGHT} in flight", MAX_IN_FLIGHT)):
        errors = timing_errors(in_flight, repeat)
        p50, p99 = percentile(errors, 0.5), percentile(errors, 0.99)
        out.append(f"  {label:<14} n {len(errors):>4}  p50 {p50:6.3f} ms  p99 {p99:6.3f} ms  max {errors[-1]:6.3f} ms")
    return out


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be greater than 0")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, print a table, and return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.check_slow", description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=ENDPOINTS, action="append", help="measure only this endpoint; repeatable")
    parser.add_argument("--timeout-s", type=_positive, default=20.0, help="check's --timeout-s (default 20)")
    parser.add_argument("--stall-s", type=_positive, default=10.0, help="the stalling server's pause (default 10)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--timing-passes",
        type=int,
        default=0,
        metavar="N",
        help="also time the first event of N passes of the suite on a correct fake, one request at a time and "
        "concurrently (default 0: not measured)",
    )
    args = parser.parse_args(argv)
    target_s = args.timeout_s + TARGET_MARGIN_S
    names = args.only or (ENDPOINTS if args.timing_passes == 0 else ())
    results = [measure(name, args.timeout_s, args.stall_s) for name in names]
    out = [f"target: at most --timeout-s + {TARGET_MARGIN_S:g} s = {target_s:g} s on a slow endpoint"]
    out.append(
        f"{'endpoint':<9} {'seconds':>8} {'baseline':>9} {'ratio':>6} {'exit':>5} {'requests':>9} {'max open':>9}"
    )
    ok = True
    for m in results:
        baseline = BASELINE_S[m.endpoint]
        limit = baseline * CORRECT_SLACK if m.endpoint == "correct" else target_s
        met = m.seconds <= limit
        ok = ok and met
        line = f"{m.endpoint:<9} {m.seconds:>8.1f} {baseline:>9.1f} {m.seconds / baseline:>5.2f}x {m.exit_code:>5}"
        line += f" {m.requests:>9} {'-' if m.max_open is None else m.max_open:>9}  {'meets' if met else 'MISSES'}"
        out.append(line)
        if m.stopped_early:
            out.append(f"{'':<10}stopped early: {m.stopped_early}")
    if args.timing_passes > 0:
        out += _timing_lines(args.timing_passes)
    sys.stdout.write("\n".join(out) + "\n")
    if args.json:
        args.json.write_text(json.dumps([asdict(m) for m in results], indent=2) + "\n", encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
