"""`vapi-harness check`: probe an endpoint the way Vapi calls it, judge and time every reply."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import secrets
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.checks import REGISTRY, Thresholds
from harness.cli.options import (
    Option,
    Subparsers,
    add_options,
    non_negative_float,
    positive_float,
    positive_int,
    resolve,
)
from harness.endpoint import builtin_endpoint, validate_url
from harness.judging import RunSettings
from harness.replay import load_recording
from harness.reporting import (
    HtmlReport,
    JsonReport,
    JUnitReport,
    MarkdownReport,
    Redactor,
    RunWriter,
    TerminalReport,
    is_secret_header,
)
from harness.results import RunEvent, RunInfo
from harness.runner import Runner
from harness.scenarios.suites import load_suites
from harness.suite import Target, default_probes
from mock_vapi import CustomLLMModel, InvalidModelConfig, MetadataSendMode
from mock_vapi.errors import ConfigError, did_you_mean
from mock_vapi.reader import ReadLimits
from mock_vapi.scenarios.model import BARGE_IN_PAUSE_MS

__all__ = ["add_parser", "run"]

ENV_PREFIX = "VAPI_HARNESS_"
log = logging.getLogger(__name__)


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def header(text: str) -> tuple[str, str]:
    """`NAME:VALUE`."""
    name, sep, value = text.partition(":")
    name, value = name.strip(), value.strip()
    if not sep or not _TOKEN.fullmatch(name):
        raise ValueError(f"{text!r} is not NAME:VALUE (a header name has no spaces or separators)")
    if any(c in value for c in "\r\n\0"):
        raise ValueError(f"the value of {name!r} contains a line break or NUL")
    return name, value


def check_id(text: str) -> str:
    """A registered check id."""
    if text not in REGISTRY:
        raise ValueError(
            f"unknown check {text!r}.{did_you_mean(text, REGISTRY, cutoff=0)} Every check is listed in docs/checks.md."
        )
    return text


OPTIONS = [
    Option(
        "--url", "Base URL of the custom LLM, as set in model.url; without it, the built-in endpoint", metavar="URL"
    ),
    Option(
        "--api-key", "Key Vapi sends as 'Authorization: Bearer KEY' (prefer the environment variable)", metavar="KEY"
    ),
    Option("--model", "model.model sent in every request", default="vapi-harness-probe", metavar="NAME"),
    Option(
        "--metadata-send-mode",
        "model.metadataSendMode of the main probes",
        default="variable",
        choices=[m.value for m in MetadataSendMode],
    ),
    Option(
        "--header",
        "Extra model.headers entry; repeatable (env: one per line)",
        type=header,
        repeatable=True,
        metavar="NAME:VALUE",
    ),
    Option(
        "--timeout-s",
        "model.timeoutSeconds: first content or tool call must arrive within it",
        default=20.0,
        type=positive_float,
    ),
    Option("--deadline-s", "Hard bound on one request, start to end (default: --timeout-s + 10)", type=positive_float),
    Option("--close-grace-s", "How long the body may stay open after the last chunk", default=2.0, type=positive_float),
    Option("--max-run-s", "Hard bound on the whole run; reports are still written", default=300.0, type=positive_float),
    Option("--repeat", "Run the suite N times (percentiles over all runs)", default=1, type=positive_int, metavar="N"),
    Option("--strict", "Warnings fail the run too", default=False, flag_only=True),
    Option(
        "--max-stall-ms",
        "Budget for the longest gap between content events",
        default=Thresholds.max_stall_ms,
        type=positive_float,
    ),
    Option(
        "--first-sentence-ms",
        "Budget for the first speakable sentence",
        default=Thresholds.first_sentence_ms,
        type=positive_float,
    ),
    Option(
        "--barge-in-pause-ms",
        "From the barge-in probe's abort to the re-sent turn (the caller finishing the utterance, then endpointing)",
        default=BARGE_IN_PAUSE_MS,
        type=non_negative_float,
    ),
    Option("--disable", "Switch a check off; repeatable", type=check_id, repeatable=True, metavar="CHECK"),
    Option(
        "--replay",
        "Send the requests of a recording (vapi-harness proxy --record) instead of the default suite",
        type=Path,
        metavar="PATH.jsonl",
    ),
    Option(
        "--suite",
        "Play the scenarios of a suite (a .yaml file, a folder, or a shipped suite's name) instead of the "
        "default probes; repeatable",
        repeatable=True,
        metavar="PATH_OR_NAME",
    ),
    Option("--json", "Also write the JSON report here", type=Path, metavar="PATH"),
    Option("--junit", "Also write the JUnit XML report here", type=Path, metavar="PATH"),
    Option("--markdown", "Also write a Markdown summary here (e.g. $GITHUB_STEP_SUMMARY)", type=Path, metavar="PATH"),
    Option("--html", "Also write a self-contained HTML report here", type=Path, metavar="PATH"),
    Option("--report-dir", "Reports go to DIR/<run-id>/", default=Path("reports"), type=Path, metavar="DIR"),
    Option("--quiet", "No progress lines on stderr", default=False, flag_only=True),
    Option("--verbose", "List every check in the results, passing ones too", default=False, flag_only=True, short="-v"),
]


def add_parser(subparsers: Subparsers) -> None:
    """Register the `check` subcommand."""
    parser = subparsers.add_parser(
        "check",
        help="check an endpoint the way Vapi calls it",
        description="Send the requests Vapi sends to a custom LLM, judge every reply and time it. "
        "Exit 0 when all checks pass, 1 when one fails, 2 for bad input.",
    )
    add_options(parser, OPTIONS, ENV_PREFIX)
    parser.set_defaults(handler=run)


@dataclass(frozen=True)
class _Config:
    values: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        return self.values[name]


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
    """Results at the terminal's width, or `COLUMNS`; piped without `COLUMNS`, 100 columns (a CI log)."""
    console = Console(highlight=False)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = 100
    return console


