"""`vapi-harness load`: run Locust headless with Vapi-shaped calls, a profile, and SLO gates.

Locust runs in its own process (`python -m locust -f harness/load/locustfile.py`): it patches the process with
gevent, which the rest of vapi-harness must not be. This command builds its arguments and environment, waits
for it (bounded by the profile's run time), then judges the SLOs on what it measured.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.cli.options import Option, add_options, positive_float, positive_int, resolve
from harness.endpoint import builtin_endpoint, validate_url
from harness.errors import ConfigError
from harness.load.profiles import DEFAULT_RUN_TIME_S, PROFILES
from harness.load.slo import DEFAULT_SLOS, Slo, evaluate, parse_slo
from harness.scenarios.loader import load_file

__all__ = ["add_parser", "parse_duration", "run"]

ENV_PREFIX = "VAPI_HARNESS_LOAD_"
LOCUSTFILE = Path(__file__).resolve().parents[1] / "load" / "locustfile.py"
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?$")
_EXIT_GRACE_S = 120.0


def parse_duration(text: str) -> float:
    """`90`, `90s`, `2m`, `1h30m` as seconds."""
    match = _DURATION.match(text.strip())
    if not text.strip() or match is None or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration (e.g. 30s, 2m, 1h30m)")
    hours, minutes, seconds = match.groups()
    total = int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)
    if total <= 0:
        raise ValueError(f"{text!r} must be longer than 0 s")
    return total


def _rate(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise ValueError(f"{text!r} is not between 0 and 1")
    return value


OPTIONS = [
    Option("--url", "Base URL of the custom LLM (model.url); without it, the built-in endpoint", metavar="URL"),
    Option("--api-key", "Key sent as 'Authorization: Bearer KEY' (prefer the environment variable)", metavar="KEY"),
    Option("--profile", "Load profile", default="smoke", choices=list(PROFILES)),
    Option("--users", "Peak concurrent calls", default=10, type=positive_int, metavar="N"),
    Option(
        "--spawn-rate", "Calls started per second while ramping (default: users/10)", type=positive_float, metavar="R"
    ),
    Option(
        "--run-time",
        "How long the profile runs, e.g. 2m (default: the profile's own)",
        type=parse_duration,
        metavar="DURATION",
    ),
    Option("--scenario", "A scenario file whose turns each call plays", type=Path, metavar="PATH"),
    Option("--think-s", "Caller speaking time between turns, LOW,HIGH seconds", default="1,3", metavar="LOW,HIGH"),
    Option("--barge-in-rate", "Share of turns the caller interrupts (0 to 1)", default=0.0, type=_rate),
    Option(
        "--slo",
        f"An SLO to gate on, e.g. ttft_p95_ms=800; repeatable (default: {', '.join(DEFAULT_SLOS)})",
        type=parse_slo,
        repeatable=True,
        metavar="NAME=VALUE",
    ),
    Option("--report-dir", "Reports go to DIR/<run-id>/", default=Path("reports"), type=Path, metavar="DIR"),
    Option("--html", "Also write a self-contained HTML report here", type=Path, metavar="PATH"),
    Option(
        "--web", "Open Locust's web UI on 127.0.0.1:8089 instead of running headless", default=False, flag_only=True
    ),
    Option("--master", "Run as the master of distributed workers", default=False, flag_only=True),
    Option(
        "--expect-workers",
        "With --master: wait for N workers before starting",
        default=1,
        type=positive_int,
        metavar="N",
    ),
    Option("--worker", "Run as a worker of the master at --master-host", default=False, flag_only=True),
    Option("--master-host", "The master's address (for --worker)", default="127.0.0.1", metavar="HOST"),
    Option("--master-port", "The master's port", default=5557, type=positive_int, metavar="PORT"),
]


def add_parser(subparsers: Any) -> None:
    """Register the `load` subcommand."""
    parser = subparsers.add_parser(
        "load",
        help="load-test an endpoint with Vapi-shaped calls (Locust), gated on SLOs",
        description="Run Locust with callers that hold Vapi calls against a custom LLM, measure exact voice "
        "latencies, and gate on SLOs. Exit 0 when every SLO held, 1 when one broke, 2 for bad input. "
        f"Every option also reads {ENV_PREFIX}<OPTION>.",
    )
    add_options(parser, OPTIONS, ENV_PREFIX)
    parser.set_defaults(handler=run)


@contextmanager
def _target(url: str | None, api_key: str | None) -> Iterator[str]:
    if url:
        validate_url(url)
        yield url
        return
    with builtin_endpoint(api_key) as builtin:
        yield builtin


def _environment(values: dict[str, Any], slos: list[Slo], prefix: Path, slo_lines: list[str]) -> dict[str, str]:
    env = dict(os.environ)
    run_time_s = values["run_time"] or DEFAULT_RUN_TIME_S[values["profile"]]
    env.update(
        {
            "VAPI_HARNESS_LOAD_PROFILE": values["profile"],
            "VAPI_HARNESS_LOAD_USERS": str(values["users"]),
            "VAPI_HARNESS_LOAD_RUN_TIME_S": str(run_time_s),
            "VAPI_HARNESS_LOAD_SLO": "\n".join(slo_lines),
            "VAPI_HARNESS_LOAD_THINK_S": values["think_s"],
            "VAPI_HARNESS_LOAD_BARGE_IN_RATE": str(values["barge_in_rate"]),
            "VAPI_HARNESS_LOAD_REPORT_PREFIX": str(prefix),
        }
    )
    if values["spawn_rate"]:
        env["VAPI_HARNESS_LOAD_SPAWN_RATE"] = str(values["spawn_rate"])
    if values["scenario"]:
        env["VAPI_HARNESS_LOAD_SCENARIO"] = str(values["scenario"].resolve())
    if values["api_key"]:
        env["VAPI_HARNESS_API_KEY"] = values["api_key"]
    if values["html"]:
        env["VAPI_HARNESS_LOAD_SAMPLES"] = "1"
    return env


def _write_html(path: Path, summary: dict[str, Any], prefix: Path) -> None:
    from harness import __version__
    from harness.reporting import render_load_html

    samples_path = prefix.with_name("load_vapi_samples.json")
    samples = json.loads(samples_path.read_text()) if samples_path.exists() else {}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_load_html(summary, samples, __version__), encoding="utf-8")
    except OSError as exc:
        sys.stderr.write(f"vapi-harness load: cannot write {path}: {exc.strerror or exc}\n")


def run(args: argparse.Namespace) -> int:
    """Run the profile; 0 when every SLO held, 1 when one broke."""
    values = resolve(args, OPTIONS, ENV_PREFIX)
    low, _, high = values["think_s"].partition(",")
    try:
        think = (float(low), float(high or low))
    except ValueError:
        raise ConfigError(f"--think-s: {values['think_s']!r} is not LOW,HIGH seconds") from None
    if think[0] < 0 or think[1] < think[0]:
        raise ConfigError(f"--think-s: {values['think_s']!r} must be 0 <= LOW <= HIGH")
    if values["scenario"] is not None:
        load_file(values["scenario"])  # a bad file is named here, before Locust starts
    slos: list[Slo] = values["slo"] or [parse_slo(text) for text in DEFAULT_SLOS]
    slo_lines = [f"{s.name}={s.limit:g}" for s in slos]
    run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
    out_dir = values["report_dir"] / run_id
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--report-dir: cannot create {out_dir}: {exc.strerror}") from None
    prefix = out_dir / "load"
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]
    if values["worker"]:
        command += ["--worker", "--master-host", values["master_host"], "--master-port", str(values["master_port"])]
        return subprocess.call(command, env=_environment(values, slos, prefix, slo_lines))
    run_time_s = values["run_time"] or DEFAULT_RUN_TIME_S[values["profile"]]
    with _target(values["url"], values["api_key"]) as url:
        command += ["--host", url, "--csv", str(prefix), "--json-file", str(out_dir / "locust")]
        if values["web"]:
            command += ["--web-host", "127.0.0.1", "--autostart"]
        else:
            command += ["--headless", "--only-summary"]
        if values["master"]:
            command += ["--master", "--expect-workers", str(values["expect_workers"])]
            command += ["--master-bind-port", str(values["master_port"]), "--master-bind-host", "127.0.0.1"]
        sys.stderr.write(f"vapi-harness load: {values['profile']} against {url}, reports in {out_dir}\n")
        process = subprocess.Popen(command, env=_environment(values, slos, prefix, slo_lines))
        try:
            process.wait(timeout=None if values["web"] else run_time_s + _EXIT_GRACE_S)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(timeout=30)
            sys.stderr.write("vapi-harness load: Locust did not stop in time; stopped it\n")
        except KeyboardInterrupt:
            process.terminate()  # Locust writes its reports (and ours) as it quits
            process.wait(timeout=30)
    summary_path = prefix.with_name("load_vapi.json")
    if not summary_path.exists():
        sys.stderr.write(f"vapi-harness load: Locust wrote no results (exit {process.returncode})\n")
        return 2
    summary = json.loads(summary_path.read_text())
    results = evaluate(slos, summary)
    summary["slos"] = [{"name": r.slo.name, "limit": r.slo.limit, "value": r.value, "met": r.met} for r in results]
    summary["target"], summary["profile"] = url, values["profile"]
    summary_path.write_text(json.dumps(summary, indent=2) + "\n")
    if values["html"]:
        _write_html(values["html"], summary, prefix)
    sys.stdout.write(f"{summary['turns']} turns, error rate {summary['error_rate']:.2%}\n")
    for result in results:
        sys.stdout.write(("  ok   " if result.met else "  FAIL ") + result.line() + "\n")
    if "breakpoint" in summary:
        point = summary["breakpoint"]
        if point["held_users"] is None:
            sys.stdout.write(f"breakpoint: no level held; {point['broke_at_users']} concurrent calls already broke: "
                             f"{'; '.join(point['broken'])}\n")  # fmt: skip
        else:
            broke = f", {point['broke_at_users']} broke it" if point["broke_at_users"] else " (the peak)"
            sys.stdout.write(f"breakpoint: the highest level that held was {point['held_users']} concurrent calls"
                             f"{broke}\n")  # fmt: skip
    sys.stdout.write(f"Reports: {out_dir}\n")
    return 0 if all(r.met for r in results) else 1
