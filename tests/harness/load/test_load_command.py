"""`vapi-harness load`: a profile against the built-in endpoint, SLO gates, and a distributed run on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from harness.load.stats import LoadStats
from harness.metrics import percentile
from harness.servers import free_port
from tests.commands import run_command

pytestmark = [pytest.mark.slow, pytest.mark.load]
QUICK = ("--think-s", "0.02,0.05", "--users", "3")


def _summary(report_dir: Path) -> dict[str, Any]:
    (run,) = list(report_dir.iterdir())
    data: dict[str, Any] = json.loads((run / "load_vapi.json").read_text())
    assert (run / "load_vapi.csv").exists() and (run / "load_stats.csv").exists()
    return data


def test_smoke_profile_passes_the_default_slos_and_writes_reports(tmp_path: Path) -> None:
    page = tmp_path / "load.html"
    reports = tmp_path / "reports"
    done = run_command(
        "load", "--profile", "smoke", "--run-time", "3s", "--report-dir", str(reports), "--html", str(page), *QUICK
    )
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    assert "ok   ttft_p95_ms" in done.stdout and "ok   error_rate" in done.stdout
    summary = _summary(reports)
    html = page.read_text()
    assert "PASSED" in html and "Voice latency (ms, exact)" in html and "ttft_p95_ms" in html
    assert "<svg" in html and "<script" not in html
    assert summary["turns"] and summary["errors"] == {}
    assert [s["met"] for s in summary["slos"]] == [True, True, True]


def test_an_unreachable_slo_exits_1_naming_it(tmp_path: Path) -> None:
    args = ("load", "--profile", "smoke", "--run-time", "2s", "--slo", "ttft_p95_ms=1", "--report-dir", str(tmp_path))
    done = run_command(*args, *QUICK)
    assert done.returncode == 1
    assert "FAIL ttft_p95_ms:" in done.stdout and "(limit 1 ms): BROKEN by" in done.stdout


def test_breakpoint_reports_the_highest_level_that_held(tmp_path: Path) -> None:
    args = ("load", "--profile", "breakpoint", "--run-time", "6s", "--users", "2", "--think-s", "0.02,0.05")
    held = run_command(*args, "--slo", "ttft_p95_ms=5000", "--report-dir", str(tmp_path / "held"))
    assert held.returncode == 0, held.stdout + held.stderr[-2000:]
    assert "the highest level that held was 2 concurrent calls (the peak)" in held.stdout
    broke = run_command(*args, "--slo", "ttft_p95_ms=1", "--report-dir", str(tmp_path / "broke"))
    assert broke.returncode == 1
    assert "breakpoint: no level held; 1 concurrent calls already broke: ttft_p95_ms" in broke.stdout
    assert _summary(tmp_path / "broke")["breakpoint"]["broke_at_users"] == 1


def test_bad_options_exit_2_with_the_reason(tmp_path: Path) -> None:
    for args, message in (
        (("--slo", "latency"), "not NAME=VALUE"),
        (("--slo", "speed_p95_ms=5"), "unknown SLO"),
        (("--run-time", "soon"), "is not a duration"),
        (("--profile", "burst"), "'burst' is not one of smoke"),
        (("--scenario", str(tmp_path / "missing.yaml")), "cannot read"),
    ):
        done = run_command("load", *args, "--report-dir", str(tmp_path))
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr


def test_a_master_and_two_workers_aggregate_exactly_what_the_workers_measured(tmp_path: Path) -> None:
    port = free_port()
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    env = {**os.environ, "VAPI_HARNESS_LOAD_WORKER_DUMP": str(dumps)}
    base = [sys.executable, "-m", "harness", "load", "--master-port", str(port), *QUICK]
    master = subprocess.Popen(
        [*base, "--master", "--expect-workers", "2", "--profile", "steady", "--run-time", "4s",
         "--report-dir", str(tmp_path / "master")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip
    workers = [
        subprocess.Popen(
            [*base, "--worker", "--report-dir", str(tmp_path / f"w{i}")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        for i in range(2)
    ]
    try:
        out, err = master.communicate(timeout=120)
    finally:
        for worker in workers:
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                worker.kill()
    assert master.returncode == 0, out + err[-3000:]
    merged = LoadStats()
    files = sorted(dumps.glob("worker-*.json"))
    assert len(files) == 2
    per_worker = [json.loads(f.read_text()) for f in files]
    assert all(w["turns"] > 0 for w in per_worker)  # both workers did work
    for data in per_worker:
        merged.merge(data)
    summary = _summary(tmp_path / "master")
    assert summary["turns"] == merged.turns
    ttft = summary["metrics"]["ttft_ms"]
    values = sorted(merged.samples["ttft_ms"])
    assert ttft["n"] == len(values)
    for key, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert ttft[key] == percentile(values, q)
    locust = json.loads((next((tmp_path / "master").iterdir()) / "locust.json").read_text())
    assert next(r for r in locust if r["name"] == "turn")["num_requests"] == merged.turns
