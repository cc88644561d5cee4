"""Capacity: how many concurrent calls one Locust worker core, and two workers on this machine, hold within the
TTFT-error target (p50 at most 1 ms, p99 at most 5 ms).

Run it from a fresh clone, at the repository root:

    python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && .venv/bin/python -m benchmarks.capacity

The calls are realistic ones: the shipped locustfile's `VapiCaller` plays the built-in call (three turns,
the history growing) with 1 to 3 s of think time before each turn after the first, against
`benchmarks/paced_upstream.py` (the reply of `benchmarks/loadgen.py`: first content 70 ms after the request,
50 chunks 20 ms apart). The users are spawned in 2 s; after 4 s more (every caller has finished a turn and
thought, so the callers that arrived together no longer speak together) every count is reset and the level
runs for `--seconds` (default 20). The TTFT error is the measured time to first content minus those 70 ms.

Two set-ups, each stepped up in concurrent calls (100, 200, 400, ... doubling until a level breaks the target
or fails a turn, then a few bisection steps between the last level that held and the first that broke):

- `one`: one Locust process pinned to core 0, the upstream on core 1.
- `two`: a Locust master and two workers (Locust's own `--master`/`--worker` on the shipped locustfile), not
  pinned, beside the upstream pinned to core 1. The master merges the workers' samples.

Each Locust process counts its own CPU over the measured window (this file, loaded by Locust beside the
shipped locustfile, does it; sampling `/proc` from outside would take the measured core). The upstream's CPU
is read from `/proc` over the whole level. Per level: calls, turns per second, CPU (share of one core),
TTFT error p50/p99, failed turns, held or not. Exit status: 0 when it measured, 2 when it cannot run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.loadgen import CHUNK_DELAY_MS, EXPECTED_FIRST_CONTENT_MS, REPLY, TTFT_MS
from benchmarks.proxy_overhead import BenchmarkError, _free_port, _log_tail, _start, _stop, _wait_for_port

__all__ = ["main"]

HERE = Path(__file__).resolve().parent
LOCUSTFILE = HERE.parent / "harness" / "load" / "locustfile.py"
THINK_S = "1,3"
SPAWN_S, SETTLE_S = 2.0, 4.0
TTFT_P50_MS, TTFT_P99_MS = 1.0, 5.0  # the target: the TTFT error at p50 and at p99
_RESET = "capacity_reset"  # the master tells its workers that the measured window starts
_STEP_USERS = 50  # bisection stops at this resolution


@dataclass
class Level:
    """One level's figures."""

    users: int
    turns: int = 0
    window_s: float = 0.0
    cpu: list[float] = field(default_factory=list)  # each Locust worker process, share of one core
    master_cpu: float | None = None
    upstream_cpu: float = 0.0
    e50: float | None = None
    e99: float | None = None
    failures: int = 0

    @property
    def held(self) -> bool:
        """Within the TTFT-error target, no failed turn."""
        return (
            self.e50 is not None
            and self.e99 is not None
            and abs(self.e50) <= TTFT_P50_MS
            and abs(self.e99) <= TTFT_P99_MS
            and self.failures == 0
            and self.turns > 0
        )

    def line(self) -> str:
        """The level as a table row."""
        rate = self.turns / self.window_s if self.window_s else 0.0
        cpu = " + ".join(f"{c:.0%}" for c in self.cpu) or "-"
        master = f"{self.master_cpu:.0%}" if self.master_cpu is not None else "-"
        e50 = f"{self.e50:.2f}" if self.e50 is not None else "-"
        e99 = f"{self.e99:.2f}" if self.e99 is not None else "-"
        return (f"{self.users:>5} {self.turns:>6} {rate:>7.1f} {cpu:>11} {master:>6} {self.upstream_cpu:>8.0%} "
                f"{e50:>8} {e99:>8} {self.failures:>5}  {'held' if self.held else 'BROKE'}")  # fmt: skip


HEADER = (f"{'calls':>5} {'turns':>6} {'turns/s':>7} {'worker CPU':>11} {'master':>6} {'upstream':>8} "
          f"{'err p50':>8} {'err p99':>8} {'fail':>5}  target")  # fmt: skip


