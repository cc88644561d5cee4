"""`vapi-harness load --web`: every test started from Locust's web UI runs the profile from its start, with the
form's users and host, and writes its own reports; the "Voice latency" tab, seen in Chromium, shows the exact
numbers with ttft first and the SLO verdicts."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.servers import ServerThread, free_port
from tests.browser import load_url, require_chromium

pytestmark = [pytest.mark.slow, pytest.mark.load]
_POLL_S = 0.1


@dataclass
class WebRun:
    """A `load --web` process and where its UI and reports are."""

    process: subprocess.Popen[str]
    url: str
    report_dir: Path
    out: Path
    err: Path

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.url}/stats/requests", timeout=5).json()
        return data

    def wait_for(self, state: str, attempts: int = 300) -> dict[str, Any]:
        """Poll until Locust reports `state` (bounded: `attempts` polls)."""
        last: dict[str, Any] = {}
        for _ in range(attempts):
            try:
                last = self.stats()
            except httpx.HTTPError:
                last = {}
            if last.get("state") == state:
                return last
            time.sleep(_POLL_S)
        raise AssertionError(f"Locust never reached {state!r}; last seen {last.get('state')!r}\n{self.log()}")

    def voice_rows(self) -> list[dict[str, Any]]:
        """The "Voice latency" tab's rows, as Locust sends them to the page ([] while the UI is not up)."""
        try:
            extended = self.stats().get("extended_stats") or [{}]
        except httpx.HTTPError:
            return []
        rows: list[dict[str, Any]] = extended[0].get("data", [])
        return rows

    def log(self) -> str:
        return self.err.read_text()[-3000:]

    def tests(self) -> list[dict[str, Any]]:
        """Each test's summary written so far, in order."""
        runs = list(self.report_dir.iterdir()) if self.report_dir.exists() else []
        if not runs:
            return []
        (run,) = runs
        folders = sorted(run.glob("test-*"), key=lambda p: int(p.name.split("-")[1]))
        return [json.loads((f / "load_vapi.json").read_text()) for f in folders if (f / "load_vapi.json").exists()]

    def wait_for_tests(self, count: int, attempts: int = 300) -> list[dict[str, Any]]:
        for _ in range(attempts):  # bounded: until `count` tests have written their reports
            written = self.tests()
            if len(written) >= count:
                return written
            time.sleep(_POLL_S)
        raise AssertionError(f"{count} tests' reports never appeared\n{self.log()}")

    def quit(self) -> tuple[int, str]:
        """Ctrl-C, as a user closes it; the exit code and stdout."""
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        return self.process.returncode, self.out.read_text()


@pytest.fixture
def web_run(tmp_path: Path, fake_llm: Callable[..., ServerThread]) -> Iterator[Callable[..., WebRun]]:
    """Start `load --web` on a free loopback port against a fake LLM; the test's first profile runs at once."""
    started: list[WebRun] = []

    def start(*args: str) -> WebRun:
        server = fake_llm()
        port = free_port()
        out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
        command = [sys.executable, "-m", "harness", "load", "--web", "--web-host", "127.0.0.1", "--web-port", str(port),
                   "--url", f"{server.url}/v1", "--profile", "steady", "--users", "2", "--run-time", "2s",
                   "--think-s", "0.02,0.05", "--report-dir", str(tmp_path / "reports"), *args]  # fmt: skip
        with out.open("w") as stdout, err.open("w") as stderr:
            process = subprocess.Popen(command, stdout=stdout, stderr=stderr, text=True)
        run = WebRun(process, f"http://127.0.0.1:{port}", tmp_path / "reports", out, err)
        started.append(run)
        return run

    yield start
    for run in started:
        if run.process.poll() is None:
            run.process.kill()
            run.process.wait(timeout=30)


