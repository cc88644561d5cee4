"""Load generator overhead: our `VapiCallUser` against a plain Locust `FastHttpUser` reading the same stream.

Run it from a fresh clone, at the repository root:

    python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && .venv/bin/python -m benchmarks.loadgen

The upstream (core 1) sends the fake LLM's reply: a role chunk 50 ms after the request, then one chunk per
word every 20 ms: 50 chunks, the first content 70 ms after the request. By default it is
`benchmarks/paced_upstream.py`, which keeps that schedule to well under a millisecond at 200 open streams;
`--upstream fake-llm` uses `vapi-harness fake-llm`, whose own lateness then counts as ours. Each user type
runs alone in its own Locust process (core 0) at 10 and at 200 users for `--seconds` (default 20), one turn
after another with no think time; the users arrive at random over one stream's length, as callers do. A lean
asyncio client (`benchmarks/lean_client.py`, no Locust, no parsing) runs the same load as the floor of the
machine and the upstream. Reported per run: completed streams per second, streams per second per core
(streams over the process's CPU seconds, both counted from the moment every user runs, so start-up is left
out), CPU per stream, and the time-to-first-content error (measured minus the injected 70 ms) at p50/p99.
Exit status: 0 when every target is met, 1 when one is missed, 2 when the benchmark cannot run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.proxy_overhead import _free_port, _start, _stop, _wait_for_port
from harness.metrics import percentile

__all__ = ["main"]

TTFT_MS, CHUNK_DELAY_MS, WORDS = 50.0, 20.0, 49
EXPECTED_FIRST_CONTENT_MS = TTFT_MS + CHUNK_DELAY_MS
REPLY = " ".join(f"w{i}" for i in range(WORDS))
USERS = (10, 200)
STAGGER_S = (TTFT_MS + CHUNK_DELAY_MS * (WORDS + 1)) / 1000  # one stream's length
HERE = Path(__file__).resolve().parent
# targets: ours >= 1.0x the plain user's streams per core; <= 0.6 ms CPU per stream, within 20% from 10 to 200
# users; TTFT error p50 <= 1 ms and p99 <= 5 ms at 200 users, p99 <= 2 ms at 10 users
MIN_THROUGHPUT_RATIO, MAX_CPU_MS, MAX_CPU_SPREAD = 1.0, 0.6, 0.2
TTFT_ERROR_TARGETS = {10: (None, 2.0), 200: (1.0, 5.0)}


def _locust(
    locustfile: Path, host: str, users: int, seconds: float, workdir: Path, name: str, env: dict[str, str], pin: bool
) -> dict[str, Any]:
    prefix = workdir / name
    command = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--host", host, "-u", str(users),
               "-r", str(users), "-t", f"{seconds:g}s", "--only-summary", "--json-file", str(prefix) + "_locust",
               "--loglevel", "WARNING"]  # fmt: skip
    if pin:
        command = ["taskset", "-c", "0", *command]
    meter = Path(str(prefix) + "_meter.json")
    env = {**env, "VAPI_HARNESS_LOAD_REPORT_PREFIX": str(prefix), "LOADGEN_METER": str(meter)}
    with (workdir / f"{name}.log").open("wb") as log:
        subprocess.run(command, stdout=log, stderr=log, env=env, timeout=seconds + 120, check=False)
    stats = json.loads(Path(str(prefix) + "_locust.json").read_text())
    row = next(r for r in stats if r["name"] == "turn")
    measured = json.loads(meter.read_text())  # CPU and streams from the moment every user runs
    result: dict[str, Any] = {"streams": int(row["num_requests"]), "failures": row["num_failures"],
                              "cpu_ms": measured["cpu_s"] * 1000, "measured_streams": measured["requests"],
                              "wall_s": seconds}  # fmt: skip
    vapi = Path(str(prefix) + "_vapi.json")
    if vapi.exists():
        result["ttft"] = json.loads(vapi.read_text())["metrics"].get("ttft_ms")
    return result


def _lean(host: str, users: int, seconds: float, workdir: Path, env: dict[str, str], pin: bool) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.lean_client", "--url", host, "--users", str(users),
               "--seconds", f"{seconds:g}", "--stagger-s", f"{STAGGER_S:g}"]  # fmt: skip
    if pin:
        command = ["taskset", "-c", "0", *command]
    with (workdir / f"lean-{users}.log").open("wb") as log:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=log, env=env, timeout=seconds + 60, check=True)
    raw = json.loads(done.stdout)
    samples = sorted(raw["first_content_ms"])
    ttft = {"p50": percentile(samples, 0.5), "p99": percentile(samples, 0.99)} if samples else None
    return {"streams": raw["streams"], "failures": 0, "cpu_ms": raw["cpu_ms"],
            "measured_streams": raw["measured_streams"], "wall_s": seconds, "ttft": ttft}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Run both user types and the floor at each level, print the table; 0 when every target is met."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="run time of each run (default 20)")
    parser.add_argument("--upstream", choices=("paced", "fake-llm"), default="paced",
                        help="the upstream: the paced one (default) or vapi-harness fake-llm")  # fmt: skip
    args = parser.parse_args(argv)
    pin = shutil.which("taskset") is not None and len(os.sched_getaffinity(0)) >= 2
    body = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "hi"}], "stream": True})
    with tempfile.TemporaryDirectory(prefix="loadgen-") as tmp:
        workdir = Path(tmp)
        port = _free_port()
        server = ["-m", "harness", "fake-llm"] if args.upstream == "fake-llm" else ["-m", "benchmarks.paced_upstream"]
        fake_argv = [sys.executable, *server, "--port", str(port), "--ttft-ms", str(TTFT_MS),
                     "--chunk-delay-ms", str(CHUNK_DELAY_MS), "--reply", REPLY]  # fmt: skip
        if pin:
            fake_argv = ["taskset", "-c", "1", *fake_argv]
        env = {**os.environ, "LOADGEN_BODY": body, "LOADGEN_STAGGER_S": f"{STAGGER_S:g}",
               "PYTHONPATH": str(HERE.parent)}  # fmt: skip
        with (workdir / "fake.log").open("wb") as fake_log:
            fake = _start(fake_argv, fake_log, env=env)
            try:
                _wait_for_port(fake, port, 30, args.upstream, workdir / "fake.log")
                host = f"http://127.0.0.1:{port}/v1"
                results = {}
                for users in USERS:
                    for name, locustfile in (("plain", HERE / "loadgen_users" / "plain.py"),
                                             ("vapi", HERE / "loadgen_users" / "vapi.py")):  # fmt: skip
                        sys.stderr.write(f"{name} @ {users} users for {args.seconds:g} s\n")
                        results[(name, users)] = _locust(locustfile, host, users, args.seconds, workdir,
                                                         f"{name}-{users}", env, pin)  # fmt: skip
                    sys.stderr.write(f"lean @ {users} users for {args.seconds:g} s\n")
                    results[("lean", users)] = _lean(host, users, args.seconds, workdir, env, pin)
            finally:
                _stop(fake)
    lines = [f"{'user':<6} {'users':>5} {'streams':>7} {'fail':>4} {'streams/s':>9} {'streams/core-s':>14} "
             f"{'CPU/stream':>10} {'TTFT err p50':>12} {'TTFT err p99':>12}"]  # fmt: skip
    checks: list[tuple[str, bool]] = []
    for users in USERS:
        for name in ("lean", "plain", "vapi"):
            r = results[(name, users)]
            per_core = r["measured_streams"] / (r["cpu_ms"] / 1000) if r["cpu_ms"] else 0.0
            cpu_per = r["cpu_ms"] / r["measured_streams"] if r["measured_streams"] else float("inf")
            r["per_core"], r["cpu_per"] = per_core, cpu_per
            ttft = r.get("ttft")
            e50 = f"{ttft['p50'] - EXPECTED_FIRST_CONTENT_MS:.2f}" if ttft else "-"
            e99 = f"{ttft['p99'] - EXPECTED_FIRST_CONTENT_MS:.2f}" if ttft else "-"
            rate = r["streams"] / r["wall_s"]
            lines.append(f"{name:<6} {users:>5} {r['streams']:>7} {r['failures']:>4} {rate:>9.1f} "
                         f"{per_core:>14.1f} {cpu_per:>8.2f}ms {e50:>12} {e99:>12}")  # fmt: skip
        ours, plain = results[("vapi", users)], results[("plain", users)]
        ratio = ours["per_core"] / plain["per_core"] if plain["per_core"] else 0.0
        checks.append((f"streams per core, ours/plain @{users}: {ratio:.2f}x (>= {MIN_THROUGHPUT_RATIO}x)",
                       ratio >= MIN_THROUGHPUT_RATIO))  # fmt: skip
        checks.append(
            (f"CPU per stream @{users}: {ours['cpu_per']:.2f} ms (<= {MAX_CPU_MS} ms)", ours["cpu_per"] <= MAX_CPU_MS)
        )
        p50_target, p99_target = TTFT_ERROR_TARGETS[users]
        ttft = ours.get("ttft") or {}
        if ttft:
            e50, e99 = ttft["p50"] - EXPECTED_FIRST_CONTENT_MS, ttft["p99"] - EXPECTED_FIRST_CONTENT_MS
            if p50_target is not None:
                checks.append((f"TTFT error p50 @{users}: {e50:.2f} ms (<= {p50_target} ms)", abs(e50) <= p50_target))
            checks.append((f"TTFT error p99 @{users}: {e99:.2f} ms (<= {p99_target} ms)", abs(e99) <= p99_target))
    low, high = results[("vapi", USERS[0])]["cpu_per"], results[("vapi", USERS[-1])]["cpu_per"]
    spread = abs(high - low) / low if low else float("inf")
    checks.append((f"CPU per stream steady from {USERS[0]} to {USERS[-1]} users: {spread:.0%} apart (<= 20%)",
                   spread <= MAX_CPU_SPREAD))  # fmt: skip
    lines.append("")
    lines += [("PASS  " if ok else "MISS  ") + text for text, ok in checks]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
