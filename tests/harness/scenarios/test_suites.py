"""`check --suite`: the shipped suites pass against the built-in endpoint; known defects fail, pointedly."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.reporting import validate_document
from harness.scenarios.suites import shipped_suites
from harness.servers import ServerThread

pytestmark = pytest.mark.slow
FAST = ("--timeout-s", "3", "--deadline-s", "6", "--close-grace-s", "0.5")
SLOW_BUDGET = """\
name: answers within 100 ms
assistant:
  model: {model: m}
turns:
  - user: Hi
    expect:
      latency: {ttft_ms: 100}
"""


@pytest.mark.parametrize("suite", shipped_suites())
def test_every_shipped_suite_passes_against_the_builtin_endpoint(suite: str, run_cli: Callable[..., Any]) -> None:
    result = run_cli("check", "--suite", suite)
    assert result.code == 0, result.out
    assert result.report is not None and validate_document(result.report) == []
    scenarios = result.report["scenarios"]
    assert scenarios and all(s["verdict"] == "passed" for s in scenarios)
    assert result.report["settings"]["suites"] == [suite]


def _failure(result: Any, name: str) -> str:
    scenario = next(s for s in result.report["scenarios"] if s["name"] == name)
    assert scenario["verdict"] == "failed"
    return "\n".join(
        [e["message"] for t in scenario["turns"] for e in t["expectations"] if not e["passed"]]
        + [c for t in scenario["turns"] for c in t["failed_checks"]]
    )


def test_a_server_that_forgets_tool_results_fails_the_tool_scenario(
    fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]
) -> None:
    server = fake_llm(faults={"ignore-tool-results"})
    result = run_cli("check", "--suite", "conformance", "--url", f"{server.url}/v1", *FAST)
    assert result.code == 1
    message = _failure(result, "a tool call, its result, and the spoken follow-up")
    assert "expected '21 degrees' in the reply" in message
    assert "Our office opens" in message  # what it said instead


def test_a_tool_loop_fails_the_tool_scenario(
    fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]
) -> None:
    server = fake_llm(faults={"tool-loop"})
    result = run_cli("check", "--suite", "conformance", "--url", f"{server.url}/v1", *FAST)
    assert result.code == 1
    message = _failure(result, "a tool call, its result, and the spoken follow-up")
    assert "endless tool loop: get_weather called again with the same arguments after its result" in message
    scenario = next(s for s in result.report["scenarios"] if s["name"].startswith("a tool call"))
    looped = next(t for t in scenario["turns"] if t["verdict"] == "failed")
    assert len(looped["requests"]) == 2  # the call and its repeat: stopped there, not after five rounds


def test_a_server_that_crashes_after_an_abort_fails_the_barge_in_storm(
    fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]
) -> None:
    server = fake_llm(faults={"crash-after-abort"}, chunk_delay_ms=20)  # a reply long enough to barge into
    result = run_cli("check", "--suite", "resilience", "--url", f"{server.url}/v1", *FAST)
    assert result.code == 1
    storm = next(s for s in result.report["scenarios"] if s["name"] == "barge-in storm")
    assert storm["ended_reason"] == "pipeline-error-custom-llm-500-server-error"
    assert "the turn failed" in _failure(result, "barge-in storm")


def test_a_slow_server_breaks_the_latency_budget(
    tmp_path: Path, fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]
) -> None:
    path = tmp_path / "budget.yaml"
    path.write_text(SLOW_BUDGET)
    server = fake_llm(ttft_ms=250)
    junit, markdown = tmp_path / "junit.xml", tmp_path / "summary.md"
    result = run_cli(
        "check", "--suite", str(path), "--url", f"{server.url}/v1", "--junit", str(junit), "--markdown", str(markdown)
    )
    assert result.code == 1
    assert "against a budget of 100 ms" in _failure(result, "answers within 100 ms")
    assert "ms over" in result.out and "Transcript of answers within 100 ms" in result.out
    case = ET.parse(junit).getroot().find(".//testsuite[@name='answers within 100 ms']/testcase")
    assert case is not None and case.get("name") == "turn 1: Hi"
    failure = case.find("failure")
    assert failure is not None and "latency.ttft_ms" in (failure.text or "") and "Transcript" in (failure.text or "")
    summary = markdown.read_text()
    assert "❌ failed" in summary and "| answers within 100 ms | ❌ | 0/1 |" in summary


def test_suite_and_replay_do_not_mix(tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    recording = tmp_path / "r.jsonl"
    recording.write_text("")
    result = run_cli("check", "--suite", "conformance", "--replay", str(recording))
    assert result.code == 2 and "cannot be combined" in result.err
