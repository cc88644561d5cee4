"""A recording's lines as probes: the version both sides read, and what a recorded reply did."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.checks import RecordedReply
from harness.protocol import RECORDING_VERSION
from harness.replay import load_recording, recorded_outcome
from mock_vapi.errors import ConfigError
from reference_proxy.recorder import Exchange as RecordedExchange
from tests.streams import MODEL

BODY = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}


def line(version: object) -> str:
    return json.dumps({"version": version, "request": {"body": BODY}, "response": {"status": 200, "events": []}})


def test_the_recorder_writes_the_version_the_replay_reads(tmp_path: Path) -> None:
    written = RecordedExchange({"content-type": "application/json"}, BODY).line()
    assert json.loads(written)["version"] == RECORDING_VERSION
    path = tmp_path / "traffic.jsonl"
    path.write_text(written + "\n")
    [probe] = load_recording(path, MODEL, None)
    assert probe.name == "replay_1" and probe.request.json_body == BODY


def test_another_version_is_refused_naming_the_one_expected(tmp_path: Path) -> None:
    path = tmp_path / "traffic.jsonl"
    path.write_text(line(RECORDING_VERSION + 1) + "\n")
    with pytest.raises(ConfigError, match=rf"traffic.jsonl:1: \$\.version: expected {RECORDING_VERSION} "):
        load_recording(path, MODEL, None)


def test_a_recorded_reply_is_a_value() -> None:
    events = [
        {"data": json.dumps({"choices": [{"index": 0, "delta": {"content": "Hi"}}]})},
        {"data": json.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [{"function": {"name": "b"}}]}}]})},
        {"data": json.dumps({"choices": [{"index": 0, "delta": {"tool_calls": [{"function": {"name": "a"}}]}}]})},
        {"data": "[DONE]"},
    ]
    assert recorded_outcome({"status": 200, "events": events}) == RecordedReply(200, ("a", "b"), has_content=True)
    assert recorded_outcome({"status": 500}) == RecordedReply(500)
    assert recorded_outcome({}) == RecordedReply(None)
    assert RecordedReply(204).succeeded and not RecordedReply(302).succeeded and not RecordedReply(None).succeeded


def test_a_replayed_probe_carries_its_recorded_reply(tmp_path: Path) -> None:
    path = tmp_path / "traffic.jsonl"
    path.write_text(line(RECORDING_VERSION) + "\n")
    [probe] = load_recording(path, MODEL, None)
    assert probe.reference == RecordedReply(200)
