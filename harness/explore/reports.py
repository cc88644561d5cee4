"""The reports of an exploration: the versioned JSON document (`schema/explore-report.schema.json`), JUnit XML
(a test case per distinct failure) and a Markdown summary. Each writer consumes the explorer's events and
writes once, when the run ends or is cut short; every value goes through the run's `Redactor`.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, ClassVar, Protocol

from harness.checks import Severity
from harness.explore.results import ExploreEvent, ExploreFinished, ExploreResult, Failure
from harness.protocol import Redactor
from harness.reporting import EventWriter, document_header, run_header, schema_errors, shipped_schema, write_report

__all__ = [
    "EXPLORE_SCHEMA_VERSION",
    "ExploreJUnit",
    "ExploreJson",
    "ExploreMarkdown",
    "ExploreWriter",
    "explore_document",
    "explore_junit",
    "explore_markdown",
    "explore_schema",
    "validate_explore_document",
]

EXPLORE_SCHEMA_VERSION = 1
_BODY_LIMIT = 4000  # characters of a reply kept in a report
_MARKDOWN_BODY_LIMIT = 3000  # characters of a request body in the Markdown summary


class ExploreWriter(EventWriter[ExploreEvent], Protocol):
    """Consumes the explorer's events (`explore`)."""


def _request(failure: Failure, redactor: Redactor) -> dict[str, Any]:
    request = failure.result.exchange.request
    body: Any = dict(request.json_body) if request.json_body is not None else request.body.decode("utf-8", "replace")
    return {
        "method": request.method,
        "url": redactor.text(request.url),
        "headers": redactor.headers(request.headers),
        "stream": request.stream,
        "bytes": len(request.body),
        "body": redactor.deep(body),
    }


def _response(failure: Failure, redactor: Redactor) -> dict[str, Any]:
    exchange = failure.result.exchange
    return {
        "status": exchange.status,
        "outcome": exchange.outcome.value,
        "error": redactor.text(exchange.error) if exchange.error else None,
        "bytes": exchange.body_bytes,
        "events": len(exchange.events),
        "text": redactor.text(exchange.text[:_BODY_LIMIT]),
        "body_excerpt": redactor.text(exchange.body_excerpt(_BODY_LIMIT)),
    }


def _failure(failure: Failure, redactor: Redactor) -> dict[str, Any]:
    return {
        "check": failure.key.check,
        "key": redactor.text(str(failure.key)),
        "severity": failure.severity.value,
        "title": redactor.text(failure.finding.title),
        "detail": redactor.text(failure.finding.detail),
        "first_example": failure.first_example,
        "examples": failure.examples,
        "shrink_steps": failure.shrink_steps,
        "reproducer": str(failure.reproducer) if failure.reproducer is not None else None,
        "conversation": redactor.deep(failure.summary),
        "request": _request(failure, redactor),
        "response": _response(failure, redactor),
    }


def explore_document(run: ExploreResult, redactor: Redactor) -> dict[str, Any]:
    """The JSON report of an exploration, secrets redacted."""
    info = run.info
    failures = run.failures_first
    median = run.own_ms_median
    return {
        **document_header(EXPLORE_SCHEMA_VERSION),
        "command": "explore",
        **run_header(run, redactor),
        "notes": [redactor.text(n) for n in run.notes],
        "target": {"url": redactor.text(info.url), "builtin": info.builtin, "authenticated": info.authenticated},
        "settings": {
            "seed": info.seed,
            "max_examples": info.max_examples,
            "max_run_s": info.max_run_s,
            "concurrency": info.concurrency,
            "strict": info.strict,
            "database": info.database,
        },
        "summary": {
            "examples": run.examples,
            "rejected": run.rejected,
            "failures": len(failures),
            "errors": sum(f.severity is Severity.ERROR for f in failures),
            "warnings": sum(f.severity is Severity.WARNING for f in failures),
            "elapsed_s": round(run.elapsed_s, 3),
            "examples_per_s": round(run.examples_per_s, 3),
            "own_ms_median": round(median, 3) if median is not None else None,
        },
        "failures": [_failure(f, redactor) for f in failures],
    }


def explore_schema() -> dict[str, Any]:
    """The JSON Schema every exploration report validates against (shipped in the package)."""
    return shipped_schema("explore-report.schema.json")


def validate_explore_document(document: Any) -> list[str]:
    """Schema errors of an exploration report, with JSON paths; [] when valid."""
    return schema_errors(explore_schema(), document)


def _request_text(failure: Failure, redactor: Redactor, limit: int | None = None) -> str:
    body = json.dumps(_request(failure, redactor)["body"], indent=2, ensure_ascii=False)
    if limit is not None and len(body) > limit:
        body = body[:limit] + f"\n… ({len(body) - limit} more characters in the JSON report)"
    return body


