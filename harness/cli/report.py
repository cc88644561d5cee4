"""`vapi-harness report RUN.json`: re-render a saved run as HTML and/or Markdown (and on the terminal)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.reporting import markdown_summary, render_html, validate_document

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    """Register the `report` subcommand."""
    parser = subparsers.add_parser(
        "report",
        help="re-render a saved run (report.json) as HTML or Markdown",
        description="Render a run's JSON report again: a self-contained HTML page and/or a Markdown summary. "
        "Without --html or --markdown, the Markdown summary goes to stdout.",
    )
    parser.add_argument("run", type=Path, metavar="RUN.json", help="a report.json written by check")
    parser.add_argument("--html", type=Path, metavar="PATH", help="write the HTML report here")
    parser.add_argument("--markdown", type=Path, metavar="PATH", help="write the Markdown summary here")
    parser.set_defaults(handler=run)


def _load(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: not JSON: {exc}") from None
    problems = validate_document(document)
    if problems:
        raise ConfigError(f"{path}: not a vapi-harness report: {problems[0]}")
    assert isinstance(document, dict)
    return document


def _write(path: Path, text: str) -> None:
    if path.is_dir():
        raise ConfigError(f"{path} is a directory; give a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    """Render; exit 2 for a file that is not a report."""
    document = _load(args.run)
    if args.html is not None:
        _write(args.html, render_html(document))
        sys.stderr.write(f"HTML report: {args.html}\n")
    if args.markdown is not None:
        _write(args.markdown, markdown_summary(document))
    if args.html is None and args.markdown is None:
        sys.stdout.write(markdown_summary(document))
    return 0
