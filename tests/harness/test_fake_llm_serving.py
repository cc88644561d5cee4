"""`vapi-harness fake-llm` binding its port, and the fake reading request bodies as our other servers do."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

import httpx
import pytest

from harness.servers import ServerThread
from tests.commands import run_command
from tests.serving import Served

pytestmark = pytest.mark.slow


def test_a_busy_port_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_command("fake-llm", "--port", str(port), timeout_s=30)
    assert done.returncode == 2
    # No "base URL" line before it: the socket is bound before anything says where it is.
    assert done.stderr.splitlines() == [
        f"vapi-harness fake-llm: error: cannot listen on 127.0.0.1:{port}: the address is already in use"
    ]


def test_the_base_url_is_printed_once_it_listens() -> None:
    served = Served("fake-llm", "--port", "0")
    try:
        port = served.port()
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code == 200  # at once, no retry
    finally:
        served.stop()


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"messages": [], "x": ' + b'{"a": ' * 100_000, b'{"messages": [], "temperature": NaN}'],
    ids=["deep-array", "deep-object", "nan"],
)
def test_a_bad_body_is_openais_400(
    body: bytes, fake_llm: Callable[..., ServerThread], caplog: pytest.LogCaptureFixture
) -> None:
    server = fake_llm()
    with caplog.at_level(logging.WARNING):
        reply = httpx.post(f"{server.url}/v1/chat/completions", content=body, timeout=10)
    assert reply.status_code == 400
    assert reply.json()["error"]["message"] == "We could not parse the JSON body of your request."
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    (recorded,) = server.app.state.fake.recorded
    assert recorded.outcome == "rejected" and recorded.body is None
    assert httpx.get(f"{server.url}/_fake/requests", timeout=10).json()[0]["body"] is None
