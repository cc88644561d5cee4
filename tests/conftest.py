"""Shared fixtures: real servers on loopback and a way to run the CLI."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.fake_llm import FakeLLMConfig, create_app
from harness.servers import ServerThread
from tests.token_server import TokenServer, token_app


@pytest.fixture
def serve() -> Iterator[Callable[[Any], ServerThread]]:
    """Start any ASGI app on a free loopback port; all are stopped at teardown."""
    started: list[ServerThread] = []

    def start(app: Any) -> ServerThread:
        server = ServerThread(app).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def tokens(serve: Callable[[Any], ServerThread]) -> Callable[..., tuple[TokenServer, str]]:
    """Start an OAuth2 token server of our own: `server, url = tokens(expires_in=60)`."""

    def start(**settings: Any) -> tuple[TokenServer, str]:
        server = TokenServer(**settings)
        return server, f"{serve(token_app(server)).url}/oauth/token"

    return start


@pytest.fixture
def fake_llm(serve: Callable[[Any], ServerThread]) -> Callable[..., ServerThread]:
    """Start a fake LLM: `fake_llm(faults={"no-done"}, ttft_ms=5)`; fast by default."""

    def start(**overrides: Any) -> ServerThread:
        overrides.setdefault("ttft_ms", 2.0)
        overrides.setdefault("chunk_delay_ms", 2.0)
        for key in ("faults", "quirks"):
            overrides[key] = frozenset(overrides.get(key, ()))
        return serve(create_app(FakeLLMConfig(**overrides)))

    return start


@dataclass
class CliRun:
    """The outcome of one CLI invocation."""

    code: int
    out: str
    err: str
    report: dict[str, Any] | None

    def check(self, check_id: str) -> dict[str, Any]:
        """The summary entry of one check in the JSON report."""
        assert self.report is not None
        return next(c for c in self.report["checks"] if c["id"] == check_id)

    def failed(self, severity: str | None = None) -> set[str]:
        """Ids of failed checks (with a failure of one severity: a check can fail with less than its own)."""
        assert self.report is not None
        return {
            c["id"]
            for c in self.report["checks"]
            if c["status"] == "failed" and (severity is None or any(f["severity"] == severity for f in c["failures"]))
        }


@pytest.fixture
def run_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Callable[..., CliRun]:
    """Run `vapi-harness` in-process; for `check` and `explore`, quiet, reports under `tmp_path`, and the `--json`
    report read back."""

    def run(*args: str) -> CliRun:
        argv = list(args)
        report_path = tmp_path / f"report-{len(list(tmp_path.glob('report-*.json')))}.json"
        if argv and argv[0] in ("check", "explore"):
            if "--json" not in argv:
                argv += ["--json", str(report_path)]
            if "--report-dir" not in argv:
                argv += ["--report-dir", str(tmp_path / "reports")]
            argv.append("--quiet")
        code = main(argv)
        captured = capsys.readouterr()
        report = json.loads(report_path.read_text()) if report_path.exists() else None
        return CliRun(code, captured.out, captured.err, report)

    return run


FAST_LIMITS = ("--timeout-s", "2", "--deadline-s", "4", "--close-grace-s", "0.5")


def interrupt_when(command: list[str], marker: str, timeout_s: float = 30) -> tuple[int, str]:
    """Run `command`, send it SIGINT once a line of its stderr holds `marker` (or it ends), and return its exit
    code and what it wrote to stderr after that line; it is killed if it has not ended within `timeout_s`."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    try:
        for _ in range(200):  # bounded: read stderr until the marker turns up
            line = process.stderr.readline()
            if marker in line or not line:
                break
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=timeout_s)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return process.returncode, err
