"""`vapi-harness explore`: generated Vapi conversations find the input that breaks an endpoint, shrink it, and
save it as a reproducer `check --replay` sends again."""

from __future__ import annotations

import argparse
import logging
import secrets
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.cli.common import (
    check_output_files,
    dispatcher,
    endpoint,
    make_report_dir,
    new_run_id,
    redacted_logs,
    stdout_console,
)
from harness.cli.options import (
    ENDPOINT_OPTIONS,
    MAX_RUN_S_OPTION,
    REPORT_FILE_OPTIONS,
    Option,
    Subparsers,
    add_options,
    number,
    positive_int,
    resolve,
)
from harness.endpoint import validate_url
from harness.explore.reports import ExploreJson, ExploreJUnit, ExploreMarkdown, ExploreWriter
from harness.explore.reproducer import write_reproducers
from harness.explore.results import ExploreInfo, ExploreResult
from harness.explore.runner import Explorer, ExploreSettings
from harness.explore.terminal import ExploreTerminal
from harness.protocol import Redactor

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
    *ENDPOINT_OPTIONS,
    Option(
        "--max-examples",
        "Conversations to send; no round of generation starts past it (shrinking a failure may send more)",
        default=200,
        type=positive_int,
        metavar="N",
    ),
    Option("--seed", "Seed of the generator: the same seed draws the same examples", type=seed_value, metavar="N"),
    MAX_RUN_S_OPTION,
    Option("--concurrency", "Requests in flight at once", default=1, type=concurrency, metavar="N"),
    Option("--strict", "Warnings are failures too", default=False, flag_only=True),
    *REPORT_FILE_OPTIONS,
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


def _writers(values: dict[str, Any], out_dir: Path, redactor: Redactor) -> list[ExploreWriter]:
    err = Console(stderr=True, quiet=values["quiet"], highlight=False)
    writers: list[ExploreWriter] = [
        ExploreTerminal(stdout_console(), err, redactor),
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


def run(args: argparse.Namespace) -> int:
    """Explore; return the exit code."""
    values = resolve(args, OPTIONS, ENV_PREFIX)
    if values["url"]:
        validate_url(values["url"])
    redactor = Redactor([values["api_key"]])
    with redacted_logs(redactor):
        return _run(values, redactor)


def _run(values: dict[str, Any], redactor: Redactor) -> int:
    run_id = new_run_id()
    report_dir: Path = values["report_dir"]
    out_dir = report_dir / run_id
    make_report_dir(out_dir)
    check_output_files({"--json": values["json"], "--junit": values["junit"], "--markdown": values["markdown"]})
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
        with endpoint(values["url"], values["api_key"]) as (url, builtin):
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
            explorer = Explorer(info, settings, dispatcher(writers), api_key=values["api_key"], finish=finish)
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
