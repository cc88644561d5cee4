"""`vapi-harness proxy` as a user starts it: a real process in front of the fake upstream."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.fake_llm import FakeLLMConfig, create_app
from harness.servers import ServerThread
from tests.commands import run_command

pytestmark = pytest.mark.slow
DOCS = Path(__file__).parents[2] / "docs"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_proxy_command_serves_and_passes_check_with_the_example_hook(
    serve: Callable[[Any], ServerThread], run_cli: Callable[..., Any]
) -> None:
    upstream = serve(create_app(FakeLLMConfig(ttft_ms=2, chunk_delay_ms=2)))
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": str(DOCS), "OPENAI_API_KEY": "sk-upstream-secret-42"}
    command = [sys.executable, "-m", "harness", "proxy", "--upstream-url", f"{upstream.url}/v1", "--port", str(port)]
    command += ["--hooks", "hooks_example:add_caller_context"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(200):  # bounded wait for the port to open
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        result = run_cli("check", "--url", f"http://127.0.0.1:{port}/v1", "--strict", "--timeout-s", "3")
        assert result.code == 0, result.out
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    received = upstream.app.state.fake.recorded[0]
    assert received.headers["authorization"] == "[redacted]"
    assert received.body["messages"][0]["content"].startswith("The caller's number is +15551234567")
    assert "sk-upstream-secret-42" not in err
    assert '"call_id"' in err


def test_proxy_command_rejects_bad_options() -> None:
    done = run_command("proxy", "--upstream-url", "http://127.0.0.1:9/v1", "--port", "x")
    assert done.returncode == 2
    assert "--port: 'x' is not a port number" in done.stderr


def test_proxy_command_says_when_the_port_is_taken() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_command("proxy", "--upstream-url", "http://127.0.0.1:9/v1", "--port", str(port))
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr
