"""Run `python -m harness ...` as a separate process, as a user runs it."""

from __future__ import annotations

import subprocess
import sys


def run_command(*args: str, timeout_s: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the CLI with `args` and capture its output (bounded by `timeout_s`)."""
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=timeout_s, check=False
    )
