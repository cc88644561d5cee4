"""`vapi-harness mock-vapi` as a user starts it: a real process, a SQLite file, a key printed once."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from harness.servers import free_port
from tests.commands import run_command
from tests.serving import Served

pytestmark = pytest.mark.slow


def _serve(db: Path, *args: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    command = [sys.executable, "-m", "harness", "mock-vapi", "--port", str(port), "--db", str(db), *args]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ)
    for _ in range(200):  # bounded wait for the port
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process, port
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"mock-vapi did not listen: {process.communicate(timeout=10)}")


def _stop(process: subprocess.Popen[str]) -> str:
    process.terminate()
    _, err = process.communicate(timeout=30)
    return err


def test_generated_key_is_printed_once_kept_and_required(tmp_path: Path) -> None:
    db = tmp_path / "state" / "vapi.sqlite3"
    process, port = _serve(db)
    try:
        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/assistant").status_code == 401
    finally:
        err = _stop(process)
    match = re.search(r"API key: (mock-[0-9a-f]+)", err)
    assert match is not None, err
    key = match.group(1)
    process, port = _serve(db)  # the same file after a restart: the same key, the same data
    try:
        url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {key}"}
        created = httpx.post(f"{url}/credential", json={"provider": "groq", "apiKey": "gsk-1"}, headers=headers)
        assert created.status_code == 201
    finally:
        _stop(process)
    process, port = _serve(db, "--api-key", "chosen-key")
    try:
        listed = httpx.get(f"http://127.0.0.1:{port}/credential", headers={"Authorization": "Bearer chosen-key"})
        assert [c["provider"] for c in listed.json()] == ["groq"]
    finally:
        err = _stop(process)
    assert "chosen-key" not in err  # a key the user chose is not echoed


def test_bad_options_exit_2_with_the_reason(tmp_path: Path) -> None:
    done = run_command("mock-vapi", "--provider-url", "openia=http://127.0.0.1:1/v1", "--db", ":memory:")
    assert done.returncode == 2 and "is not PROVIDER=URL" in done.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        done = run_command("mock-vapi", "--port", str(busy), "--db", ":memory:", timeout_s=30)
    assert done.returncode == 2
    # One line, and no URL line before it: the socket is bound before anything says where it is.
    assert done.stderr.splitlines() == [
        f"vapi-harness mock-vapi: error: cannot listen on 127.0.0.1:{busy}: the address is already in use"
    ]


def _answered(port: int) -> int:
    return httpx.get(
        f"http://127.0.0.1:{port}/assistant", headers={"Authorization": "Bearer k"}, timeout=10
    ).status_code


def test_it_listens_before_it_says_where() -> None:
    served = Served("mock-vapi", "--port", "0", "--db", ":memory:", "--api-key", "k")
    try:
        assert _answered(served.port()) == 200  # at once, no retry: the URL line comes once it listens
    finally:
        served.stop()


def test_it_restarts_on_its_port_a_second_after_a_stop_with_clients_connected(tmp_path: Path) -> None:
    db = str(tmp_path / "vapi.sqlite3")
    first = Served("mock-vapi", "--port", "0", "--db", db, "--api-key", "k")
    port = first.port()
    idle = socket.create_connection(("127.0.0.1", port), timeout=10)  # a keep-alive connection, left open
    idle.sendall(b"GET /assistant HTTP/1.1\r\nHost: mock\r\nAuthorization: Bearer k\r\n\r\n")
    assert idle.recv(65536).startswith(b"HTTP/1.1 200 ")
    busy = socket.create_connection(("127.0.0.1", port), timeout=10)  # a request in flight: its body unfinished
    busy.sendall(
        b"POST /assistant HTTP/1.1\r\nHost: mock\r\nAuthorization: Bearer k\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    second = None
    try:
        first.process.terminate()
        time.sleep(1)
        second = Served("mock-vapi", "--port", str(port), "--db", db, "--api-key", "k")
        assert second.port() == port
        assert _answered(port) == 200
    finally:
        idle.close()
        busy.close()
        first.stop()
        if second is not None:
            second.stop()
