"""A load run cut by SIGINT or SIGTERM stops Locust cleanly, writes what it measured, says it was interrupted,
judges no SLO, and exits 130 or 143: sent to `vapi-harness load` alone (a CI runner's timeout) or, as a
terminal's Ctrl-C does, to its whole process group."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.servers import ServerThread

pytestmark = [pytest.mark.slow, pytest.mark.load]


def _send(process: subprocess.Popen[str], how: str) -> None:
    if how == "group":
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    else:
        process.send_signal(signal.SIGINT if how == "SIGINT" else signal.SIGTERM)


@pytest.mark.parametrize(("how", "code", "name"), [("SIGINT", 130, "SIGINT"), ("group", 130, "SIGINT"),
                                                   ("SIGTERM", 143, "SIGTERM")])  # fmt: skip
def test_an_interrupted_run_writes_its_reports_and_judges_no_slo(
    tmp_path: Path, fake_llm: Callable[..., ServerThread], how: str, code: int, name: str
) -> None:
    server = fake_llm()
    reports, page = tmp_path / "reports", tmp_path / "load.html"
    command = [sys.executable, "-m", "harness", "load", "--url", f"{server.url}/v1", "--profile", "steady",
               "--users", "2", "--run-time", "60s", "--think-s", "0.02,0.05", "--report-dir", str(reports),
               "--html", str(page)]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    assert process.stderr is not None
    try:
        for _ in range(200):  # bounded: Locust's log lines until its callers are all started
            line = process.stderr.readline()
            if "All users spawned" in line or not line:
                break
        for _ in range(100):  # bounded: until the endpoint has answered a few turns
            if len(server.app.state.fake.recorded) >= 4:
                break
            time.sleep(0.1)
        _send(process, how)
        out, err = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    assert process.returncode == code, out + err[-3000:]
    assert f"interrupted ({name}) after " in out and " of 60 s: the SLOs are not judged" in out
    assert ": met" not in out and "FAIL" not in out and "not judged (interrupted)" in out
    (run,) = list(reports.iterdir())
    summary = json.loads((run / "load_vapi.json").read_text())
    assert summary["interrupted"] is True and summary["ended"] == "interrupted"
    assert 0 < summary["duration_s"] < 60 and summary["turns"] > 0  # what was measured is kept
    assert all(s["met"] is None and s["verdict"] == "not judged (interrupted)" for s in summary["slos"])
    locust = json.loads((run / "locust.json").read_text())  # Locust's own report, written as it quit
    assert next(r for r in locust if r["name"] == "turn")["num_requests"] == summary["turns"]
    html = page.read_text()
    assert "INTERRUPTED" in html and "id='interrupted'" in html and "<span class='ok'>met</span>" not in html
    assert "Traceback" not in err
