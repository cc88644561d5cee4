"""What `vapi-harness explore` costs of its own, and what `--concurrency` buys, against a local endpoint.

Run it at the repository root:

    .venv/bin/python -m benchmarks.explore [--examples 40] [--ttft-ms 100] [--json PATH]

The endpoint is the fake LLM (`vapi-harness fake-llm`) in a process of its own, so its CPU is not this one's:
a first token after `--ttft-ms`, then a short reply, a chunk every `--chunk-delay-ms`.

Three runs, in one process, one after the other:

- **baseline**: one plain Vapi request (`mock_vapi.build_request`), streamed and not in turn as the generator
  draws them, sent and read back to back by the same reader (`mock_vapi.reader.read_into`) `--examples` times:
  the exchange alone, nothing generated or judged;
- **explore, concurrency 1** and **explore, concurrency 4**: the explorer (`harness.explore.runner.Explorer`,
  seed 1, no example database) for `--examples` generated conversations.

Our own work per example is what the explorer measures around each exchange: Hypothesis drawing the
conversation ("generate"), building the request and checking Vapi's rules ("build"), judging it and keeping
its failures ("judge"); its median over the concurrency-1 run is the figure. Targets: at most 5 ms median of our
own work per example; concurrency 4 at least 3x the examples/s of concurrency 1. Exit status: 0 when both are
met, 1 when one is missed, 2 when the benchmark cannot run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.explore.results import ExploreInfo, ExploreResult
from harness.explore.runner import Explorer, ExploreSettings
from mock_vapi import CustomLLMModel, build_request
from mock_vapi.exchange import Exchange, Outcome
from mock_vapi.reader import ReadLimits, new_session, read_into

__all__ = ["main"]

OWN_MS_TARGET = 5.0
SPEEDUP_TARGET = 3.0
REPLY = "Sure, we open at nine tomorrow and close at five in the afternoon."
STARTUP_TIMEOUT_S = 30.0
_URL = re.compile(r"http://127\.0\.0\.1:\d+/v1")


class BenchmarkError(Exception):
    """The benchmark cannot run (the endpoint did not start)."""


@contextmanager
def _fake_llm(ttft_ms: float, chunk_delay_ms: float) -> Iterator[str]:
    """The fake LLM in a process of its own; yields its base URL."""
    command = [sys.executable, "-m", "harness", "fake-llm", "--port", "0", "--ttft-ms", str(ttft_ms)]
    command += ["--chunk-delay-ms", str(chunk_delay_ms), "--reply", REPLY]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        url = None
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            match = _URL.search(line)
            url = match.group(0) if match else None
        if url is None:
            raise BenchmarkError("the fake LLM did not say where it listens")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _baseline(url: str, examples: int) -> float:
    """Examples/s of the exchange alone: one plain request, sent and read back to back."""
    model = CustomLLMModel(url=url, model="gpt-4o")
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    # Streamed and not, in turn, as the generator draws them.
    requests = [build_request(model, messages, stream=stream) for stream in (True, False)]

    async def go() -> float:
        async with new_session() as session:
            t0 = time.perf_counter()
            for index in range(examples):
                request = requests[index % 2]
                exchange = await read_into(session, Exchange(request, time.perf_counter()), ReadLimits())
                if exchange.outcome is not Outcome.COMPLETE:
                    raise BenchmarkError(f"the baseline request failed: {exchange.error}")
            return examples / (time.perf_counter() - t0)

    return asyncio.run(go())


def _explore(url: str, examples: int, concurrency: int) -> ExploreResult:
    info = ExploreInfo(
        run_id="benchmark",
        url=url,
        builtin=False,
        authenticated=False,
        started_at=datetime.now(UTC),
        seed=1,
        max_examples=examples,
        max_run_s=600.0,
        concurrency=concurrency,
        strict=False,
        database=None,
    )
    settings = ExploreSettings(max_examples=examples, max_run_s=600.0, concurrency=concurrency)
    return Explorer(info, settings, lambda event: None).explore()


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run(examples: int, ttft_ms: float, chunk_delay_ms: float) -> dict[str, Any]:
    """Run the three measurements; the figures and whether each target was met."""
    with _fake_llm(ttft_ms, chunk_delay_ms) as url:
        _baseline(url, 3)  # warm the connection and the endpoint
        bare = _baseline(url, examples)
        one = _explore(url, examples, 1)
        four = _explore(url, examples, 4)
    for found in (one, four):
        if found.failures:
            raise BenchmarkError(f"the healthy endpoint failed: {', '.join(map(str, found.failures))}")
    own_ms = _median(one.own_ms)
    speedup = four.examples_per_s / one.examples_per_s
    return {
        "examples": examples,
        "ttft_ms": ttft_ms,
        "chunk_delay_ms": chunk_delay_ms,
        "baseline_examples_per_s": round(bare, 2),
        "explore_c1_examples_per_s": round(one.examples_per_s, 2),
        "explore_c4_examples_per_s": round(four.examples_per_s, 2),
        "c1_vs_baseline": round(one.examples_per_s / bare, 3),
        "c4_vs_c1": round(speedup, 3),
        "own_ms_median": round(own_ms, 3),
        "own_ms_p90": round(sorted(one.own_ms)[int(len(one.own_ms) * 0.9)], 3),
        "part_ms_median": {part: round(_median(values), 3) for part, values in one.part_ms.items()},
        "targets": {
            f"own_ms_median <= {OWN_MS_TARGET:g}": own_ms <= OWN_MS_TARGET,
            f"c4_vs_c1 >= {SPEEDUP_TARGET:g}": speedup >= SPEEDUP_TARGET,
        },
    }


def _print(figures: dict[str, Any]) -> None:
    rows = [
        ("baseline (exchange alone)", f"{figures['baseline_examples_per_s']:.2f} examples/s"),
        ("explore --concurrency 1", f"{figures['explore_c1_examples_per_s']:.2f} examples/s"),
        ("explore --concurrency 4", f"{figures['explore_c4_examples_per_s']:.2f} examples/s"),
        ("concurrency 1 / baseline", f"{figures['c1_vs_baseline']:.3f}"),
        ("concurrency 4 / concurrency 1", f"{figures['c4_vs_c1']:.2f}x"),
        ("own work per example, median", f"{figures['own_ms_median']:.2f} ms (p90 {figures['own_ms_p90']:.2f} ms)"),
    ]
    rows += [(f"  of which {part}", f"{ms:.2f} ms") for part, ms in figures["part_ms_median"].items()]
    width = max(len(name) for name, _ in rows)
    lines = [f"explore benchmark: {figures['examples']} examples, endpoint ttft {figures['ttft_ms']:g} ms"]
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    lines += [f"  target {target}: {'met' if met else 'MISSED'}" for target, met in figures["targets"].items()]
    sys.stdout.write("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; exit 0 when the targets are met, 1 when one is missed, 2 when it cannot run."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=40, help="examples per run (default 40)")
    parser.add_argument("--ttft-ms", type=float, default=100.0, help="the endpoint's time to first token")
    parser.add_argument("--chunk-delay-ms", type=float, default=1.0, help="the endpoint's gap between chunks")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    try:
        figures = run(args.examples, args.ttft_ms, args.chunk_delay_ms)
    except BenchmarkError as exc:
        sys.stderr.write(f"benchmark: {exc}\n")
        return 2
    _print(figures)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if all(figures["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
