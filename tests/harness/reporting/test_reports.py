"""Report writers over a recorded run: JSON schema, JUnit, terminal output (golden files) and redaction."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from junitparser import Failure, JUnitXml
from rich.console import Console

from harness.checks import CheckContext, Expect, Thresholds, run_checks
from harness.metrics import exchange_metrics
from harness.reporting import (
    REDACTED,
    JsonReport,
    JUnitReport,
    Redactor,
    render_results,
    run_document,
    validate_document,
)
from harness.results import ExchangeResult, RunFinished, RunInfo, RunResult
from harness.suite import Probe
from mock_vapi.exchange import Exchange, Outcome
from tests.streams import DONE, IDEAL, ROLE, WORDS, recorded

GOLDEN = Path(__file__).parents[2] / "golden"
KEY = "sk-live-very-secret-0001"


def _result(name: str, exchange: Exchange, expect: Expect = Expect.TURN, repeat: int = 1) -> ExchangeResult:
    probe = Probe(name, f"probe {name}", exchange.request, expect)
    findings = run_checks(CheckContext(name, expect, Thresholds()), exchange)
    return ExchangeResult(probe, repeat, exchange, findings, exchange_metrics(exchange))


def recorded_run(*, strict: bool = False, interrupted: str | None = None) -> RunResult:
    """A deterministic run: one healthy stream, one missing [DONE], one without choices."""
    info = RunInfo(
        run_id="20260101-000000-abcd",
        url="http://127.0.0.1:9/v1",
        model="m",
        metadata_send_mode="off",
        builtin=False,
        authenticated=False,
        timeout_s=20.0,
        repeat=1,
        strict=strict,
        probes=("healthy", "no_done", "no_choices"),
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    run = RunResult(info, interrupted=interrupted)
    run.results.append(_result("healthy", recorded(IDEAL, gap_s=0.1)))
    run.results.append(_result("no_done", recorded(IDEAL[:-1], gap_s=0.1)))
    bad = [ROLE, b'data: {"function_call":{"name":"transferCall"}}\n\n', *WORDS, DONE]
    run.results.append(_result("no_choices", recorded(bad, gap_s=0.1)))
    run.finished_at = datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC)
    return run


def _golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} differs; rerun with UPDATE_GOLDEN=1 if intended"


def _terminal(width: int, *, verbose: bool = False) -> str:
    with open(os.devnull, "w") as sink:
        console = Console(width=width, record=True, color_system=None, file=sink)
        render_results(recorded_run(), console, Redactor(), verbose=verbose)
    return console.export_text()


def test_terminal_output_at_80_columns_matches_golden() -> None:
    text = _terminal(80)
    _golden("check_terminal.txt", text)
    assert all(len(line) <= 80 for line in text.splitlines())
    lines = text.splitlines()
    # Failures first, errors before warnings; passes folded into one line.
    assert lines[1].startswith(" FAIL  chunks_have_choices")
    assert lines.index(next(line for line in lines if line.startswith(" WARN"))) > 1
    assert any(line.startswith(" 27 checks passed (-v lists them)") for line in lines)
    assert not any(line.startswith(" PASS") for line in lines)


def test_verbose_terminal_output_lists_passing_checks() -> None:
    text = _terminal(80, verbose=True)
    assert " PASS  chunk_has_no_error  3 requests" in text
    assert "checks passed (-v lists them)" not in text


def test_junit_matches_golden_and_loads(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    JUnitReport(path, Redactor()).handle_event(RunFinished(recorded_run()))
    _golden("check_junit.xml", path.read_text(encoding="utf-8"))
    xml = JUnitXml.fromfile(str(path))
    suites = {suite.name: suite for suite in xml}
    assert set(suites) == {"healthy", "no_done", "no_choices"}
    assert suites["healthy"].failures == 0
    assert suites["no_done"].failures == 0  # a warning is not a failure unless strict
    failures = [case for case in suites["no_choices"] if any(isinstance(r, Failure) for r in case.result)]
    assert [case.name for case in failures] == ["chunks_have_choices"]
    assert "choices" in failures[0].result[0].message


def test_strict_junit_fails_on_warnings(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    JUnitReport(path, Redactor()).handle_event(RunFinished(recorded_run(strict=True)))
    suites = {suite.name: suite for suite in JUnitXml.fromfile(str(path))}
    assert suites["no_done"].failures == 1


def test_interrupted_run_is_a_failed_testcase(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    JUnitReport(path, Redactor()).handle_event(RunFinished(recorded_run(interrupted="Ctrl-C")))
    suites = {suite.name: suite for suite in JUnitXml.fromfile(str(path))}
    assert suites["run"].failures == 1


def test_json_report_validates_and_carries_everything(tmp_path: Path) -> None:
    path = tmp_path / "out" / "report.json"
    JsonReport(path, Redactor()).handle_event(RunFinished(recorded_run()))
    document = json.loads(path.read_text())
    assert validate_document(document) == []
    assert document["verdict"] == "failed"
    assert document["summary"]["errors"] == 1
    assert document["summary"]["warnings"] == 4
    healthy = document["exchanges"][0]
    assert healthy["metrics"]["ttft_ms"] == pytest.approx(200.0)
    kinds = [item["kind"] for item in healthy["timeline"]]
    assert kinds[0] == "headers" and kinds[-1] == "end"
    assert healthy["response"]["text"].startswith("We open at nine")
    assert document["latency"]["ttft_ms"]["n"] == 3


@pytest.mark.parametrize(
    ("path", "value"),
    [(("verdict",), "maybe"), (("schema_version",), 99), (("exchanges", 0, "metrics", "ttft_ms"), "fast")],
    ids=["verdict", "version", "metric-type"],
)
def test_schema_rejects_a_broken_document(path: tuple[str | int, ...], value: object) -> None:
    document = run_document(recorded_run(), Redactor())
    target: Any = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert validate_document(document) != []


def test_secrets_never_reach_reports(tmp_path: Path) -> None:
    run = recorded_run()
    exchange = run.results[0].exchange
    exchange.request = exchange.request.with_headers(authorization=f"Bearer {KEY}", x_api_key=KEY)
    exchange.error = f"upstream said: invalid key {KEY}"
    redactor = Redactor([KEY])
    JsonReport(tmp_path / "r.json", redactor).handle_event(RunFinished(run))
    JUnitReport(tmp_path / "j.xml", redactor).handle_event(RunFinished(run))
    text = (tmp_path / "r.json").read_text() + (tmp_path / "j.xml").read_text()
    assert KEY not in text
    headers = json.loads((tmp_path / "r.json").read_text())["exchanges"][0]["request"]["headers"]
    assert headers["Authorization"] == REDACTED
    assert REDACTED in json.loads((tmp_path / "r.json").read_text())["exchanges"][0]["response"]["error"]


def test_unfinished_exchange_is_reported_without_findings() -> None:
    run = recorded_run(interrupted="Ctrl-C")
    exchange = recorded([ROLE, WORDS[0]], outcome=Outcome.CANCELLED)
    run.results.append(
        ExchangeResult(Probe("cut", "cut short", exchange.request), 1, exchange, [], exchange_metrics(exchange))
    )
    document = run_document(run, Redactor())
    assert validate_document(document) == []
    assert document["interrupted"] == "Ctrl-C"
    assert document["verdict"] == "failed"
    assert document["exchanges"][-1]["response"]["outcome"] == "cancelled"
