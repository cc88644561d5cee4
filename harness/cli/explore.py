"""`vapi-harness explore`: generated Vapi conversations find the input that breaks an endpoint, shrink it, and
save it as a reproducer `check --replay` sends again."""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.cli.options import Option, Subparsers, add_options, number, positive_float, positive_int, resolve
from harness.endpoint import builtin_endpoint, validate_url
from harness.explore.reports import ExploreJson, ExploreJUnit, ExploreMarkdown, ExploreWriter
from harness.explore.reproducer import write_reproducers
from harness.explore.results import ExploreEvent, ExploreInfo, ExploreResult
from harness.explore.runner import Explorer, ExploreSettings
from harness.explore.terminal import ExploreTerminal
from harness.protocol import Redactor
from mock_vapi.errors import ConfigError

__all__ = ["DATABASE_DIR", "ENV_PREFIX", "OPTIONS", "add_parser", "run"]

ENV_PREFIX = "VAPI_HARNESS_EXPLORE_"
DATABASE_DIR = "explore-db"  # under --report-dir: Hypothesis's examples database, kept across runs
MAX_CONCURRENCY = 64
log = logging.getLogger(__name__)


def seed_value(text: str) -> int:
    """A whole number >= 0."""
    return int(number(text, whole=True))


def concurrency(text: str) -> int:
    """A whole number from 1 to `MAX_CONCURRENCY`."""
    value = positive_int(text)
    if value > MAX_CONCURRENCY:
        raise ValueError(f"{text!r} must be at most {MAX_CONCURRENCY}")
    return value


OPTIONS = [
    Option(
        "--url", "Base URL of the custom LLM, as set in model.url; without it, the built-in endpoint", metavar="URL"
    ),
    Option(
        "--api-key", "Key Vapi sends as 'Authorization: Bearer KEY' (prefer the environment variable)", metavar="KEY"
    ),
    Option(
        "--max-examples",
        "Conversations to send; no round of generation starts past it (shrinking a failure may send more)",
        default=200,
        type=positive_int,
        metavar="N",
    ),
    Option("--seed", "Seed of the generator: the same seed draws the same examples", type=seed_value, metavar="N"),
    Option("--max-run-s", "Hard bound on the whole run; reports are still written", default=300.0, type=positive_float),
    Option("--concurrency", "Requests in flight at once", default=1, type=concurrency, metavar="N"),
    Option("--strict", "Warnings are failures too", default=False, flag_only=True),
    Option("--json", "Also write the JSON report here", type=Path, metavar="PATH"),
    Option("--junit", "Also write the JUnit XML report here", type=Path, metavar="PATH"),
    Option("--markdown", "Also write a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY)", type=Path, metavar="PATH"),
    Option(
        "--report-dir",
        f"Reports and reproducers go to DIR/<run-id>/; earlier failures are kept in DIR/{DATABASE_DIR}",
        default=Path("reports"),
        type=Path,
        metavar="DIR",
    ),
    Option("--quiet", "No progress bar on stderr", default=False, flag_only=True),
]


def add_parser(subparsers: Subparsers) -> None:
    """Register the `explore` subcommand."""
    parser = subparsers.add_parser(
        "explore",
        help="find the Vapi request that breaks an endpoint, shrunk to its smallest",
        description="Send generated Vapi conversations, judge every reply as check does, shrink each distinct "
        "failure to the smallest request that fails the same way and save it for check --replay. "
        "Exit 0 when nothing failed, 1 when something did, 2 for bad input, 130 when interrupted.",
    )
    add_options(parser, OPTIONS, ENV_PREFIX)
    parser.set_defaults(handler=run)


def _check_writable(out_dir: Path, *files: Path | None) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--report-dir: cannot create {out_dir}: {exc.strerror}") from None
    for path in files:
        if path is None:
            continue
        if path.is_dir():
            raise ConfigError(f"report path {path} is a directory; give a file name")
        if not path.parent.is_dir():
            raise ConfigError(f"report path {path}: the folder {path.parent} does not exist")


def _stdout_console() -> Console:
    """The summary at the terminal's width, or `COLUMNS`; piped without `COLUMNS`, 100 columns (a CI log)."""
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 100
    return console


@contextmanager
def _endpoint(url: str | None, api_key: str | None) -> Iterator[tuple[str, bool]]:
    if url:
        yield url, False
        return
    with builtin_endpoint(api_key) as builtin:
        yield builtin, True


def _writers(values: dict[str, Any], out_dir: Path, redactor: Redactor) -> list[ExploreWriter]:
    err = Console(stderr=True, quiet=values["quiet"], highlight=False)
    writers: list[ExploreWriter] = [
        ExploreTerminal(_stdout_console(), err, redactor),
        ExploreJson(out_dir / "explore.json", redactor),
        ExploreJUnit(out_dir / "junit.xml", redactor),
    ]
    if values["json"]:
        writers.append(ExploreJson(values["json"], redactor))
    if values["junit"]:
        writers.append(ExploreJUnit(values["junit"], redactor))
    if values["markdown"]:
        writers.append(ExploreMarkdown(values["markdown"], redactor))
    return writers


def _dispatcher(writers: Sequence[ExploreWriter]) -> Any:
    def dispatch(event: ExploreEvent) -> None:
        for writer in writers:
            try:
                writer.handle_event(event)
            except OSError as exc:  # one unwritable report must not lose the others
                log.error("Could not write a report (%s): %s", type(writer).__name__, exc)

    return dispatch


def run(args: argparse.Namespace) -> int:
    """Explore; return the exit code."""
    values = resolve(args, OPTIONS, ENV_PREFIX)
    if values["url"]:
        validate_url(values["url"])
    redactor = Redactor([values["api_key"]])
    handlers = logging.getLogger().handlers
    for handler in handlers:
        handler.addFilter(redactor)
    try:
        return _run(values, redactor)
    finally:
        for handler in handlers:
            handler.removeFilter(redactor)


def _run(values: dict[str, Any], redactor: Redactor) -> int:
    run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
    report_dir: Path = values["report_dir"]
    out_dir = report_dir / run_id
    _check_writable(out_dir, values["json"], values["junit"], values["markdown"])
    seed = values["seed"] if values["seed"] is not None else secrets.randbelow(2**32)
    writers = _writers(values, out_dir, redactor)
    settings = ExploreSettings(
        max_examples=values["max_examples"],
        max_run_s=values["max_run_s"],
        concurrency=values["concurrency"],
        strict=values["strict"],
        database=report_dir / DATABASE_DIR,
    )

    def finish(found: ExploreResult) -> None:
        try:
            write_reproducers(found, out_dir / "reproducers", redactor)
        except OSError as exc:
            log.error("Could not write the reproducers: %s", exc)

    try:
        with _endpoint(values["url"], values["api_key"]) as (url, builtin):
            info = ExploreInfo(
                run_id=run_id,
                url=url,
                builtin=builtin,
                authenticated=bool(values["api_key"]),
                started_at=datetime.now(UTC),
                seed=seed,
                max_examples=settings.max_examples,
                max_run_s=settings.max_run_s,
                concurrency=settings.concurrency,
                strict=settings.strict,
                database=str(settings.database),
            )
            explorer = Explorer(info, settings, _dispatcher(writers), api_key=values["api_key"], finish=finish)
            try:
                found = explorer.explore()
            except KeyboardInterrupt:
                sys.stderr.write(f"Interrupted. What was found is in {out_dir}\n")
                return 130
    finally:
        for writer in writers:
            writer.close()
    sys.stderr.write(f"Reports: {out_dir}\n")
    return 0 if found.passed else 1
