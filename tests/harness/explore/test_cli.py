"""`vapi-harness explore` as a user runs it: options, exit codes, the reports, reproducers and a Ctrl-C."""

from __future__ import annotations

import functools
import json
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.explore.reports import validate_explore_document
from harness.servers import ServerThread
from tests.conftest import CliRun, interrupt_when

API_KEY = "sk-explore-cli-secret-987654"


@pytest.fixture
def explore_cli(run_cli: Callable[..., CliRun]) -> Callable[..., CliRun]:
    """Run `vapi-harness explore` in-process, quiet, with its reports under `tmp_path`; the JSON report read back."""
    return functools.partial(run_cli, "explore")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--max-examples", "0"], "--max-examples: '0' must be at least 1"),
        (["--max-examples", "many"], "--max-examples: 'many' is not a whole number"),
        (["--seed", "-3"], "--seed: '-3' must be at least 0"),
        (["--seed", "1.5"], "--seed: '1.5' is not a whole number"),
        (["--concurrency", "0"], "--concurrency: '0' must be at least 1"),
        (["--concurrency", "1000"], "--concurrency: '1000' must be at most 64"),
        (["--max-run-s", "0"], "--max-run-s: '0' must be greater than 0"),
        (["--url", "ftp://example.com/v1"], "--url:"),
        (["--junit", "."], "--junit: . is a directory; give a file name"),
        (["--markdown", "no-such-folder/x.md"], "--markdown: the folder no-such-folder does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, explore_cli: Callable[..., CliRun]) -> None:
    result = explore_cli(*args)
    assert result.code == 2
    [line] = result.err.strip().splitlines()
    assert line.startswith("vapi-harness: error: ") and message in line, line
    assert "Traceback" not in result.err


def test_a_bad_environment_variable_is_named(
    explore_cli: Callable[..., CliRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAPI_HARNESS_EXPLORE_MAX_EXAMPLES", "lots")
    result = explore_cli()
    assert result.code == 2
    assert "VAPI_HARNESS_EXPLORE_MAX_EXAMPLES: 'lots' is not a whole number" in result.err


def test_the_flag_wins_over_the_environment(
    fake_llm: Callable[..., ServerThread], explore_cli: Callable[..., CliRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = fake_llm(ttft_ms=0, chunk_delay_ms=0)
    monkeypatch.setenv("VAPI_HARNESS_EXPLORE_MAX_EXAMPLES", "3")
    monkeypatch.setenv("VAPI_HARNESS_EXPLORE_SEED", "11")
    from_env = explore_cli("--url", f"{server.url}/v1")
    assert from_env.code == 0, from_env.out
    assert from_env.report is not None
    assert from_env.report["summary"]["examples"] == 3
    assert from_env.report["settings"]["seed"] == 11
    flagged = explore_cli("--url", f"{server.url}/v1", "--max-examples", "5")
    assert flagged.report is not None and flagged.report["summary"]["examples"] == 5


def test_the_builtin_endpoint_fails_nothing(explore_cli: Callable[..., CliRun], tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    markdown = tmp_path / "summary.md"
    result = explore_cli(
        "--seed", "1", "--max-examples", "60", "--concurrency", "4", "--junit", str(junit), "--markdown", str(markdown)
    )
    assert result.code == 0, result.out
    report = result.report
    assert report is not None
    assert validate_explore_document(report) == []
    assert report["verdict"] == "passed" and report["failures"] == []
    assert report["target"]["builtin"] is True
    assert report["summary"]["examples"] == 60
    assert "PASSED: 60 examples, 0 failures" in result.out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "0"
    assert "## vapi-harness explore: PASSED" in markdown.read_text()


def test_a_fault_fails_with_a_reproducer_check_replays(
    fake_llm: Callable[..., ServerThread],
    explore_cli: Callable[..., CliRun],
    run_cli: Callable[..., Any],
    tmp_path: Path,
) -> None:
    server = fake_llm(faults={"error-chunk"}, ttft_ms=0, chunk_delay_ms=0, api_key=API_KEY)
    url = f"{server.url}/v1"
    junit = tmp_path / "junit.xml"
    markdown = tmp_path / "summary.md"
    result = explore_cli(
        "--url", url, "--seed", "2", "--max-examples", "20", "--api-key", API_KEY, "--junit", str(junit),
        "--markdown", str(markdown),
    )  # fmt: skip
    assert result.code == 1
    report = result.report
    assert report is not None and validate_explore_document(report) == []
    [failure] = report["failures"]
    assert failure["check"] == "chunk_has_no_error"
    assert failure["request"]["headers"]["Authorization"] == "[redacted]"
    assert result.out.startswith("Failures\n FAIL  chunk_has_no_error")
    assert all(len(line) <= 100 for line in result.out.splitlines())
    cases = ET.parse(junit).getroot().iter("testcase")
    assert [case.get("name") for case in cases] == [failure["key"]]
    reproducer = Path(failure["reproducer"])
    outputs = [result.out, result.err, json.dumps(report), junit.read_text(), markdown.read_text()]
    outputs += [p.read_text() for p in (tmp_path / "reports").rglob("*") if p.is_file() and "explore-db" not in p.parts]
    assert not [text for text in outputs if API_KEY in text]
    replayed = run_cli("check", "--url", url, "--api-key", API_KEY, "--replay", str(reproducer))
    assert replayed.code == 1
    assert "chunk_has_no_error" in replayed.failed("error")
    assert run_cli("check", "--replay", str(reproducer)).code == 0


def test_ctrl_c_exits_130_with_what_was_found(fake_llm: Callable[..., ServerThread], tmp_path: Path) -> None:
    server = fake_llm(faults={"error-chunk"}, ttft_ms=100, chunk_delay_ms=20)
    report_path = tmp_path / "explore.json"
    command = [sys.executable, "-m", "harness", "explore", "--url", f"{server.url}/v1", "--seed", "1"]
    command += ["--json", str(report_path), "--report-dir", str(tmp_path / "reports")]
    code, err = interrupt_when(command, "new failure")  # once the first failure is announced
    assert code == 130, err
    assert "Interrupted" in err and "Traceback" not in err
    report = json.loads(report_path.read_text())
    assert report["interrupted"] == "Ctrl-C"
    assert report["verdict"] == "failed"
    assert [f["check"] for f in report["failures"]] == ["chunk_has_no_error"]
    assert Path(report["failures"][0]["reproducer"]).is_file()
    assert validate_explore_document(report) == []


def test_the_run_bound_is_reported(fake_llm: Callable[..., ServerThread], explore_cli: Callable[..., CliRun]) -> None:
    server = fake_llm(ttft_ms=300)
    result = explore_cli("--url", f"{server.url}/v1", "--max-run-s", "1")
    assert result.code == 1
    assert result.report is not None
    assert result.report["interrupted"] == "the run exceeded --max-run-s 1"
    assert "Interrupted (the run exceeded --max-run-s 1)" in result.out


def test_strict_fails_on_a_warning_and_the_markdown_is_appended(
    fake_llm: Callable[..., ServerThread], explore_cli: Callable[..., CliRun], tmp_path: Path
) -> None:
    server = fake_llm(faults={"no-done"}, ttft_ms=0, chunk_delay_ms=0)
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier steps\n")
    lenient = explore_cli("--url", f"{server.url}/v1", "--max-examples", "8", "--markdown", str(summary))
    assert lenient.code == 0, lenient.out
    strict = explore_cli("--url", f"{server.url}/v1", "--max-examples", "8", "--strict", "--markdown", str(summary))
    assert strict.code == 1
    assert strict.report is not None
    assert {f["severity"] for f in strict.report["failures"]} == {"warning"}
    assert "stream_ends_with_done" in {f["check"] for f in strict.report["failures"]}
    assert "(strict: warnings fail)" in strict.out and " WARN  stream_ends_with_done" in strict.out
    text = summary.read_text()
    assert text.startswith("# earlier steps\n")
    assert text.count("## vapi-harness explore: ") == 2
