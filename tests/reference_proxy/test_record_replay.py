"""Record real traffic through the proxy, then replay it against another server and compare."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.fake_llm import FakeLLMConfig, create_app
from harness.servers import ServerThread
from reference_proxy.app import create_app as proxy_app
from reference_proxy.settings import ProxySettings

pytestmark = pytest.mark.slow
FAST = ("--timeout-s", "3", "--close-grace-s", "0.5")


@pytest.fixture
def recording(tmp_path: Path, serve: Callable[[Any], ServerThread], run_cli: Callable[..., Any]) -> Path:
    """Traffic recorded by the proxy while `check` ran its default suite through it."""
    path = tmp_path / "traffic.jsonl"
    upstream = serve(create_app(FakeLLMConfig(ttft_ms=2, chunk_delay_ms=2)))
    settings = ProxySettings(upstream_url=f"{upstream.url}/v1", record_path=path, api_key="sk-record-secret-1")
    proxy = serve(proxy_app(settings))
    assert run_cli("check", "--url", f"{proxy.url}/v1", "--api-key", "sk-record-secret-1", *FAST).code == 0
    return path


def test_recording_holds_each_exchange_without_secrets(recording: Path) -> None:
    text = recording.read_text()
    assert "sk-record-secret-1" not in text
    entries = [json.loads(line) for line in text.splitlines()]
    streamed = [e for e in entries if e["request"]["body"].get("stream") and e["response"]["events"]]
    assert streamed
    first = streamed[0]
    assert "call" in first["request"]["body"]  # recorded as Vapi sent it
    assert first["response"]["status"] == 200
    times = [event["t_ms"] for event in first["response"]["events"]]
    assert times == sorted(times)
    assert first["response"]["events"][-1]["data"] == "[DONE]"


def test_replay_against_the_same_kind_of_server_passes(
    recording: Path, run_cli: Callable[..., Any], fake_llm: Callable[..., ServerThread]
) -> None:
    result = run_cli("check", "--replay", str(recording), "--url", f"{fake_llm().url}/v1", *FAST)
    assert result.code == 0, result.out
    assert result.check("matches_recording")["runs"] == len(recording.read_text().splitlines())


def test_replay_against_a_regressed_server_fails(
    recording: Path, run_cli: Callable[..., Any], fake_llm: Callable[..., ServerThread]
) -> None:
    regressed = fake_llm(tool_mode="never")  # the next version forgot its tools
    result = run_cli("check", "--replay", str(recording), "--url", f"{regressed.url}/v1", *FAST)
    assert result.code == 1
    failures = result.check("matches_recording")["failures"]
    assert any("other tools" in f["title"] for f in failures)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json\n", "not a JSON line"),
        ('{"version": 2}\n', "$.version"),
        ('{"version": 1, "request": {}}\n', "messages"),
    ],
    ids=["not-json", "version", "no-messages"],
)
def test_a_bad_recording_names_file_and_line(
    content: str, message: str, tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    result = run_cli("check", "--replay", str(path))
    assert result.code == 2
    assert f"{path}:1" in result.err and message in result.err
