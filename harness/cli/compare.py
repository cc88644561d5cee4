"""`vapi-harness compare BASELINE NEW`: did the new run get slower, or less conformant, than the baseline?

Reads two reports (check's report.json, with or without --suite, or load's load_vapi.json) and judges every
latency percentile and every verdict that changed. Exit 0: no regression; 1: a regression; 2: bad input. The
options that shape the judgement (`--max-increase`, `--confidence`) are `check --baseline`'s and
`load --baseline`'s too: they are declared here, once.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import __version__
from harness.cli.common import check_output_files
from harness.cli.options import Option, Subparsers, add_options, resolve
from harness.compare import (
    DEFAULT_CONFIDENCE,
    STATS,
    Comparison,
    Threshold,
    compare_runs,
    comparison_markdown,
    comparison_page,
    confidence_level,
    load_run,
    parse_max_increase,
    terminal_lines,
)
from harness.reporting import write_report
from mock_vapi.errors import ConfigError

__all__ = ["GATE_OPTIONS", "add_parser", "print_comparison", "run", "thresholds_of", "write_outputs"]

ENV_PREFIX = "VAPI_HARNESS_COMPARE_"

# How a comparison judges: shared by compare, check --baseline and load --baseline.
GATE_OPTIONS = [
    Option(
        "--max-increase",
        f"How much a percentile may rise: METRIC[.STAT]=VALUE, VALUE 20%, 100ms or 20%+50ms (both must be "
        f"exceeded); STAT one of {', '.join(STATS)}, all of them when left out (default for every percentile of "
        "every latency: 20%+50ms); repeatable (env: one per line)",
        type=parse_max_increase,
        repeatable=True,
        metavar="METRIC=VALUE",
    ),
    Option(
        "--confidence",
        "Confidence level of the interval of a change: a rise is a regression only when the interval lies above 0",
        default=DEFAULT_CONFIDENCE,
        type=confidence_level,
        metavar="LEVEL",
    ),
]

OPTIONS = [
    *GATE_OPTIONS,
    Option(
        "--markdown",
        "Also append the comparison in Markdown here (e.g. $GITHUB_STEP_SUMMARY)",
        type=Path,
        metavar="PATH",
    ),
    Option("--html", "Also write an HTML page with both runs' distributions here", type=Path, metavar="PATH"),
    Option("--json", "Also write the comparison as JSON here", type=Path, metavar="PATH"),
]


def add_parser(subparsers: Subparsers) -> None:
    """Register the `compare` subcommand."""
    parser = subparsers.add_parser(
        "compare",
        help="compare two runs' reports: latency regressions beyond noise, newly failing checks",
        description="Compare a run with a baseline: every latency percentile (a regression rises beyond its "
        "threshold and beyond noise: a bootstrap interval of the change), and the checks, scenarios and SLOs that "
        "newly fail or pass. Exit 0 when nothing regressed, 1 when something did, 2 for bad input. Every option "
        f"also reads {ENV_PREFIX}<OPTION>.",
    )
    parser.add_argument("baseline", type=Path, metavar="BASELINE", help="the baseline's report (e.g. main's)")
    parser.add_argument("new", type=Path, metavar="NEW", help="the new run's report")
    add_options(parser, OPTIONS, ENV_PREFIX)
    parser.set_defaults(handler=run)


def thresholds_of(values: dict[str, Any]) -> dict[tuple[str, str], Threshold]:
    """The `--max-increase` thresholds of resolved options, later flags over earlier ones."""
    return {key: threshold for pairs in values["max_increase"] for key, threshold in pairs}


def write_outputs(
    comparison: Comparison, markdown: Path | None = None, html: Path | None = None, json_path: Path | None = None
) -> None:
    """The comparison's files: Markdown appended (a step summary is appended to), HTML and JSON replaced."""
    try:
        if markdown is not None:
            write_report(markdown, comparison_markdown(comparison), append=True)
        if html is not None:
            write_report(html, comparison_page(comparison, __version__))
        if json_path is not None:
            write_report(json_path, json.dumps(comparison.document(), indent=2) + "\n")
    except OSError as exc:
        raise ConfigError(f"cannot write the comparison: {exc.strerror or exc}: {exc.filename}") from None


def print_comparison(comparison: Comparison, out: Any = None) -> None:
    """The comparison on the terminal, regressions first, at most 80 columns."""
    width = min(80, shutil.get_terminal_size((80, 24)).columns)
    stream = sys.stdout if out is None else out
    stream.write("\n".join(terminal_lines(comparison, width)) + "\n")


def run(args: argparse.Namespace) -> int:
    """Compare; 0 no regression, 1 a regression."""
    values = resolve(args, OPTIONS, ENV_PREFIX)
    check_output_files({"--markdown": values["markdown"], "--html": values["html"], "--json": values["json"]})
    baseline = load_run(args.baseline)
    new = load_run(args.new)
    comparison = compare_runs(baseline, new, thresholds_of(values), values["confidence"])
    print_comparison(comparison)
    write_outputs(comparison, values["markdown"], values["html"], values["json"])
    return 1 if comparison.regressed else 0


def gate_summary(comparison: Comparison) -> Sequence[str]:
    """The one line a gated run ends with on stderr when it regressed, naming each regression."""
    if not comparison.regressed:
        return []
    return [f"vapi-harness: regression against the baseline: {', '.join(comparison.regressions)}"]
