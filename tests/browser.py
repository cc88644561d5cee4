"""Headless Chromium for tests: Debian's `chromium`, installed by the test set-up when missing, driven over the
DevTools protocol (aiohttp's websocket client) to load a page (a file or a URL), wait for it to show what is
expected, and collect its console errors.

A test that needs the browser calls `require_chromium()`: without one it is skipped on a developer's machine, and
it fails under CI (`CI=true`), where no test may be skipped."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

__all__ = ["FLAGS", "PageLoad", "chromium", "load_page", "load_url", "require_chromium"]

# Without the background-networking flags Chromium keeps trying hosts this closed network refuses.
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip
_INSTALL_TIMEOUT_S = 900


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def chromium() -> tuple[str | None, str]:
    """The browser's path, installing Debian's package when it is missing; else None and why (a test may skip
    then). Under CI a missing browser fails the test here: no test is skipped in CI."""
    found, why = _find_or_install()
    if found is None and _in_ci():
        pytest.fail(f"CI needs a browser for this test: {why}")
    return found, why


def _find_or_install() -> tuple[str | None, str]:
    found = shutil.which("chromium")
    if found:
        return found, ""
    if not shutil.which("apt-get"):
        return None, "chromium is not installed and this machine has no apt-get to install it"
    if os.geteuid() != 0:
        return None, "chromium is not installed and installing Debian's package needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "chromium"],
    ):
        done = subprocess.run(command, capture_output=True, text=True, timeout=_INSTALL_TIMEOUT_S, env=env, check=False)
        if done.returncode != 0:
            return None, f"installing chromium failed: {' '.join(command)}: {done.stderr.strip()[-300:]}"
    found = shutil.which("chromium")
    return (found, "") if found else (None, "apt-get installed chromium but it is not on PATH")


def require_chromium() -> str:
    """The browser's path; without one, the test is skipped, or fails under CI (no test is skipped there)."""
    found, why = chromium()
    if found is None:
        pytest.skip(why)
    return found


@dataclass
class PageLoad:
    """What a page did when it loaded: console errors, the value of each expression, and which wait steps held
    (each is a JavaScript expression polled until it is truthy)."""

    errors: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    steps_held: list[str] = field(default_factory=list)


_STEP_POLL_S = 0.1


async def _session(
    port: int, url: str, expressions: dict[str, str], steps: tuple[str, ...] = (), step_timeout_s: float = 20.0
) -> PageLoad:
    result = PageLoad()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json()
        target = next(t for t in targets if t.get("type") == "page")
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            ids = iter(range(1, 10_000))
            pending: dict[int, asyncio.Future[Any]] = {}
            loaded = asyncio.Event()

            async def send(method: str, **params: Any) -> Any:
                message_id = next(ids)
                pending[message_id] = asyncio.get_running_loop().create_future()
                await ws.send_json({"id": message_id, "method": method, "params": params})
                return await asyncio.wait_for(pending[message_id], 30)

            async def receive() -> None:
                async for message in ws:
                    data = json.loads(message.data)
                    if "id" in data and data["id"] in pending:
                        pending.pop(data["id"]).set_result(data.get("result"))
                    method = data.get("method")
                    params = data.get("params", {})
                    if method == "Runtime.exceptionThrown":
                        result.errors.append(str(params["exceptionDetails"].get("text")))
                    elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                        result.errors.append(" ".join(str(a.get("value")) for a in params.get("args", [])))
                    elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                        result.errors.append(str(params["entry"].get("text")))
                    elif method == "Page.loadEventFired":
                        loaded.set()

            reader = asyncio.create_task(receive())
            try:
                for domain in ("Runtime", "Log", "Page"):
                    await send(f"{domain}.enable")
                await send("Page.navigate", url=url)
                await asyncio.wait_for(loaded.wait(), 30)
                for step in steps:  # each polled until truthy, a bounded number of times
                    for _ in range(int(step_timeout_s / _STEP_POLL_S)):
                        evaluated = await send("Runtime.evaluate", expression=step, returnByValue=True)
                        if evaluated["result"].get("value"):
                            result.steps_held.append(step)
                            break
                        await asyncio.sleep(_STEP_POLL_S)
                    else:
                        break  # a step that never held: the rest would not hold either
                for name, expression in expressions.items():
                    evaluated = await send("Runtime.evaluate", expression=expression, returnByValue=True)
                    result.values[name] = evaluated["result"].get("value")
            finally:
                reader.cancel()
    return result


def load_page(browser: str, page: Path, expressions: dict[str, str]) -> PageLoad:
    """Open `page` in a fresh headless Chromium; its console errors, and the values of `expressions`."""
    return load_url(browser, page.resolve().as_uri(), expressions)


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill Chromium and its helper processes (its own process group on POSIX), then reap it."""
    if os.name == "posix":
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
    process.kill()
    process.wait(timeout=30)


def load_url(
    browser: str, url: str, expressions: dict[str, str], steps: tuple[str, ...] = (), step_timeout_s: float = 20.0
) -> PageLoad:
    """Open `url` in a fresh headless Chromium, wait for each of `steps` in turn (JavaScript polled until truthy,
    at most `step_timeout_s` each: a step may click), then evaluate `expressions`."""
    # Chromium's helper processes may still write to the profile as it is removed: the whole group is killed
    # first, and a file written in that last instant does not fail the test.
    with tempfile.TemporaryDirectory(prefix="chromium-", ignore_cleanup_errors=True) as profile:
        command = [browser, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"]
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=os.name == "posix"
        )
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            for _ in range(300):  # bounded wait for the DevTools port
                if port_file.exists() and port_file.read_text().strip():
                    break
                time.sleep(0.05)
            port = int(port_file.read_text().splitlines()[0])
            return asyncio.run(_session(port, url, expressions, steps, step_timeout_s))
        finally:
            _kill_group(process)
