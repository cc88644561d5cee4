"""Headless Chromium for tests: Debian's `chromium`, installed by the test set-up when missing, driven over the
DevTools protocol (aiohttp's websocket client) to load a page and collect its console errors."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

__all__ = ["FLAGS", "PageLoad", "chromium", "load_page"]

# Without the background-networking flags Chromium keeps trying hosts this closed network refuses.
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip
_INSTALL_TIMEOUT_S = 900


def chromium() -> tuple[str | None, str]:
    """The browser's path, installing Debian's package when it is missing; else None and why."""
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


@dataclass
class PageLoad:
    """What a page did when it loaded."""

    errors: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)


async def _session(port: int, page: Path, expressions: dict[str, str]) -> PageLoad:
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
                await send("Page.navigate", url=page.resolve().as_uri())
                await asyncio.wait_for(loaded.wait(), 30)
                for name, expression in expressions.items():
                    evaluated = await send("Runtime.evaluate", expression=expression, returnByValue=True)
                    result.values[name] = evaluated["result"].get("value")
            finally:
                reader.cancel()
    return result


def load_page(browser: str, page: Path, expressions: dict[str, str]) -> PageLoad:
    """Open `page` in a fresh headless Chromium; its console errors, and the values of `expressions`."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        command = [browser, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            port_file = Path(profile) / "DevToolsActivePort"
            for _ in range(300):  # bounded wait for the DevTools port
                if port_file.exists() and port_file.read_text().strip():
                    break
                time.sleep(0.05)
            port = int(port_file.read_text().splitlines()[0])
            return asyncio.run(_session(port, page, expressions))
        finally:
            process.kill()
            process.wait(timeout=30)
