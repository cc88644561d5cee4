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
        done = run_command("mock-vapi", "--port", str(busy), "--db", ":memory:")
    assert done.returncode == 2 and f"cannot listen on 127.0.0.1:{busy}" in done.stderr
    assert "Traceback" not in done.stderr
