"""`vapi-harness report RUN.json`: re-render a saved run as HTML and/or Markdown (and on the terminal).

RUN.json is `check`'s report.json, or a load test's `load_vapi.json` (its raw samples, `load_vapi_samples.json`
beside it, are used when they were kept).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TypeAlias, TypeGuard, cast

from harness.cli.options import Subparsers
from harness.load.stats import LOAD_SUMMARY_KIND
from harness.reporting import markdown_summary, render_html, render_load_html, validate_document
from mock_vapi.errors import ConfigError

__all__ = ["add_parser", "run"]

_JsonValue: TypeAlias = "bool | int | float | str | list[_JsonValue] | dict[str, _JsonValue] | None"


def add_parser(subparsers: Subparsers) -> None:
    """Register the `report` subcommand."""
    parser = subparsers.add_parser(
        "report",
        help="re-render a saved run (report.json) as HTML or Markdown",
        description="Render a run's JSON report again: a self-contained HTML page and/or a Markdown summary. "
        "Without --html or --markdown, the Markdown summary goes to stdout.",
    )
    parser.add_argument(
        "run", type=Path, metavar="RUN.json", help="a report.json written by check, or a load_vapi.json written by load"
    )
    parser.add_argument("--html", type=Path, metavar="PATH", help="write the HTML report here")
    parser.add_argument("--markdown", type=Path, metavar="PATH", help="write the Markdown summary here")
    parser.set_defaults(handler=run)


_LOAD_KEYS = ("turns", "errors", "error_rate", "metrics")


def _read_json(path: Path) -> _JsonValue:
    try:
        value: _JsonValue = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{path}: not JSON: {exc}") from None
    return value


def _is_load_summary(document: _JsonValue) -> TypeGuard[dict[str, Any]]:
    """A `load_vapi.json`: marked as one, or (written before the mark) with a load summary's keys."""
    if not isinstance(document, dict):
        return False
    return document.get("kind") == LOAD_SUMMARY_KIND or ("schema_version" not in document and all(
        k in document for k in _LOAD_KEYS
    ))  # fmt: skip


def _load_samples(path: Path) -> dict[str, list[float]] | None:
    samples_path = path.with_name(path.stem + "_samples.json")
    if not samples_path.exists():
        return None
    samples = _read_json(samples_path)
    if not isinstance(samples, dict) or not all(isinstance(v, list) for v in samples.values()):
        raise ConfigError(f"{samples_path}: not the raw samples of a load run (metric -> list of ms)")
    # The lists' items are not checked here: one that is not a number fails rendering, which _render_load names.
    return cast("dict[str, list[float]]", samples)


def _load_markdown(summary: dict[str, Any]) -> str:
    """A load run's summary in Markdown: verdicts, callers, duration, turns, percentiles, failures."""
    interrupted = bool(summary.get("interrupted"))
    verdict = (
        "INTERRUPTED" if interrupted else ("PASSED" if all(s["met"] for s in summary.get("slos") or []) else "FAILED")
    )
    planned = summary.get("run_time_s")
    lasted = f"{summary.get('duration_s', 0):.1f}" + (f" of {planned:g}" if planned else "") + " s"
    lines = [f"## vapi-harness load: {verdict}", ""]
    if interrupted:
        lines += [f"Interrupted after {lasted}: the SLOs are not judged.", ""]
    lines += [f"{summary['turns']} turns, error rate {summary['error_rate']:.2%}, peak "
              f"{summary.get('peak_users', '?')} callers, {lasted} ({summary.get('target', '')})", ""]  # fmt: skip
    if summary.get("slos"):
        lines += ["| SLO | limit | measured | result |", "|---|---:|---:|---|"]
        for slo in summary["slos"]:
            value = "no samples" if slo["value"] is None else f"{slo['value']:.4g}"
            result = slo.get("verdict") or ("met" if slo["met"] else "BROKEN")
            lines.append(f"| `{slo['name']}` | {slo['limit']:g} | {value} | {result} |")
        lines.append("")
    lines += ["| metric | n | p50 | p95 | p99 | max |", "|---|---:|---:|---:|---:|---:|"]
    for name, m in summary["metrics"].items():
        lines.append(f"| {name} | {m['n']} | {m['p50']:.1f} | {m['p95']:.1f} | {m['p99']:.1f} | {m['max']:.1f} |")
    if summary["errors"]:
        lines += ["", "| failed turns | count |", "|---|---:|"]
        lines += [f"| `{name}` | {count} |" for name, count in sorted(summary["errors"].items())]
    return "\n".join(lines) + "\n"


def _render_load(path: Path, summary: dict[str, Any], args: argparse.Namespace) -> int:
    from harness import __version__

    try:
        page = render_load_html(summary, _load_samples(path), __version__) if args.html is not None else ""
        text = _load_markdown(summary)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: a load summary (load_vapi.json) this version cannot read: {exc!r}") from None
    if args.html is not None:
        _write(args.html, page)
        sys.stderr.write(f"HTML report: {args.html}\n")
    if args.markdown is not None:
        _write(args.markdown, text)
    if args.html is None and args.markdown is None:
        sys.stdout.write(text)
    return 0


def _load(path: Path, document: _JsonValue) -> dict[str, Any]:
    problems = validate_document(document)
    if problems:
        raise ConfigError(f"{path}: not a vapi-harness report (check's report.json or load's load_vapi.json): "
                          f"{problems[0]}")  # fmt: skip
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
    saved = _read_json(args.run)
    if _is_load_summary(saved):
        return _render_load(args.run, saved, args)
    document = _load(args.run, saved)
    if args.html is not None:
        _write(args.html, render_html(document))
        sys.stderr.write(f"HTML report: {args.html}\n")
    if args.markdown is not None:
        _write(args.markdown, markdown_summary(document))
    if args.html is None and args.markdown is None:
        sys.stdout.write(markdown_summary(document))
    return 0
