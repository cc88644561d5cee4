"""What every command that runs against an endpoint does the same way: its run id, its output paths checked
before anything is sent, the console its results go to, the endpoint it talks to, its log lines redacted, and
its events handed to every writer."""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from rich.console import Console

from harness.endpoint import builtin_endpoint
from harness.protocol import Redactor
from harness.reporting import EventWriter
from mock_vapi.errors import ConfigError

__all__ = [
    "check_output_files",
    "dispatcher",
    "endpoint",
    "make_report_dir",
    "new_run_id",
    "redacted_logs",
    "stdout_console",
]

E = TypeVar("E")
log = logging.getLogger(__name__)


def new_run_id() -> str:
    """A run's id, the name of its report folder: UTC time to the second and four random hex digits."""
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def make_report_dir(out_dir: Path) -> None:
    """Create the run's report folder, or name `--report-dir` in one line."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--report-dir: cannot create {out_dir}: {exc.strerror}") from None


def check_output_files(files: Mapping[str, Path | None], *, folders_made: bool = False) -> None:
    """Each file a flag names (flag -> path, None when not given) can be written: not a folder, and its folder
    exists (unless the writer makes it: `folders_made`)."""
    for flag, path in files.items():
        if path is None:
            continue
        if path.is_dir():
            raise ConfigError(f"{flag}: {path} is a directory; give a file name")
        if not folders_made and not path.parent.is_dir():
            raise ConfigError(f"{flag}: the folder {path.parent} does not exist")


def stdout_console() -> Console:
    """Results at the terminal's width, or `COLUMNS`; piped without `COLUMNS`, 100 columns (a CI log)."""
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 100
    return console


@contextmanager
def endpoint(url: str | None, api_key: str | None) -> Iterator[tuple[str, bool]]:
    """The URL to talk to and whether it is the built-in endpoint (the reference proxy in front of the fake LLM),
    which runs while the block does when no `url` is given."""
    if url:
        yield url, False
        return
    with builtin_endpoint(api_key) as builtin:
        yield builtin, True


@contextmanager
def redacted_logs(redactor: Redactor) -> Iterator[None]:
    """Every log line written while the block runs goes through `redactor`."""
    handlers = logging.getLogger().handlers
    for handler in handlers:
        handler.addFilter(redactor)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(redactor)


def dispatcher(writers: Sequence[EventWriter[E]]) -> Callable[[E], None]:
    """A function that hands an event to every writer; one writer that cannot write is logged, not fatal."""

    def dispatch(event: E) -> None:
        for writer in writers:
            try:
                writer.handle_event(event)
            except OSError as exc:  # one unwritable report must not lose the others
                log.error("Could not write a report (%s): %s", type(writer).__name__, exc)

    return dispatch
