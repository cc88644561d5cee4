"""The `vapi_explore` fixture in a user's own suite, run by pytest in a separate process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.servers import ServerThread

pytestmark = pytest.mark.slow

SECRET = "sk-explore-plugin-secret-5"
TESTS = """\
def test_explore(vapi_explore):
    found = vapi_explore(max_examples=MAX, seed=1)
    assert found.examples >= MAX
"""
ENV = {**os.environ, "COLUMNS": "200"}


def _pytest(folder: Path, url: str, max_examples: int, *args: str) -> subprocess.CompletedProcess[str]:
    (folder / "test_explore.py").write_text(TESTS.replace("MAX", str(max_examples)))
    command = [sys.executable, "-m", "pytest", str(folder), "-p", "no:cacheprovider", "--rootdir", str(folder)]
    command += ["--vapi-url", url, "--vapi-api-key", SECRET, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, cwd=folder, env=ENV)


def test_an_exploration_that_finds_nothing_passes(tmp_path: Path, fake_llm: Callable[..., ServerThread]) -> None:
    server = fake_llm(ttft_ms=0, chunk_delay_ms=0)
    done = _pytest(tmp_path, f"{server.url}/v1", 15)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def test_a_failure_shows_the_smallest_request_and_its_body_under_vv(
    tmp_path: Path, fake_llm: Callable[..., ServerThread]
) -> None:
    server = fake_llm(faults={"astral-500"}, ttft_ms=0, chunk_delay_ms=0, api_key=SECRET)
    url = f"{server.url}/v1"
    done = _pytest(tmp_path, url, 100, "-ra")
    assert done.returncode == 1, done.stdout + done.stderr
    out = done.stdout
    flowing = " ".join(out.split())  # the report wraps at 100 columns
    assert "\n✗ status_is_success: HTTP 500" in out
    assert "\n  smallest request (after " in out and f"POST {url}/chat/completions, " in flowing
    assert "\n  reproducer: " in out and ".jsonl (vapi-harness check --url URL --replay it)" in flowing
    assert "\n(pytest -vv shows each request's whole body)" in out
    assert '"messages": [' not in out  # no body without -vv
    summary = next(line for line in out.splitlines() if line.startswith("FAILED "))
    assert "test_explore - Failed: vapi_explore: 1 distinct failure(s) in " in summary
    assert "Traceback" not in out and SECRET not in out
    assert (tmp_path / ".vapi-harness" / "explore-db").is_dir()

    full = _pytest(tmp_path, url, 100, "-vv")
    assert full.returncode == 1
    assert "  body:" in full.stdout and '"messages": [' in full.stdout
    assert SECRET not in full.stdout
    report = full.stdout[full.stdout.index("vapi_explore: 1 distinct") : full.stdout.index("short test summary")]
    assert max(len(line) for line in report.splitlines() if not line.startswith(("_", "="))) <= 100
