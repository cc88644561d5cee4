"""What the reference proxy adds to a stream, next to calling the upstream directly and to LiteLLM's proxy.

Run it from a fresh clone, at the repository root:

    python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && .venv/bin/python -m benchmarks.proxy_overhead

    # optional, for the LiteLLM column (not a project dependency):
    .venv/bin/pip install 'litellm[proxy]'

Options: `--levels 1,50,200` (concurrent streams), `--skip-litellm`, `--burst`, `--json PATH`.

The fake upstream (`vapi-harness fake-llm`) has fixed timing: a role chunk 50 ms after the request, then one
chunk per word every 20 ms; the reply has 49 words, so each stream carries 50 chunks, 49 of them with content.
The same load goes to the fake directly, through `vapi-harness proxy`, through a bare aiohttp relay
(`benchmarks/bare_relay.py`: the machine's floor for a relay on the same library) and, when installed,
through LiteLLM's proxy.

A level of N concurrent streams runs in blocks: N callers, each streaming back to back, their first requests
spread evenly over one stream's duration (steady concurrency, as calls arrive; `--burst` starts every stream of
a block at once instead, which measures request intake queueing). The targets take turns block by block (the
order rotates each block), so a drift of the machine hits all of them alike: at 1 stream, 100 blocks of 1
stream; at 50 and 200, 2 blocks of 3 streams per caller. One uncounted block per target warms connections
first. The relays run on core 0; the fake and this client on core 1.

The client stamps (`time.perf_counter`) each content-bearing SSE event. "Added" numbers compare distributions,
not paired streams: the p50 (p99) of the time to first content through a proxy minus the p50 (p99) of the
time to first content sent directly at the same concurrency; likewise for the gap between content events.
A stream is *buffered* when all its content events arrive within 5 ms. Proxy CPU per stream is the proxy
process tree's utime+stime over its blocks divided by their streams; peak RSS is the tree's summed `VmHWM`
at the end. Exit status: 0 when every target is met, 1 when one is missed, 2 when the benchmark cannot run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp

from harness.metrics import percentile
from harness.protocol import SSEDecoder, delta_content

__all__ = [
    "BUFFERED_SPAN_MS",
    "CHUNK_DELAY_MS",
    "REPLY_WORDS",
    "TTFT_MS",
    "BenchmarkError",
    "LevelResult",
    "main",
]

log = logging.getLogger(__name__)

TTFT_MS = 50.0
CHUNK_DELAY_MS = 20.0
REPLY_WORDS = 49
REPLY = " ".join(f"w{i}" for i in range(REPLY_WORDS))
BUFFERED_SPAN_MS = 5.0
STREAM_S = (TTFT_MS + (REPLY_WORDS - 1) * CHUNK_DELAY_MS) / 1000
BLOCKS = {1: 100}  # level -> blocks per target; 2 otherwise
STARTUP_TIMEOUT_S = 30.0
LITELLM_STARTUP_TIMEOUT_S = 120.0
STREAM_TIMEOUT_S = 30.0
REQUEST_BODY = {"model": "bench", "messages": [{"role": "user", "content": "hi"}], "stream": True}

# level -> (added TTFT p50 ms, added TTFT p99 ms)
TTFT_TARGETS_MS = {1: (0.6, 2.0), 50: (1.0, 5.0), 200: (3.0, 10.0)}
LITELLM_MIN_RATIO = 10.0
MAX_CPU_MS_PER_STREAM = 1.5
MAX_PEAK_RSS_MB = 60.0

PROXY_CORE = 0
CLIENT_CORE = 1


class BenchmarkError(Exception):
    """The benchmark cannot run: a server did not start, or the machine cannot pin cores."""


@dataclass
class _Stream:
    error: str | None = None
    content_times: list[float] = field(default_factory=list)
    start: float = 0.0


@dataclass
class LevelResult:
    """One target at one concurrency level."""

    target: str
    level: int
    streams: int
    errors: int
    buffered: int
    wall_s: float
    ttft_ms: list[float]
    gaps_ms: list[float]
    cpu_ms: float | None
    first_error: str | None = None

    @property
    def streams_per_s(self) -> float:
        """Completed streams per second of wall time."""
        return (self.streams - self.errors) / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def cpu_ms_per_stream(self) -> float | None:
        """Proxy CPU time per stream, or None for the direct target."""
        return None if self.cpu_ms is None or self.streams == 0 else self.cpu_ms / self.streams

    def ttft_p(self, q: float) -> float:
        """Percentile of the time to first content."""
        return percentile(sorted(self.ttft_ms), q) if self.ttft_ms else float("nan")

    def gap_p(self, q: float) -> float:
        """Percentile of the gap between content events."""
        return percentile(sorted(self.gaps_ms), q) if self.gaps_ms else float("nan")


@dataclass
class _Target:
    name: str
    base_url: str
    process: subprocess.Popen[bytes] | None = None


# --- processes -------------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pinned(core: int, argv: list[str], pin: bool) -> list[str]:
    return ["taskset", "-c", str(core), *argv] if pin else argv


def _start(argv: list[str], stderr: IO[bytes], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    # A new session lets us stop the server together with any workers it forks.
    return subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=env, start_new_session=True
    )


def _log_tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()[-5:]
    except OSError:
        return "(no log)"
    return " | ".join(lines) or "(empty log)"


def _wait_for_port(process: subprocess.Popen[bytes], port: int, timeout_s: float, name: str, log_path: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkError(
                f"{name} exited with status {process.returncode} before listening: {_log_tail(log_path)}"
            )
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise BenchmarkError(f"{name} did not listen on 127.0.0.1:{port} within {timeout_s:.0f} s: {_log_tail(log_path)}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


def _tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo and len(found) < 10_000:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def _cpu_ms(pid: int) -> float:
    ticks = 0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks * 1000 / os.sysconf("SC_CLK_TCK")


def _peak_rss_mb(pid: int) -> float:
    kib = 0
    for member in _tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                kib += int(line.split()[1])
    return kib / 1024


# --- client ----------------------------------------------------------------------------------------------


async def _one_stream(session: aiohttp.ClientSession, url: str) -> _Stream:
    stream = _Stream(start=time.perf_counter())
    try:
        async with session.post(url, json=REQUEST_BODY) as response:
            if response.status != 200:
                body = await response.content.read(500)
                stream.error = f"HTTP {response.status}: {body[:200]!r}"
                return stream
            decoder = SSEDecoder()
            done = False
            async for data in response.content.iter_any():
                for event in decoder.feed(data, time.perf_counter()):
                    if event.is_done:
                        done = True
                    elif delta_content(json.loads(event.data)):
                        stream.content_times.append(event.t)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        stream.error = f"{type(exc).__name__}: {exc}"
        return stream
    if not done:
        stream.error = "the stream ended without [DONE]"
    elif len(stream.content_times) != REPLY_WORDS:
        stream.error = f"{len(stream.content_times)} content events, expected {REPLY_WORDS}"
    return stream


def _blocks(level: int) -> int:
    return BLOCKS.get(level, 2)


def _streams_per_caller(level: int) -> int:
    return 1 if level == 1 else 3


async def _worker(session: aiohttp.ClientSession, url: str, delay_s: float, count: int) -> list[_Stream]:
    await asyncio.sleep(delay_s)
    return [await _one_stream(session, url) for _ in range(count)]


async def _block(session: aiohttp.ClientSession, url: str, level: int, burst: bool) -> tuple[list[_Stream], float]:
    """One block of streams at `level` concurrency, and its wall time without the staggered start."""
    count = _streams_per_caller(level)
    started = time.perf_counter()
    if burst:
        streams: list[_Stream] = []
        for _ in range(count):
            streams.extend(await asyncio.gather(*(_one_stream(session, url) for _ in range(level))))
        return streams, time.perf_counter() - started
    spread_s = STREAM_S * (level - 1) / level
    workers = (_worker(session, url, i * STREAM_S / level, count) for i in range(level))
    streams = [s for done in await asyncio.gather(*workers) for s in done]
    return streams, time.perf_counter() - started - spread_s


@dataclass
class _Tally:
    streams: list[_Stream] = field(default_factory=list)
    wall_s: float = 0.0
    cpu_ms: float | None = None


async def _run_level(targets: Sequence[_Target], level: int, burst: bool) -> dict[str, LevelResult]:
    timeout = aiohttp.ClientTimeout(total=STREAM_TIMEOUT_S)
    tallies = {t.name: _Tally(cpu_ms=None if t.process is None else 0.0) for t in targets}
    async with contextlib.AsyncExitStack() as stack:
        sessions = {}
        for target in targets:
            connector = aiohttp.TCPConnector(limit=0)
            session = await stack.enter_async_context(aiohttp.ClientSession(connector=connector, timeout=timeout))
            sessions[target.name] = session
            # One uncounted block opens every connection (ours and the proxy's to the fake), warms lazy paths.
            await _block(session, f"{target.base_url}/chat/completions", level, burst)
        for block in range(_blocks(level)):
            turn = block % len(targets)
            for target in [*targets[turn:], *targets[:turn]]:
                tally = tallies[target.name]
                pid = target.process.pid if target.process is not None else None
                cpu_before = _cpu_ms(pid) if pid is not None else 0.0
                streams, wall_s = await _block(
                    sessions[target.name], f"{target.base_url}/chat/completions", level, burst
                )
                tally.streams += streams
                tally.wall_s += wall_s
                if pid is not None and tally.cpu_ms is not None:
                    tally.cpu_ms += _cpu_ms(pid) - cpu_before
    return {name: _result(name, level, tally) for name, tally in tallies.items()}


def _result(name: str, level: int, tally: _Tally) -> LevelResult:
    streams = tally.streams
    ok = [s for s in streams if s.error is None]
    errors = [s.error for s in streams if s.error is not None]
    gaps_ms = [(b - a) * 1000 for s in ok for a, b in zip(s.content_times, s.content_times[1:], strict=False)]
    buffered = sum(1 for s in ok if (s.content_times[-1] - s.content_times[0]) * 1000 < BUFFERED_SPAN_MS)
    return LevelResult(
        target=name,
        level=level,
        streams=len(streams),
        errors=len(errors),
        buffered=buffered,
        wall_s=tally.wall_s,
        ttft_ms=[(s.content_times[0] - s.start) * 1000 for s in ok],
        gaps_ms=gaps_ms,
        cpu_ms=tally.cpu_ms,
        first_error=errors[0] if errors else None,
    )


# --- report ----------------------------------------------------------------------------------------------


@dataclass
class _Check:
    name: str
    value: str
    target: str
    passed: bool | None  # None: skipped


def _added(results: dict[tuple[str, int], LevelResult], name: str, level: int) -> tuple[float, float, float, float]:
    via, direct = results[(name, level)], results[("direct", level)]
    return (
        via.ttft_p(0.5) - direct.ttft_p(0.5),
        via.ttft_p(0.99) - direct.ttft_p(0.99),
        via.gap_p(0.5) - direct.gap_p(0.5),
        via.gap_p(0.99) - direct.gap_p(0.99),
    )


def _ratio(theirs_ms: float, ours_ms: float) -> float:
    return float("inf") if ours_ms <= 0 else theirs_ms / ours_ms


def _checks(
    results: dict[tuple[str, int], LevelResult], levels: Sequence[int], litellm: bool, peak_rss_mb: float
) -> list[_Check]:
    checks: list[_Check] = []
    for level in levels:
        p50, p99, _, _ = _added(results, "proxy", level)
        if level in TTFT_TARGETS_MS:
            t50, t99 = TTFT_TARGETS_MS[level]
            checks.append(_Check(f"added TTFT p50 @{level}", f"{p50:.2f} ms", f"<= {t50} ms", p50 <= t50))
            checks.append(_Check(f"added TTFT p99 @{level}", f"{p99:.2f} ms", f"<= {t99} ms", p99 <= t99))
        errors = results[("proxy", level)].errors
        checks.append(_Check(f"errors @{level}", str(errors), "0", errors == 0))
        if litellm:
            ratio = _ratio(_added(results, "litellm", level)[0], p50)
            checks.append(
                _Check(f"LiteLLM/ours added TTFT p50 @{level}", f"{ratio:.1f}x", ">= 10x", ratio >= LITELLM_MIN_RATIO)
            )
        else:
            checks.append(_Check(f"LiteLLM/ours added TTFT p50 @{level}", "-", ">= 10x", None))
        cpu = results[("proxy", level)].cpu_ms_per_stream or 0.0
        checks.append(
            _Check(
                f"proxy CPU per stream @{level}",
                f"{cpu:.2f} ms",
                f"<= {MAX_CPU_MS_PER_STREAM} ms",
                cpu <= MAX_CPU_MS_PER_STREAM,
            )
        )
    buffered = sum(results[("proxy", level)].buffered for level in levels)
    checks.append(_Check("buffered streams (all levels)", str(buffered), "0", buffered == 0))
    checks.append(
        _Check("proxy peak RSS", f"{peak_rss_mb:.1f} MB", f"< {MAX_PEAK_RSS_MB:.0f} MB", peak_rss_mb < MAX_PEAK_RSS_MB)
    )
    return checks


def _format(
    results: dict[tuple[str, int], LevelResult],
    levels: Sequence[int],
    names: Sequence[str],
    peak_rss_mb: dict[str, float],
    checks: Sequence[_Check],
) -> str:
    lines = [
        f"Proxy overhead: fake upstream {TTFT_MS:.0f} ms to first chunk, {CHUNK_DELAY_MS:.0f} ms between chunks, "
        f"{REPLY_WORDS + 1} chunks ({REPLY_WORDS} with content)",
        "Added = p(via target) - p(direct) at the same concurrency (distributions compared, not paired streams)",
        "",
        f"{'target':<8} {'conc':>4} {'streams':>7} {'err':>3} {'buf':>3} {'TTFT p50':>8} {'TTFT p99':>8} "
        f"{'+TTFT p50':>9} {'+TTFT p99':>9} {'gap p50':>7} {'gap p99':>7} {'+gap p50':>8} {'+gap p99':>8} "
        f"{'streams/s':>9} {'CPU/stream':>10}",
    ]
    for level in levels:
        for name in names:
            r = results[(name, level)]
            a = ["-"] * 4 if name == "direct" else [f"{v:.2f}" for v in _added(results, name, level)]
            cpu = "-" if r.cpu_ms_per_stream is None else f"{r.cpu_ms_per_stream:.2f} ms"
            lines.append(
                f"{name:<8} {level:>4} {r.streams:>7} {r.errors:>3} {r.buffered:>3} {r.ttft_p(0.5):>8.2f} "
                f"{r.ttft_p(0.99):>8.2f} {a[0]:>9} {a[1]:>9} {r.gap_p(0.5):>7.2f} {r.gap_p(0.99):>7.2f} "
                f"{a[2]:>8} {a[3]:>8} {r.streams_per_s:>9.1f} {cpu:>10}"
            )
    lines.append("(times in ms)")
    lines.append("")
    lines.extend(f"peak RSS {name}: {mb:.1f} MB" for name, mb in peak_rss_mb.items())
    for level in levels:
        ours_cpu, bare_cpu = results[("proxy", level)].cpu_ms_per_stream, results[("bare", level)].cpu_ms_per_stream
        cpu_ratio = _ratio(ours_cpu or 0.0, bare_cpu or 0.0)
        lines.append(
            f"ours vs bare relay @{level}: added TTFT p50 {_added(results, 'proxy', level)[0]:.2f} vs "
            f"{_added(results, 'bare', level)[0]:.2f} ms, CPU per stream {cpu_ratio:.2f}x the bare relay's"
        )
    if "litellm" in names:
        for level in levels:
            ours, theirs = _added(results, "proxy", level), _added(results, "litellm", level)
            lines.append(
                f"LiteLLM/ours added TTFT @{level}: p50 {_ratio(theirs[0], ours[0]):.1f}x, "
                f"p99 {_ratio(theirs[1], ours[1]):.1f}x"
            )
    else:
        lines.append("LiteLLM: skipped (ratio not measured)")
    lines.append("")
    for check in checks:
        verdict = "SKIP" if check.passed is None else "PASS" if check.passed else "MISS"
        lines.append(f"{verdict}  {check.name:<38} {check.value:>10}  (target {check.target})")
    return "\n".join(lines) + "\n"


# --- driver ----------------------------------------------------------------------------------------------


def _litellm_config(path: Path, upstream_port: int) -> None:
    path.write_text(
        "model_list:\n"
        "  - model_name: bench\n"
        "    litellm_params:\n"
        "      model: openai/bench\n"
        f"      api_base: http://127.0.0.1:{upstream_port}/v1\n"
        "      api_key: x\n"
    )


async def _measure(
    targets: Sequence[_Target], levels: Sequence[int], burst: bool
) -> dict[tuple[str, int], LevelResult]:
    results: dict[tuple[str, int], LevelResult] = {}
    for level in levels:
        per_block = level * _streams_per_caller(level)
        log.info("%d concurrent stream(s): %d block(s) of %d per target", level, _blocks(level), per_block)
        for name, result in (await _run_level(targets, level, burst)).items():
            if result.first_error is not None:
                log.warning("%s @%d: %d error(s), first: %s", name, level, result.errors, result.first_error)
            results[(name, level)] = result
    return results


def run_benchmark(levels: Sequence[int], litellm: bool, workdir: Path, burst: bool = False) -> dict[str, Any]:
    """Start the servers, measure every level against every target, stop the servers; return the results."""
    pin = shutil.which("taskset") is not None and len(os.sched_getaffinity(0)) >= 2
    if pin:
        os.sched_setaffinity(0, {CLIENT_CORE})
    else:
        log.warning("Running unpinned: needs `taskset` and two cores; numbers will be noisier")
    upstream_port, proxy_port = _free_port(), _free_port()
    harness_cli = [sys.executable, "-m", "harness"]
    fake_argv = [*harness_cli, "fake-llm", "--host", "127.0.0.1", "--port", str(upstream_port)]
    fake_argv += ["--ttft-ms", str(TTFT_MS), "--chunk-delay-ms", str(CHUNK_DELAY_MS), "--reply", REPLY]
    upstream_url = f"http://127.0.0.1:{upstream_port}/v1"
    proxy_argv = [*harness_cli, "proxy", "--upstream-url", upstream_url, "--host", "127.0.0.1"]
    proxy_argv += ["--port", str(proxy_port)]
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[IO[bytes]] = []
    try:
        fake_log = workdir / "fake-llm.log"
        logs.append(fake_log.open("wb"))
        fake = _start(_pinned(CLIENT_CORE, fake_argv, pin), logs[-1])
        processes.append(fake)
        _wait_for_port(fake, upstream_port, STARTUP_TIMEOUT_S, "fake-llm", fake_log)
        targets = [_Target("direct", upstream_url)]

        proxy_log = workdir / "proxy.log"
        logs.append(proxy_log.open("wb"))
        proxy = _start(_pinned(PROXY_CORE, proxy_argv, pin), logs[-1], env={**os.environ, "OPENAI_API_KEY": "x"})
        processes.append(proxy)
        _wait_for_port(proxy, proxy_port, STARTUP_TIMEOUT_S, "proxy", proxy_log)
        targets.append(_Target("proxy", f"http://127.0.0.1:{proxy_port}/v1", proxy))

        bare_port = _free_port()
        bare_log = workdir / "bare.log"
        logs.append(bare_log.open("wb"))
        bare_argv = [sys.executable, "-m", "benchmarks.bare_relay", "--upstream-url", upstream_url]
        bare = _start(_pinned(PROXY_CORE, [*bare_argv, "--port", str(bare_port)], pin), logs[-1])
        processes.append(bare)
        _wait_for_port(bare, bare_port, STARTUP_TIMEOUT_S, "bare relay", bare_log)
        targets.append(_Target("bare", f"http://127.0.0.1:{bare_port}/v1", bare))

        if litellm:
            litellm_port = _free_port()
            config = workdir / "litellm.yaml"
            _litellm_config(config, upstream_port)
            executable = shutil.which("litellm", path=str(Path(sys.executable).parent)) or shutil.which("litellm")
            if executable is None:
                raise BenchmarkError("`import litellm` works but no `litellm` command was found")
            litellm_log = workdir / "litellm.log"
            logs.append(litellm_log.open("wb"))
            # Keep LiteLLM on loopback (no cost-map download, no telemetry) and, like ours, without client auth.
            env = {
                **os.environ,
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "LITELLM_TELEMETRY": "False",
                "LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true",
            }
            argv = [executable, "--config", str(config), "--host", "127.0.0.1", "--port", str(litellm_port)]
            process = _start(_pinned(PROXY_CORE, [*argv, "--telemetry", "False"], pin), logs[-1], env=env)
            processes.append(process)
            _wait_for_port(process, litellm_port, LITELLM_STARTUP_TIMEOUT_S, "litellm", litellm_log)
            targets.append(_Target("litellm", f"http://127.0.0.1:{litellm_port}", process))

        started = time.perf_counter()
        results = asyncio.run(_measure(targets, levels, burst))
        peak = {t.name: _peak_rss_mb(t.process.pid) for t in targets if t.process is not None}
        return {
            "results": results,
            "names": [t.name for t in targets],
            "peak_rss_mb": peak,
            "pinned": pin,
            "measure_s": time.perf_counter() - started,
        }
    finally:
        for process in reversed(processes):
            _stop(process)
        for handle in logs:
            handle.close()


def _levels(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from exc
    if not levels or any(level < 1 or level > 1000 for level in levels):
        raise argparse.ArgumentTypeError(f"{text!r}: each level must be between 1 and 1000")
    return levels


def _results_json(run: dict[str, Any], levels: Sequence[int], checks: Sequence[_Check]) -> dict[str, Any]:
    results: dict[tuple[str, int], LevelResult] = run["results"]
    rows = []
    for (name, level), r in results.items():
        row: dict[str, Any] = {
            "target": name,
            "level": level,
            "streams": r.streams,
            "errors": r.errors,
            "buffered": r.buffered,
            "wall_s": r.wall_s,
            "streams_per_s": r.streams_per_s,
            "ttft_ms": {"p50": r.ttft_p(0.5), "p99": r.ttft_p(0.99)},
            "gap_ms": {"p50": r.gap_p(0.5), "p99": r.gap_p(0.99)},
            "cpu_ms_per_stream": r.cpu_ms_per_stream,
        }
        if name != "direct":
            a = _added(results, name, level)
            row["added_ttft_ms"] = {"p50": a[0], "p99": a[1]}
            row["added_gap_ms"] = {"p50": a[2], "p99": a[3]}
        rows.append(row)
    return {
        "upstream": {"ttft_ms": TTFT_MS, "chunk_delay_ms": CHUNK_DELAY_MS, "chunks": REPLY_WORDS + 1},
        "levels": list(levels),
        "pinned": run["pinned"],
        "peak_rss_mb": run["peak_rss_mb"],
        "rows": rows,
        "checks": [{"name": c.name, "value": c.value, "target": c.target, "passed": c.passed} for c in checks],
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table to stdout; 0 when every target is met, else 1 (2: cannot run)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.proxy_overhead", description=__doc__.splitlines()[0])
    parser.add_argument("--levels", type=_levels, default=[1, 50, 200], help="concurrent streams (default 1,50,200)")
    parser.add_argument("--skip-litellm", action="store_true", help="do not measure LiteLLM's proxy")
    parser.add_argument(
        "--burst", action="store_true", help="start every stream of a round at once (measures request intake queueing)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", stream=sys.stderr)
    log.setLevel(logging.INFO)
    litellm = not args.skip_litellm
    if litellm and importlib.util.find_spec("litellm") is None:
        log.warning("LiteLLM is not installed; skipping its column. To include it: pip install 'litellm[proxy]'")
        litellm = False
    try:
        with tempfile.TemporaryDirectory(prefix="proxy-overhead-") as workdir:
            run = run_benchmark(args.levels, litellm, Path(workdir), args.burst)
    except BenchmarkError as exc:
        log.error("The benchmark stopped: %s", exc)
        return 2
    results: dict[tuple[str, int], LevelResult] = run["results"]
    checks = _checks(results, args.levels, litellm, run["peak_rss_mb"]["proxy"])
    sys.stdout.write(_format(results, args.levels, run["names"], run["peak_rss_mb"], checks))
    if args.json is not None:
        try:
            args.json.write_text(json.dumps(_results_json(run, args.levels, checks), indent=2) + "\n")
        except OSError as exc:
            log.error("Cannot write %s: %s", args.json, exc)
            return 2
    return 0 if all(c.passed is not False for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