@contextmanager
def _endpoint(config: _Config) -> Iterator[tuple[str, bool]]:
    """The URL to check: --url, or the built-in endpoint (the reference proxy in front of the fake LLM)."""
    if config.url:
        yield config.url, False
        return
    with builtin_endpoint(config.api_key) as url:
        yield url, True


def _model(config: _Config, url: str) -> CustomLLMModel:
    headers = {}
    for name, value in config.header:
        if name.lower() == "authorization":
            log.warning("--header Authorization ignored: Vapi never lets model.headers set it; use --api-key")
            continue
        headers[name] = value
    vapi_model = {
        "provider": "custom-llm",
        "url": url,
        "model": config.model,
        "metadataSendMode": config.metadata_send_mode,
        "headers": headers,
        "timeoutSeconds": config.timeout_s,
        "messages": [],
    }
    try:
        return CustomLLMModel.from_vapi(vapi_model)
    except InvalidModelConfig as exc:
        raise ConfigError(str(exc)) from None


def run(args: argparse.Namespace) -> int:
    """Run the default suite; return the exit code."""
    config = _Config(resolve(args, OPTIONS, ENV_PREFIX))
    if config.url:
        validate_url(config.url)
    deadline_s = config.deadline_s or config.timeout_s + 10
    if deadline_s <= config.timeout_s:
        raise ConfigError(f"--deadline-s ({deadline_s:g}) must be greater than --timeout-s ({config.timeout_s:g})")
    redactor = Redactor([config.api_key, *(value for name, value in config.header if is_secret_header(name))])
    handlers = logging.getLogger().handlers
    for handler in handlers:
        handler.addFilter(redactor)
    try:
        return _run(config, redactor, deadline_s)
    finally:
        for handler in handlers:
            handler.removeFilter(redactor)


def _run(config: _Config, redactor: Redactor, deadline_s: float) -> int:
    run_id = datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)
    out_dir = config.report_dir / run_id
    if config.suite and config.replay:
        raise ConfigError("--suite and --replay cannot be combined: each replaces the default probes")
    scenarios = load_suites(config.suite) if config.suite else []
    _check_writable(out_dir, config.json, config.junit, config.markdown, config.html)
    writers: list[RunWriter] = [
        TerminalReport(
            _stdout_console(),
            Console(stderr=True, quiet=config.quiet, highlight=False),
            redactor,
            verbose=config.verbose,
        ),
        JsonReport(out_dir / "report.json", redactor),
        JUnitReport(out_dir / "junit.xml", redactor),
    ]
    if config.json:
        writers.append(JsonReport(config.json, redactor))
    if config.junit:
        writers.append(JUnitReport(config.junit, redactor))
    if config.markdown:
        writers.append(MarkdownReport(config.markdown, redactor))
    if config.html:
        writers.append(HtmlReport(config.html, redactor))
    settings = RunSettings(
        repeat=config.repeat,
        limits=ReadLimits(deadline_s=deadline_s, close_grace_s=config.close_grace_s),
        thresholds=Thresholds(max_stall_ms=config.max_stall_ms, first_sentence_ms=config.first_sentence_ms),
        disabled_checks=frozenset(config.disable),
    )
    with _endpoint(config) as (url, builtin):
        model = _model(config, url)
        if config.replay:
            probes = load_recording(config.replay, model, config.api_key)
        elif scenarios:
            probes = []
        else:
            probes = default_probes(Target(model, config.api_key), barge_in_pause_ms=config.barge_in_pause_ms)
        info = RunInfo(
            run_id=run_id,
            url=url,
            model=config.model,
            metadata_send_mode=config.metadata_send_mode,
            builtin=builtin,
            authenticated=bool(config.api_key),
            timeout_s=config.timeout_s,
            repeat=config.repeat,
            strict=config.strict,
            probes=tuple(p.name for p in probes),
            started_at=datetime.now(UTC),
            suites=tuple(config.suite),
            scenarios=tuple(s.name for s in scenarios),
            thresholds=(("max_stall_ms", config.max_stall_ms), ("first_sentence_ms", config.first_sentence_ms)),
        )
        runner = Runner(info, probes, settings, scenarios, api_key=config.api_key, headers=model.headers)
        try:
            passed = asyncio.run(_drive(runner, writers, config.max_run_s))
        except KeyboardInterrupt:
            # asyncio.run re-raises Ctrl-C after _drive has written the reports.
            sys.stderr.write(f"Interrupted. Partial reports are in {out_dir}\n")
            return 130
    sys.stderr.write(f"Reports: {out_dir}\n")
    return 0 if passed else 1


async def _drive(runner: Runner, writers: Sequence[RunWriter], max_run_s: float) -> bool:
    def dispatch(event: RunEvent) -> None:
        for writer in writers:
            try:
                writer.handle_event(event)
            except OSError as exc:  # one unwritable report must not lose the others
                log.error("Could not write a report (%s): %s", type(writer).__name__, exc)

    try:
        async with asyncio.timeout(max_run_s):
            async for event in runner.events():
                dispatch(event)
    except TimeoutError:
        dispatch(runner.interrupted(f"the run exceeded --max-run-s {max_run_s:g}"))
    except asyncio.CancelledError:
        dispatch(runner.interrupted("Ctrl-C"))
        raise
    finally:
        for writer in writers:
            writer.close()
    # A bool, not the run: asyncio.run's teardown takes the repr of what the main task returns.
    return runner.run.passed
