"""Scenario files: the shipped ones load; every kind of mistake gets file, line, path and a hint."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenarios.suites import load_suites, resolve_suite, shipped_suites
from mock_vapi.scenarios.loader import ScenarioError, load_file
from tests.commands import run_command

VALID = """\
name: booking
assistant:
  firstMessage: Hello
  model:
    model: gpt-4o-mini
    tools:
      - type: function
        function: {name: bookAppointment}
toolResults:
  bookAppointment: Booked.
turns:
  - user: Book me in.
    expect:
      tool_call: {name: bookAppointment, arguments: {day: Friday}}
      content: {contains: Booked}
      latency: {ttft_ms: 800}
"""


def _write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _error(path: Path) -> str:
    with pytest.raises(ScenarioError) as caught:
        load_file(path)
    return str(caught.value)


def test_every_shipped_suite_loads() -> None:
    assert {"conformance", "conversations", "resilience"} <= set(shipped_suites())
    scenarios = load_suites(shipped_suites())
    assert len(scenarios) >= 12
    long_call = next(s for s in scenarios if s.name == "a 40-turn call")
    assert len(long_call.turns) == 40


def test_a_valid_file_reads_into_the_model(tmp_path: Path) -> None:
    scenario = load_file(_write(tmp_path, VALID))
    turn = scenario.turns[0]
    assert turn.line == 12  # the line of "- user: Book me in."
    assert turn.expect.tool_call is not None and turn.expect.tool_call.arguments == {"day": "Friday"}
    assert turn.expect.content is not None and turn.expect.content.contains == ("Booked",)
    assert turn.expect.ttft_ms == 800
    assert scenario.tool_results == {"bookAppointment": "Booked."}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("      content: {contains: Booked}", "      contnet: {contains: Booked}",
         "s.yaml:15: turns[0].expect.contnet: unknown key. Did you mean 'content'?"),
        ("  firstMessage: Hello", "  firstMessage: Hello\n  firstMessageMode: assistant-speak-first",
         "s.yaml:4: assistant.firstMessageMode: 'assistant-speak-first' is not one of"),
        ("    model: gpt-4o-mini", "    model: gpt-4o-mini\n    metadataSendMode: off", "quote it"),
        ("  - user: Book me in.", "  - usr: Book me in.", "s.yaml:12: turns[0]: missing required key 'user'"),
        ("      latency: {ttft_ms: 800}", "      latency: {ttft_ms: -5}", "s.yaml:16: turns[0].expect.latency.ttft_ms"),
        ("  bookAppointment: Booked.", "  bookApointment: Booked.",
         "toolResults.bookApointment: no function tool has this name. Did you mean 'bookAppointment'?"),
        ("toolResults:\n  bookAppointment: Booked.\n", "",
         "tool 'bookAppointment' has no server.url and no mocked result"),
        ("      content: {contains: Booked}", "      content: {regex: '(unclosed'}",
         "s.yaml:15: turns[0].expect.content.regex: not a valid regex"),
        ("turns:", "turns: [", "s.yaml:12: not valid YAML"),
        ("  - user: Book me in.", '  - user: "Book me in.',
         "s.yaml:12: not valid YAML: a quoted scalar opens here and is never closed"),
    ],
)  # fmt: skip
def test_mistakes_name_file_line_and_path(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in VALID
    message = _error(_write(tmp_path, VALID.replace(old, new)))
    assert expected in message
    assert message.startswith(str(tmp_path / "s.yaml"))


def test_unknown_suite_lists_the_shipped_ones() -> None:
    with pytest.raises(ScenarioError, match="Did you mean 'conversations'"):
        resolve_suite("conversation")


def test_duplicate_names_across_files_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, VALID, "a.yaml")
    _write(tmp_path, VALID, "b.yaml")
    with pytest.raises(ScenarioError, match="already used by"):
        load_suites([str(tmp_path)])


def test_cli_reports_a_bad_file_without_a_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, VALID.replace("content:", "contnet:"))
    done = run_command("check", "--suite", str(path), "--report-dir", str(tmp_path / "reports"))
    assert done.returncode == 2
    assert "unknown key. Did you mean 'content'?" in done.stderr
    assert "Traceback" not in done.stderr
