"""`vapi-harness load`: run Locust with Vapi-shaped calls, a profile, and SLO gates.

Locust runs in its own process (`python -m locust -f harness/load/locustfile.py`): it patches the process with
gevent, which the rest of vapi-harness must not be. This command builds its arguments and environment, waits
for it (bounded by the profile's run time), then prints what Locust's process wrote: each test's summary and
SLO verdicts (`harness/load/recorder.py` writes the reports as each test ends).

Locust runs in a process group of its own, so a terminal's Ctrl-C (or a signal to this command's group) reaches
this command only; it passes one SIGINT on, which stops the test cleanly and writes what it measured. The exit
code then says the run was cut: 130 for SIGINT, 143 for SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from harness.cli.common import check_output_files, endpoint, make_report_dir, new_run_id
from harness.cli.compare import GATE_OPTIONS, gate_summary, print_comparison, thresholds_of, write_outputs
from harness.cli.options import Option, Subparsers, add_options, port, positive_float, positive_int, resolve
from harness.compare import RunKind, RunView, compare_runs, load_run, require_kind
from harness.endpoint import validate_url
from harness.load.profiles import DEFAULT_RUN_TIME_S, PROFILES, stages
from harness.load.slo import DEFAULT_SLOS, Slo, SloResult, evaluate, parse_slo
from harness.reporting import write_report
from mock_vapi.errors import ConfigError
from mock_vapi.scenarios.loader import load_file

__all__ = ["add_parser", "parse_duration", "run"]

ENV_PREFIX = "VAPI_HARNESS_LOAD_"
LOCUSTFILE = Path(__file__).resolve().parents[1] / "load" / "locustfile.py"
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?$")
_EXIT_GRACE_S = 120.0  # after the profile's run time, before Locust is stopped
_STOP_GRACE_S = 60.0  # after SIGINT, before Locust is killed
_POLL_S = 0.2
_SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


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


def _web_port(text: str) -> int:
    value = port(text)
    if value == 0:
        raise ValueError("0 is not a port the web UI can be reached on; give one from 1 to 65535")
    return value


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
    Option(
        "--baseline",
        "Compare the finished run with an earlier load_vapi.json: exit 1 on a latency regression beyond noise or a "
        "newly broken SLO or failure class; the comparison is added to load_vapi.json and written beside it "
        "(comparison.md, comparison.html)",
        type=Path,
        metavar="PATH",
    ),
    *GATE_OPTIONS,
    Option("--report-dir", "Reports go to DIR/<run-id>/", default=Path("reports"), type=Path, metavar="DIR"),
    Option(
        "--html",
        "Also write a self-contained HTML report here (with --web, one per test: PATH's name numbered)",
        type=Path,
        metavar="PATH",
    ),
    Option("--web", "Open Locust's web UI instead of running headless", default=False, flag_only=True),
    Option("--web-host", "With --web: the address the web UI listens on", default="127.0.0.1", metavar="HOST"),
    Option("--web-port", "With --web: the web UI's port", default=8089, type=_web_port, metavar="PORT"),
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


def add_parser(subparsers: Subparsers) -> None:
    """Register the `load` subcommand."""
    parser = subparsers.add_parser(
        "load",
        help="load-test an endpoint with Vapi-shaped calls (Locust), gated on SLOs",
        description="Run Locust with callers that hold Vapi calls against a custom LLM, measure exact voice "
        "latencies, and gate on SLOs. Exit 0 when every SLO held, 1 when one broke, 2 for bad input, 130 or 143 "
        f"when SIGINT or SIGTERM cut the run. Every option also reads {ENV_PREFIX}<OPTION>.",
    )
    add_options(parser, OPTIONS, ENV_PREFIX)
    parser.set_defaults(handler=run)


def _environment(values: dict[str, Any], prefix: Path, slo_lines: list[str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "VAPI_HARNESS_LOAD_PROFILE": values["profile"],
            "VAPI_HARNESS_LOAD_USERS": str(values["users"]),
            "VAPI_HARNESS_LOAD_RUN_TIME_S": str(_run_time_s(values)),
            "VAPI_HARNESS_LOAD_SLO": "\n".join(slo_lines),
            "VAPI_HARNESS_LOAD_THINK_S": values["think_s"],
            "VAPI_HARNESS_LOAD_BARGE_IN_RATE": str(values["barge_in_rate"]),
            "VAPI_HARNESS_LOAD_REPORT_PREFIX": str(prefix.resolve()),
            "VAPI_HARNESS_LOAD_PARENT_PID": str(os.getpid()),
        }
    )
    if values["spawn_rate"]:
        env["VAPI_HARNESS_LOAD_SPAWN_RATE"] = str(values["spawn_rate"])
    if values["scenario"]:
        env["VAPI_HARNESS_LOAD_SCENARIO"] = str(values["scenario"].resolve())
    if values["api_key"]:
        env["VAPI_HARNESS_API_KEY"] = values["api_key"]
    if values["html"]:
        env["VAPI_HARNESS_LOAD_HTML"] = str(values["html"].resolve())
    return env


def _run_time_s(values: dict[str, Any]) -> float:
    return float(values["run_time"] or DEFAULT_RUN_TIME_S[values["profile"]])


class _Locust:
    """The Locust process, in a process group of its own; SIGINT and SIGTERM to this command are passed on as
    one SIGINT (Locust's clean stop), a second one kills it."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.signal: int | None = None
        self.killed = False
        self._previous = {s: signal.signal(s, self._on_signal) for s in _SIGNAL_EXIT}
        try:
            self.process = subprocess.Popen(
                command, env=env, stdin=subprocess.DEVNULL, process_group=0 if os.name == "posix" else None
            )
        except BaseException:
            self._restore()
            raise

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signal is not None:
            self.process.kill()  # asked twice: stop now
            self.killed = True
            return
        self.signal = signum
        self._stop()

    def _stop(self) -> None:
        if self.process.poll() is not None:
            return
        if os.name == "posix":
            self.process.send_signal(signal.SIGINT)
        else:
            self.process.terminate()

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def wait(self, timeout_s: float | None) -> int:
        """Locust's exit code: it is asked to stop after `timeout_s` (or a signal), and killed 60 s later."""
        start = time.monotonic()
        stop_by = None if timeout_s is None else start + timeout_s
        asked_at: float | None = None
        try:
            while self.process.poll() is None:  # bounded: by the deadlines below, or (web UI) by a signal
                now = time.monotonic()
                if asked_at is None and self.signal is not None:
                    asked_at = now
                if asked_at is None and stop_by is not None and now >= stop_by:
                    sys.stderr.write("vapi-harness load: Locust did not stop in time; stopping it\n")
                    asked_at = now
                    self._stop()
                if asked_at is not None and now - asked_at > _STOP_GRACE_S:
                    sys.stderr.write(f"vapi-harness load: Locust did not stop within {_STOP_GRACE_S:g} s; killed it\n")
                    self.process.kill()
                    self.killed = True
                try:
                    self.process.wait(timeout=_POLL_S)
                except subprocess.TimeoutExpired:
                    continue
        finally:
            self._restore()
        return self.process.returncode


def _summaries(out_dir: Path, web: bool) -> list[tuple[Path, dict[str, Any]]]:
    """Each test's summary, in the order the tests ran."""
    if web:
        folders = sorted(out_dir.glob("test-*"), key=lambda p: int(p.name.partition("-")[2] or 0))
    else:
        folders = [out_dir]
    found = []
    for folder in folders:
        path = folder / "load_vapi.json"
        if path.exists():
            found.append((folder, json.loads(path.read_text(encoding="utf-8"))))
    return found


def _print_test(summary: dict[str, Any], slos: list[Slo], label: str, cause: str) -> list[SloResult]:
    out = sys.stdout
    interrupted = bool(summary.get("interrupted"))
    planned = summary.get("run_time_s")
    of = f" of {planned:g} s" if planned else " s"
    if interrupted:
        by = f" ({cause})" if cause else ""
        out.write(f"{label}interrupted{by} after {summary['duration_s']:.1f}{of}: the SLOs are not judged\n")
    elif summary.get("ended") == "stopped":
        out.write(f"{label}stopped from the web UI after {summary['duration_s']:.1f}{of}\n")
    out.write(f"{label}{summary['turns']} turns, error rate {summary['error_rate']:.2%}\n")
    results = evaluate(slos, summary)
    for result in results:
        mark = "  --   " if interrupted else ("  ok   " if result.met else "  FAIL ")
        out.write(mark + result.line(interrupted) + "\n")
    if "breakpoint" in summary and not interrupted:
        point = summary["breakpoint"]
        if point["held_users"] is None:
            out.write(f"breakpoint: no level held; {point['broke_at_users']} concurrent calls already broke: "
                      f"{'; '.join(point['broken'])}\n")  # fmt: skip
        else:
            broke = f", {point['broke_at_users']} broke it" if point["broke_at_users"] else " (the peak)"
            out.write(f"breakpoint: the highest level that held was {point['held_users']} concurrent calls{broke}\n")
    return results


def _report(out_dir: Path, web: bool, slos: list[Slo], locust: _Locust, code: int) -> int:
    """Print each test's results; the exit code."""
    cut = _SIGNAL_EXIT.get(signal.Signals(locust.signal)) if locust.signal is not None else None
    name = signal.Signals(locust.signal).name if locust.signal is not None else ""
    found = _summaries(out_dir, web)
    if not found:
        if cut is not None:
            sys.stdout.write(f"interrupted ({name}) before Locust measured anything\n")
            return cut
        sys.stderr.write(f"vapi-harness load: Locust wrote no results (exit {code})\n")
        return 2
    passed = True
    for folder, summary in found:
        label = f"test {summary.get('test', 1)}: " if web else ""
        results = _print_test(summary, slos, label, name)
        if web:
            sys.stdout.write(f"  reports: {folder}\n")
        passed = passed and not summary.get("interrupted") and all(r.met for r in results)
    if cut is not None and web:
        sys.stdout.write(f"{name}: the web UI is closed\n")
    sys.stdout.write(f"Reports: {out_dir}\n")
    if cut is not None:
        return cut
    return 0 if passed else 1


def _locust_command(values: dict[str, Any], url: str, prefix: Path, out_dir: Path) -> list[str]:
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", url]
    table = stages(values["profile"], values["users"], _run_time_s(values), values["spawn_rate"])
    # -u and -r are the profile's peak and spawn rate (the web UI's form shows them); the profile's shape reads them.
    command += ["-u", str(values["users"]), "-r", f"{values['spawn_rate'] or table[0].spawn_rate:g}"]
    command += ["--csv", str(prefix), "--json-file", str(out_dir / "locust")]
    if values["web"]:
        command += ["--web-host", values["web_host"], "--web-port", str(values["web_port"]), "--autostart"]
    else:
        command += ["--headless", "--only-summary"]
    if values["master"]:
        command += ["--master", "--expect-workers", str(values["expect_workers"])]
        command += ["--master-bind-port", str(values["master_port"]), "--master-bind-host", "127.0.0.1"]
    return command


def _check(values: dict[str, Any]) -> None:
    """Bad input named before Locust starts."""
    low, _, high = values["think_s"].partition(",")
    try:
        think = (float(low), float(high or low))
    except ValueError:
        raise ConfigError(f"--think-s: {values['think_s']!r} is not LOW,HIGH seconds") from None
    if think[0] < 0 or think[1] < think[0]:
        raise ConfigError(f"--think-s: {values['think_s']!r} must be 0 <= LOW <= HIGH")
    if values["scenario"] is not None:
        load_file(values["scenario"])  # a bad file is named here, before Locust starts
    check_output_files({"--html": values["html"]}, folders_made=True)  # the recorder makes the folder
    if values["max_increase"] and values["baseline"] is None:
        raise ConfigError("--max-increase needs --baseline: it says how the run is compared with one")


def _baseline(values: dict[str, Any]) -> RunView | None:
    """The baseline a headless run is gated on, read before Locust starts."""
    if values["baseline"] is None:
        return None
    for flag in ("web", "worker"):
        if values[flag]:
            raise ConfigError(f"--baseline gates a headless run's result; --{flag} cannot be combined with it")
    baseline = load_run(values["baseline"])
    require_kind(baseline, RunKind.LOAD, "this run")
    return baseline


def _gate(out_dir: Path, baseline: RunView, values: dict[str, Any]) -> bool:
    """Compare the run with the baseline: print it, add it to load_vapi.json, write it beside; True if regressed."""
    path = out_dir / "load_vapi.json"
    comparison = compare_runs(baseline, load_run(path), thresholds_of(values), values["confidence"])
    print_comparison(comparison)
    summary = json.loads(path.read_text(encoding="utf-8"))
    summary["comparison"] = comparison.document()
    write_report(path, json.dumps(summary, indent=2) + "\n")
    write_outputs(comparison, markdown=out_dir / "comparison.md", html=out_dir / "comparison.html")
    for line in gate_summary(comparison):
        sys.stderr.write(line + "\n")
    return comparison.regressed


def run(args: argparse.Namespace) -> int:
    """Run the profile; 0 when every SLO held, 1 when one broke, 130/143 when SIGINT/SIGTERM cut it."""
    values = resolve(args, OPTIONS, ENV_PREFIX)
    _check(values)
    baseline = _baseline(values)
    slos: list[Slo] = values["slo"] or [parse_slo(text) for text in DEFAULT_SLOS]
    slo_lines = [f"{s.name}={s.limit:g}" for s in slos]
    out_dir = values["report_dir"] / new_run_id()
    make_report_dir(out_dir)
    prefix = out_dir / "load"
    env = _environment(values, prefix, slo_lines)
    if values["worker"]:
        command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--worker"]
        command += ["--master-host", values["master_host"], "--master-port", str(values["master_port"])]
        worker = _Locust(command, env)
        code = worker.wait(None)
        if worker.signal is not None:
            return _SIGNAL_EXIT[signal.Signals(worker.signal)]
        return code
    if values["url"]:
        validate_url(values["url"])
    with endpoint(values["url"], values["api_key"]) as (url, _builtin):
        where = f", web UI on http://{values['web_host']}:{values['web_port']}" if values["web"] else ""
        sys.stderr.write(f"vapi-harness load: {values['profile']} against {url}{where}, reports in {out_dir}\n")
        locust = _Locust(_locust_command(values, url, prefix, out_dir), env)
        code = locust.wait(None if values["web"] else _run_time_s(values) + _EXIT_GRACE_S)
    result = _report(out_dir, values["web"], slos, locust, code)
    if baseline is not None and result in (0, 1) and (out_dir / "load_vapi.json").exists():
        regressed = _gate(out_dir, baseline, values)
        return 1 if regressed else result
    return result