def explore_junit(run: ExploreResult, redactor: Redactor) -> ET.Element:
    """The JUnit document: one test case per distinct failure (its message the title, its text the detail, the
    reproducer and the smallest request), a passing `exploration` case when nothing failed, and a failing
    `run_completed` case when the run was cut short."""
    root = ET.Element("testsuites", name="vapi-harness explore")
    suite = ET.SubElement(root, "testsuite", name="explore")
    failed = 0
    cases = 0
    for failure in run.failures_first:
        cases += 1
        failed += 1
        case = ET.SubElement(suite, "testcase", classname="vapi-harness.explore", name=redactor.text(str(failure.key)))
        element = ET.SubElement(
            case, "failure", message=redactor.text(failure.finding.title), type=failure.severity.value
        )
        where = f"reproducer: {failure.reproducer}\n" if failure.reproducer is not None else ""
        element.text = (
            f"{redactor.text(failure.finding.detail)}\n\n{where}seen in {failure.examples} examples, "
            f"{failure.shrink_steps} shrink steps; the smallest request's body:\n{_request_text(failure, redactor)}"
        )
    if not run.failures:
        cases += 1
        case = ET.SubElement(suite, "testcase", classname="vapi-harness.explore", name="exploration")
        ET.SubElement(case, "system-out").text = f"{run.examples} examples, seed {run.info.seed}: nothing failed"
    cut = run.interrupted or run.stopped_early
    if cut:
        cases += 1
        failed += 1
        case = ET.SubElement(suite, "testcase", classname="vapi-harness.explore", name="run_completed")
        ET.SubElement(case, "failure", message=redactor.text(f"the run was cut short: {cut}"), type="error")
    for element in (root, suite):
        element.set("tests", str(cases))
        element.set("failures", str(failed))
    suite.set("errors", "0")
    suite.set("skipped", "0")
    suite.set("time", f"{run.elapsed_s:.3f}")
    ET.indent(root)
    return root


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def explore_markdown(run: ExploreResult, redactor: Redactor) -> str:
    """A Markdown summary (a CI step summary): the verdict, a table of failures, each one's smallest request."""
    verdict = "PASSED" if run.passed else "FAILED"
    lines = [
        f"## vapi-harness explore: {verdict}",
        "",
        f"{run.examples} examples in {run.elapsed_s:.1f} s ({run.examples_per_s:.1f}/s), seed {run.info.seed}, "
        f"{len(run.failures)} distinct failures.",
        "",
    ]
    if run.interrupted:
        lines += [f"Interrupted: {redactor.text(run.interrupted)}.", ""]
    if run.stopped_early:
        lines += [f"Stopped early: {redactor.text(run.stopped_early)}.", ""]
    failures = run.failures_first
    if failures:
        lines += ["| check | severity | failure | examples | shrink steps |", "|---|---|---|---:|---:|"]
        for f in failures:
            title = _cell(redactor.text(f.finding.title))
            lines.append(f"| `{f.key.check}` | {f.severity.value} | {title} | {f.examples} | {f.shrink_steps} |")
        lines.append("")
    for f in failures:
        lines += [
            f"### `{f.key.check}`: {_cell(redactor.text(f.finding.title))}",
            "",
            _cell(redactor.text(f.finding.detail)),
            "",
        ]
        if f.reproducer is not None:
            lines += [f"Reproduce: `vapi-harness check --url URL --replay {f.reproducer}`", ""]
        lines += [
            "<details><summary>The smallest request's body</summary>",
            "",
            "```json",
            _request_text(f, redactor, _MARKDOWN_BODY_LIMIT),
            "```",
            "",
            "</details>",
            "",
        ]
    return "\n".join(lines)


class _FileWriter:
    """A report in one file, rendered and written when the run ends; a replaced file is never half written."""

    append: ClassVar[bool] = False  # True: added to the file's end (GitHub's step summary); False: replaced whole

    def __init__(self, path: Path, redactor: Redactor) -> None:
        self.path = path
        self.redactor = redactor

    def render(self, run: ExploreResult) -> str:
        raise NotImplementedError

    def handle_event(self, event: ExploreEvent) -> None:
        """Write on `ExploreFinished`."""
        if not isinstance(event, ExploreFinished):
            return
        write_report(self.path, self.render(event.run), append=self.append)

    def close(self) -> None:
        """Nothing to release."""


class ExploreJson(_FileWriter):
    """The JSON report."""

    def render(self, run: ExploreResult) -> str:
        return json.dumps(explore_document(run, self.redactor), indent=2, ensure_ascii=False) + "\n"


class ExploreJUnit(_FileWriter):
    """The JUnit XML report."""

    def render(self, run: ExploreResult) -> str:
        tree = explore_junit(run, self.redactor)
        return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(tree, encoding="unicode") + "\n"


class ExploreMarkdown(_FileWriter):
    """The Markdown summary, added to the file's end (`$GITHUB_STEP_SUMMARY` collects every step's)."""

    append = True

    def render(self, run: ExploreResult) -> str:
        return explore_markdown(run, self.redactor) + "\n"
