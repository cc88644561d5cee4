"""Run one of our servers (`python -m harness fake-llm`, `mock-vapi`, `proxy`) as a process, reading its stderr
line by line as it comes, every wait bounded."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Mapping

_URL = re.compile(r"http://127\.0\.0\.1:(\d+)")


class Served:
    """A server process started with `python -m harness ARGS`; its stderr is collected by a reader thread."""

    def __init__(self, *args: str, env: Mapping[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "harness", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self._new: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for raw in self.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            self._new.put(line)
        self._new.put(None)

    def next_line(self, timeout_s: float = 30) -> str:
        """The next line on stderr (bounded wait); fails when the process ends first."""
        try:
            line = self._new.get(timeout=timeout_s)
        except queue.Empty:
            raise AssertionError(f"no line on stderr within {timeout_s} s: {self.lines}") from None
        if line is None:
            raise AssertionError(f"the process ended ({self.process.wait(5)}): {self.lines}")
        return line

    def port(self, timeout_s: float = 30) -> int:
        """The port of the first line that names a loopback URL (the server says where it listens)."""
        for _ in range(20):  # a few lines of noise at most before it
            match = _URL.search(self.next_line(timeout_s))
            if match:
                return int(match.group(1))
        raise AssertionError(f"no URL on stderr: {self.lines}")

    def stop(self, timeout_s: float = 30) -> list[str]:
        """SIGTERM, wait for the exit (bounded), and every line it wrote on stderr."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout_s)
            raise AssertionError(f"the server did not stop within {timeout_s} s: {self.lines}") from None
        self._reader.join(timeout_s)
        assert self.process.stderr is not None
        self.process.stderr.close()
        return self.lines