def test_every_test_from_the_ui_runs_the_profile_with_the_forms_users_and_host_and_writes_its_reports(
    web_run: Callable[..., WebRun], fake_llm: Callable[..., ServerThread], tmp_path: Path
) -> None:
    run = web_run("--html", str(tmp_path / "page.html"))
    (first,) = run.wait_for_tests(1)  # the profile starts with the UI and ends after 2 s
    assert first["test"] == 1 and first["turns"] > 0 and first["ended"] == "completed"
    other = fake_llm()  # the form's host: a second server
    for expected in (2, 3):
        before = len(other.app.state.fake.recorded)
        form = {"user_count": "3", "spawn_rate": "3", "host": f"{other.url}/v1"}  # what the form posts
        started = httpx.post(f"{run.url}/swarm", data=form, timeout=10).json()
        assert started["success"], started
        tests = run.wait_for_tests(expected)
        assert len(other.app.state.fake.recorded) > before  # this test sent requests, to the form's host
        latest = tests[-1]
        assert latest["test"] == expected and latest["turns"] > 0 and latest["target"] == f"{other.url}/v1"
        assert latest["users"] == 3 and latest["peak_users"] == 3  # the form's users, not --users
        assert latest["duration_s"] >= 1.5  # the profile ran from its start again, not ending at once
        run.wait_for("stopped")
    tests = run.tests()
    assert tests[0] == first  # the second and third tests wrote beside it, not over it
    (folder,) = list(run.report_dir.iterdir())
    for number in (1, 2, 3):
        assert {"load_vapi.json", "load_vapi.csv", "locust.json"} <= {
            p.name for p in (folder / f"test-{number}").iterdir()
        }
        assert "vapi-harness load" in (tmp_path / f"page-{number}.html").read_text()
    code, out = run.quit()
    assert code == 130
    assert "test 1:" in out and "test 3:" in out and "interrupted" not in out


def test_reset_stats_clears_the_voice_latency_samples_too(web_run: Callable[..., WebRun]) -> None:
    run = web_run("--run-time", "30s")
    rows: list[dict[str, Any]] = []
    for _ in range(300):  # bounded: until a few ttft samples are in
        rows = run.voice_rows()
        if rows and rows[0]["metric"] == "ttft_ms" and rows[0]["n"] >= 8:
            break
        time.sleep(_POLL_S)
    assert rows and rows[0]["n"] >= 8, run.log()
    assert httpx.post(f"{run.url}/stats/reset", timeout=10).text == "ok"
    ttft = run.voice_rows()[0]
    assert ttft["metric"] == "ttft_ms" and ttft["n"] < rows[0]["n"]  # emptied (a turn or two may have ended since)
    code, out = run.quit()
    assert code == 130 and "interrupted (SIGINT) after" in out


_CLICK = """(() => {{ const b = [...document.querySelectorAll('{selector}')]
  .find(e => e.textContent.trim().toLowerCase() === '{text}'); if (!b) return false; b.click(); return true; }})()"""
_TABLE = """(() => { const rows = [...document.querySelectorAll('table tbody tr')]
  .map(r => [...r.querySelectorAll('td')].map(c => c.textContent.trim()));
  return rows.length && rows[0][0] === 'ttft_ms' && Number(rows[0][1]) > 0 ? rows : null; })()"""
# React owns the form's inputs: set the value through the native setter, then tell React.
_SET_USERS = """(() => { const i = document.querySelector('form input[name=userCount]'); if (!i) return false;
  Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(i, '3');
  i.dispatchEvent(new Event('input', {bubbles: true})); return i.value === '3'; })()"""


def test_the_voice_latency_tab_in_chromium_shows_numbers_and_verdicts_and_a_second_test_starts_from_the_ui(
    web_run: Callable[..., WebRun],
) -> None:
    browser = require_chromium()
    run = web_run("--run-time", "4s")
    tab = _CLICK.format(selector="[role=tab]", text="voice latency")
    seen = load_url(browser, run.url + "/", {"rows": _TABLE, "tabs": "document.body.innerText"}, steps=(tab, _TABLE))
    assert seen.errors == [] and len(seen.steps_held) == 2, (seen, run.log())
    rows = seen.values["rows"]
    assert [r[0] for r in rows[:4]] == ["ttft_ms", "first_sentence_ms", "total_ms", "max_gap_ms"]  # ttft first
    ttft = rows[0]
    assert int(ttft[1]) > 0 and float(ttft[2]) <= float(ttft[4]) <= float(ttft[6])  # p50 <= p95 <= max
    assert ttft[7].startswith("ttft_p95_ms: ") and ttft[7].endswith("(limit 800 ms): met")
    assert any(r[0].startswith("error rate") and "error_rate: 0 (limit 0.01): met" in r[7] for r in rows)
    run.wait_for_tests(1)
    run.wait_for("stopped")
    steps = (
        _CLICK.format(selector="button", text="new"),
        _SET_USERS,
        _CLICK.format(selector="form button", text="start"),
    )
    second = load_url(browser, run.url + "/", {}, steps=steps)
    assert second.errors == [] and len(second.steps_held) == 3, second
    tests = run.wait_for_tests(2)
    assert tests[1]["turns"] > 0 and tests[1]["peak_users"] == 3  # started from the form, with its user count
    assert run.quit()[0] == 130
