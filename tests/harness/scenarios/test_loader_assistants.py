"""Scenario files with what real assistants use (issue 15): the new keys read into the model, and their mistakes
are named with file, line and path."""

from __future__ import annotations

from pathlib import Path

import pytest

from mock_vapi.scenarios.loader import ScenarioError, load_file
from mock_vapi.scenarios.model import MAX_DURATION_S, SILENCE_TIMEOUT_S

FULL = """\
name: a real assistant
variables: {customerName: Ada, plan: gold}
assistant:
  firstMessage: "Hi {{customerName}}"
  endCallPhrases: [goodbye for now]
  maxDurationSeconds: 120
  silenceTimeoutSeconds: 15
  server: {url: "http://127.0.0.1:9/hook", secret: s3cret}
  serverMessages: [status-update]
  model:
    model: m
    messages: [{role: system, content: "You help {{ customerName | upcase }}."}]
    wordLevelConfidenceEnabled: true
    knowledgeBase: {provider: custom-knowledge-base, server: {url: "http://127.0.0.1:9/kb"}}
    tools:
      - type: function
        function: {name: bookAppointment}
        async: false
        messages:
          - {type: request-start, content: "One moment, {{customerName}}."}
          - {type: request-complete, content: Booked., endCallAfterSpokenEnabled: false}
toolResults:
  bookAppointment: {reply: {error: no slots, message: {type: request-failed, content: Sorry.}}}
turns:
  - user: Book me in.
    silenceSeconds: 12
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def _error(tmp_path: Path, text: str) -> str:
    with pytest.raises(ScenarioError) as caught:
        load_file(_write(tmp_path, text))
    return str(caught.value)


def test_the_new_keys_read_into_the_model(tmp_path: Path) -> None:
    scenario = load_file(_write(tmp_path, FULL))
    assert scenario.variables == {"customerName": "Ada", "plan": "gold"}
    assert scenario.end_call_phrases == ("goodbye for now",)
    assert (scenario.max_duration_s, scenario.silence_timeout_s) == (120, 15)
    assert scenario.server == {"url": "http://127.0.0.1:9/hook", "secret": "s3cret"}
    assert scenario.server_messages == ("status-update",)
    assert scenario.turns[0].silence_s == 12
    assert scenario.model["knowledgeBase"]["provider"] == "custom-knowledge-base"
    assert scenario.tool_results["bookAppointment"]["reply"]["error"] == "no slots"


def test_the_defaults_are_vapis(tmp_path: Path) -> None:
    scenario = load_file(_write(tmp_path, "name: x\nturns:\n  - user: Hi\n"))
    assert (scenario.max_duration_s, scenario.silence_timeout_s) == (MAX_DURATION_S, SILENCE_TIMEOUT_S) == (600, 30)
    assert scenario.variables == {} and scenario.server is None and scenario.server_messages is None
    assert scenario.turns[0].silence_s == 0


def test_broken_liquid_is_named_at_its_line_and_field(tmp_path: Path) -> None:
    text = FULL.replace("{{ customerName | upcase }}", "{{ customerName | nosuch }}")
    assert _error(tmp_path, text).startswith(
        f"{tmp_path / 's.yaml'}:12: assistant.model.messages[0].content: not a valid Liquid template: "
    )
    unclosed = FULL.replace('"One moment, {{customerName}}."', '"One moment, {{customerName"')
    message = _error(tmp_path, unclosed)
    assert ":20: assistant.model.tools[0].messages[0].content: not a valid Liquid template" in message


@pytest.mark.parametrize(
    ("reply", "wanted"),
    [
        ("{reply: {message: {type: request-complete, content: Hi}}}", "toolResults.bookAppointment.reply:"),
        ("{reply: {result: ok, error: bad}}", "toolResults.bookAppointment.reply:"),
        ("{reply: {result: ok, message: {type: request-done}}}", "'request-done' is not one of"),
        ("{reply: {result: ok}, extra: 1}", "toolResults.bookAppointment.extra: unknown key"),
    ],
)
def test_a_tool_reply_needs_a_result_or_an_error(tmp_path: Path, reply: str, wanted: str) -> None:
    text = FULL.replace("{reply: {error: no slots, message: {type: request-failed, content: Sorry.}}}", reply)
    assert wanted in _error(tmp_path, text)


def test_a_mocked_result_that_is_any_other_object_is_still_the_result(tmp_path: Path) -> None:
    text = FULL.replace("{reply: {error: no slots, message: {type: request-failed, content: Sorry.}}}", "{slots: 0}")
    assert load_file(_write(tmp_path, text)).tool_results == {"bookAppointment": {"slots": 0}}


def test_a_misspelled_tool_type_is_named_with_a_hint(tmp_path: Path) -> None:
    message = _error(tmp_path, FULL.replace("- type: function", "- type: functon"))
    assert ":16: assistant.model.tools[0].type: 'functon' is not a Vapi tool type. Did you mean 'function'?" in message


@pytest.mark.parametrize(
    ("old", "new", "wanted"),
    [
        ("silenceSeconds: 12", "silenceSeconds: -1", "turns[0].silenceSeconds: -1 is less than the minimum of 0"),
        ("maxDurationSeconds: 120", "maxDurationSeconds: 5", "assistant.maxDurationSeconds: 5 is less than"),
        ("provider: custom-knowledge-base", "provider: pinecone", "knowledgeBase.provider: 'custom-knowledge-base'"),
        ("variables: {customerName: Ada, plan: gold}", "variables: [Ada]", "variables: ['Ada'] is not of type"),
    ],
)
def test_wrong_values_are_named(tmp_path: Path, old: str, new: str, wanted: str) -> None:
    assert wanted in _error(tmp_path, FULL.replace(old, new))
