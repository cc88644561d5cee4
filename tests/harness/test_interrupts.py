"""A run cut short (Ctrl-C, --max-run-s) still writes what it measured; the console script works as installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.reporting import validate_document
from harness.servers import ServerThread
from tests.commands import run_command
from tests.conftest import interrupt_when

pytestmark = pytest.mark.slow


def test_run_deadline_writes_partial_reports(
    fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    server = fake_llm(ttft_ms=300)
    junit = tmp_path / "junit.xml"
    result = run_cli("check", "--url", f"{server.url}/v1", "--max-run-s", "1", "--junit", str(junit))
    assert result.code == 1
    report = result.report
    assert report["interrupted"].startswith("the run exceeded --max-run-s")
    assert 0 < len(report["exchanges"]) < len(report["settings"]["probes"])
    assert validate_document(report) == []
    assert "run_completed" in junit.read_text()


def test_ctrl_c_writes_partial_reports(fake_llm: Callable[..., ServerThread], tmp_path: Path) -> None:
    server = fake_llm(ttft_ms=200)
    report_path = tmp_path / "report.json"
    command = [sys.executable, "-m", "harness", "check", "--url", f"{server.url}/v1"]
    command += ["--json", str(report_path), "--report-dir", str(tmp_path / "reports")]
    code, err = interrupt_when(command, "stream_basic")  # once the first probe has finished
    assert code == 130
    assert "Partial reports" in err
    report = json.loads(report_path.read_text())
    assert report["interrupted"] == "Ctrl-C"
    assert report["verdict"] == "failed"
    assert report["exchanges"][0]["probe"] == "stream_basic"
    assert validate_document(report) == []


def test_installed_console_script_checks_the_builtin_endpoint(tmp_path: Path) -> None:
    script = shutil.which("vapi-harness", path=os.path.dirname(sys.executable)) or shutil.which("vapi-harness")
    assert script, "the vapi-harness console script is not installed"
    done = subprocess.run(
        [script, "check", "--report-dir", str(tmp_path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED" in done.stdout
    assert "built-in endpoint" in done.stderr
    (run_dir,) = tmp_path.iterdir()
    assert {p.name for p in run_dir.iterdir()} == {"report.json", "junit.xml"}


def test_fake_llm_lists_its_faults() -> None:
    done = run_command("fake-llm", "--list-faults")
    assert done.returncode == 0
    assert "fault  no-choices" in done.stdout
    assert "quirk  crlf" in done.stdout


def test_fake_llm_rejects_an_unknown_fault() -> None:
    done = run_command("fake-llm", "--fault", "no-choice")
    assert done.returncode == 2
    assert "Did you mean 'no-choices'?" in done.stderr