def _cpu_ticks(pid: int) -> int:
    """User plus system CPU of a process, in clock ticks (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


@dataclass
class Setup:
    """What every level of a run shares."""

    host: str
    seconds: float
    workdir: Path
    env: dict[str, str]
    pin: bool
    upstream_pid: int


def _locust_argv() -> list[str]:
    return [sys.executable, "-m", "locust", "-f", f"{LOCUSTFILE},{Path(__file__).resolve()}", "--loglevel", "WARNING"]


def _wait(process: subprocess.Popen[bytes], timeout_s: float, name: str, log: Path) -> None:
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _stop(process)
        raise BenchmarkError(f"{name} did not end within {timeout_s:.0f} s: {_log_tail(log)}") from None


def _run_level(setup: Setup, users: int, workers: int) -> Level:
    """One level: a standalone Locust process (`workers` 0) or a master with `workers` workers."""
    name = f"{'one' if workers == 0 else 'two'}-{users}"
    prefix = setup.workdir / name
    meters = setup.workdir / f"{name}-meters"
    meters.mkdir()
    env = {**setup.env, "VAPI_HARNESS_LOAD_REPORT_PREFIX": str(prefix), "CAPACITY_METERS": str(meters)}
    run_s = SPAWN_S + SETTLE_S + setup.seconds
    head = [*_locust_argv(), "--headless", "--host", setup.host, "-u", str(users),
            "-r", f"{users / SPAWN_S:g}", "-t", f"{run_s:g}s", "--only-summary"]  # fmt: skip
    level = Level(users)
    ticks, started = _cpu_ticks(setup.upstream_pid), time.monotonic()
    log_path = setup.workdir / f"{name}.log"
    with log_path.open("wb") as log:
        if workers == 0:
            main_process = _start(["taskset", "-c", "0", *head] if setup.pin else head, log, env=env)
            helpers: list[subprocess.Popen[bytes]] = []
        else:
            port = _free_port()
            master = [*head, "--master", "--expect-workers", str(workers), "--master-bind-host", "127.0.0.1",
                      "--master-bind-port", str(port)]  # fmt: skip
            main_process = _start(master, log, env=env)
            worker = [*_locust_argv(), "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
            helpers = [_start(worker, log, env=env) for _ in range(workers)]
        try:
            _wait(main_process, run_s + 120, name, log_path)
            for helper in helpers:
                _wait(helper, 30, f"{name} worker", log_path)
        finally:
            for process in (main_process, *helpers):
                _stop(process)
    level.upstream_cpu = (_cpu_ticks(setup.upstream_pid) - ticks) / os.sysconf("SC_CLK_TCK")
    level.upstream_cpu /= time.monotonic() - started
    vapi = Path(str(prefix) + "_vapi.json")
    if not vapi.exists():
        raise BenchmarkError(f"{name}: Locust wrote no {vapi.name}: {_log_tail(log_path)}")
    summary = json.loads(vapi.read_text())
    ttft = summary["metrics"].get("ttft_ms")
    level.turns, level.failures = int(summary["turns"]), int(sum(summary["errors"].values()))
    if ttft:
        level.e50, level.e99 = ttft["p50"] - EXPECTED_FIRST_CONTENT_MS, ttft["p99"] - EXPECTED_FIRST_CONTENT_MS
    for path in sorted(meters.glob("*.json")):
        meter = json.loads(path.read_text())
        share = meter["cpu_s"] / meter["wall_s"] if meter["wall_s"] else 0.0
        if meter["role"] == "worker" or workers == 0:
            level.cpu.append(share)
        else:
            level.master_cpu = share
        if meter["role"] != "worker":
            level.window_s = meter["wall_s"]
    return level


def _search(setup: Setup, workers: int, start: int, max_users: int, bisect: int) -> list[Level]:
    """Double from `start` until a level breaks (or `max_users`), then bisect between held and broke."""
    levels: list[Level] = []

    def run(users: int) -> Level:
        sys.stderr.write(f"{'one core' if workers == 0 else 'two workers'}: {users} calls ... ")
        sys.stderr.flush()
        level = _run_level(setup, users, workers)
        sys.stderr.write(("held" if level.held else "broke") + "\n")
        levels.append(level)
        return level

    users, held, broke = start, 0, 0
    while users <= max_users:
        if run(users).held:
            held, users = users, users * 2
        else:
            broke = users
            break
    for _ in range(bisect if broke else 0):
        middle = (held + broke) // 2 // _STEP_USERS * _STEP_USERS
        if middle <= held or broke - held <= _STEP_USERS:
            break
        if run(middle).held:
            held = middle
        else:
            broke = middle
    return sorted(levels, key=lambda level: level.users)


def _answer(levels: list[Level]) -> str:
    held = [level.users for level in levels if level.held]
    broke = [level.users for level in levels if not level.held]
    if not held:
        return f"no level held; {min(broke)} calls already broke"
    best = max(held)
    above = min((u for u in broke if u > best), default=None)
    return f"{best} concurrent calls held" + (f" ({above} broke)" if above else " (the highest level tried)")


def _setup_env() -> dict[str, str]:
    return {**os.environ, "VAPI_HARNESS_LOAD_THINK_S": THINK_S, "CAPACITY_SETTLE_S": f"{SETTLE_S:g}",
            "PYTHONPATH": str(HERE.parent)}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Step each set-up up, print a table per set-up and the answer; 0 when measured, 2 when it cannot run."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.capacity", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured time of each level (default 20)")
    parser.add_argument("--setups", default="one,two", help="which set-ups: one, two or one,two (default)")
    parser.add_argument("--start", type=int, default=100, help="the first level, in concurrent calls (default 100)")
    parser.add_argument("--max-users", type=int, default=6400, help="the highest level tried (default 6400)")
    parser.add_argument("--bisect", type=int, default=3, help="bisection steps after the first break (default 3)")
    args = parser.parse_args(argv)
    setups = [s.strip() for s in args.setups.split(",") if s.strip()]
    problems = (("--setups", "one, two or one,two", any(s not in ("one", "two") for s in setups) or not setups),
                ("--seconds", "above 0", args.seconds <= 0), ("--start", "at least 1", args.start < 1),
                ("--max-users", "at least --start", args.max_users < args.start),
                ("--bisect", "0 or more", args.bisect < 0))  # fmt: skip
    for flag, allowed, bad in problems:
        if bad:
            sys.stderr.write(f"capacity: {flag} must be {allowed}\n")
            return 2
    pin = shutil.which("taskset") is not None and len(os.sched_getaffinity(0)) >= 2
    try:
        return _measure(args, setups, pin)
    except (BenchmarkError, OSError, subprocess.SubprocessError, KeyError, ValueError) as exc:
        sys.stderr.write(f"capacity: cannot run: {exc}\n")
        return 2


def _measure(args: argparse.Namespace, setups: list[str], pin: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="capacity-") as tmp:
        workdir = Path(tmp)
        port = _free_port()
        upstream = [sys.executable, "-m", "benchmarks.paced_upstream", "--port", str(port), "--ttft-ms",
                    f"{TTFT_MS:g}", "--chunk-delay-ms", f"{CHUNK_DELAY_MS:g}", "--reply", REPLY]  # fmt: skip
        env = _setup_env()
        with (workdir / "upstream.log").open("wb") as upstream_log:
            process = _start(["taskset", "-c", "1", *upstream] if pin else upstream, upstream_log, env=env)
            try:
                _wait_for_port(process, port, 30, "the paced upstream", workdir / "upstream.log")
                setup = Setup(f"http://127.0.0.1:{port}/v1", args.seconds, workdir, env, pin, process.pid)
                results = {s: _search(setup, 0 if s == "one" else 2, args.start, args.max_users, args.bisect)
                           for s in setups}  # fmt: skip
            finally:
                _stop(process)
    titles = {"one": "one Locust worker core (core 0; upstream on core 1)",
              "two": "two Locust workers and a master, unpinned (upstream on core 1)"}  # fmt: skip
    lines = [f"{args.seconds:g} s per level, think time {THINK_S.replace(',', ' to ')} s, "
             f"target TTFT error p50 <= {TTFT_P50_MS:g} ms, p99 <= {TTFT_P99_MS:g} ms"]  # fmt: skip
    for name, levels in results.items():
        lines += ["", titles[name] if pin else f"{name} (not pinned: taskset or 2 cores missing)", HEADER]
        lines += [level.line() for level in levels]
        lines.append(f"answer: {_answer(levels)}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _plugin() -> None:
    """In each Locust process (Locust loads this file beside the shipped locustfile): reset every count
    `CAPACITY_SETTLE_S` after the spawn, then write this process's CPU over the window to `CAPACITY_METERS`."""
    import gevent
    from locust import events
    from locust.env import Environment
    from locust.runners import MasterRunner, WorkerRunner

    from harness.load.user import stats_of

    def listen(event: Any, listener: Callable[..., None]) -> None:
        event.add_listener(listener)  # Locust's events are untyped

    def on_init(environment: Environment, **_: Any) -> None:
        worker = isinstance(environment.runner, WorkerRunner)
        marks: dict[str, float] = {}

        def reset(*_: Any, **__: Any) -> None:
            marks["cpu_s"], marks["wall_s"] = time.process_time(), time.monotonic()
            stats_of(environment).reset()
            runner = environment.runner
            if runner is not None:
                runner.stats.reset_all()
            if isinstance(runner, MasterRunner):
                runner.send_message(_RESET)

        def spawned(**_: Any) -> None:
            if not worker:
                gevent.spawn_later(float(os.environ.get("CAPACITY_SETTLE_S", "0")), reset)

        def stopping(**_: Any) -> None:
            if "cpu_s" in marks and "end_cpu_s" not in marks:
                marks["end_cpu_s"], marks["end_wall_s"] = time.process_time(), time.monotonic()

        def quitting(**_: Any) -> None:
            folder = os.environ.get("CAPACITY_METERS")
            if folder and "end_cpu_s" in marks:
                meter = {"role": "worker" if worker else "main", "cpu_s": marks["end_cpu_s"] - marks["cpu_s"],
                         "wall_s": marks["end_wall_s"] - marks["wall_s"]}  # fmt: skip
                (Path(folder) / f"{os.getpid()}.json").write_text(json.dumps(meter))

        listen(environment.events.spawning_complete, spawned)
        listen(environment.events.test_stopping, stopping)
        listen(environment.events.quitting, quitting)
        if worker and environment.runner is not None:
            environment.runner.register_message(_RESET, reset)

    listen(events.init, on_init)


if __name__ == "__main__":
    sys.exit(main())
elif "locust" in sys.modules:  # loaded by Locust as a locustfile
    _plugin()
