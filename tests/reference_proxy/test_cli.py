"""`vapi-harness proxy` as a user starts it: a real process in front of the fake upstream."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.fake_llm import FakeLLMConfig, create_app
from harness.servers import ServerThread
from tests.commands import run_command
from tests.serving import Served

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
        done = run_command("proxy", "--upstream-url", "http://127.0.0.1:9/v1", "--port", str(port), timeout_s=30)
    assert done.returncode == 2
    # One line, and no "listening" line before it: the socket is bound before anything says where it is.
    assert done.stderr.splitlines() == [
        f"vapi-harness proxy: error: cannot listen on 127.0.0.1:{port}: the address is already in use"
    ]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://h/v1", "is not an http(s) URL"),
        ("http://127.0.0.1:9/v1/chat/completions", "already ends in /chat/completions"),
        ("http://127.0.0.1:9/v1?api-version=1", "has a query or fragment"),
        ("http://127.0.0.1:port/v1", "is not a valid URL"),
    ],
    ids=["ftp", "endpoint-path", "query", "bad-port"],
)
def test_proxy_command_refuses_an_upstream_url_it_would_join_wrong(url: str, says: str) -> None:
    done = run_command("proxy", "--upstream-url", url, "--port", "0", timeout_s=30)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith("vapi-harness proxy: error: --upstream-url: ") and says in line


def _refused_port() -> int:
    """A loopback port nothing listens on: connections to it are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _proxy(upstream_url: str) -> tuple[Served, str]:
    served = Served("proxy", "--upstream-url", upstream_url, "--port", "0")
    first = json.loads(served.next_line())
    assert first["message"] == "listening"
    return served, first["url"]


def test_every_line_is_json_even_aiohttps_own_for_an_oversized_header() -> None:
    served, url = _proxy(f"http://127.0.0.1:{_refused_port()}/v1")
    try:
        with httpx.Client(timeout=10) as client:
            assert client.get(f"{url}/healthz").status_code == 200  # listening as soon as it says so
            big = client.get(f"{url}/healthz", headers={"X-Big": "a" * 20 * 1024})
            assert big.status_code == 400
            assert client.get(f"{url}/healthz").status_code == 200
    finally:
        lines = served.stop()
    parsed = [json.loads(line) for line in lines]  # every line, or this raises
    errors = [line for line in parsed if line["logger"] == "aiohttp.server"]
    assert len(errors) == 1 and "LineTooLong" in errors[0]["exception"]


def test_an_upstream_outage_writes_a_few_warnings_whose_counts_add_up() -> None:
    served, url = _proxy(f"http://127.0.0.1:{_refused_port()}/v1")
    turns = 300
    body = {"model": "m", "messages": [{"role": "user", "content": "Hi"}]}
    try:
        with httpx.Client(timeout=10) as client:
            statuses = {client.post(f"{url}/v1/chat/completions", json=body).status_code for _ in range(turns)}
    finally:
        lines = served.stop()  # the filter's last count is written as logging shuts down
    assert statuses == {502}
    warnings = [json.loads(line) for line in lines if '"level": "warning"' in line]
    assert all(line["message"].startswith("upstream unreachable: ") for line in warnings)
    assert len(warnings) <= turns // 10
    assert len(warnings) + sum(line.get("repeated", 0) for line in warnings) == turns
