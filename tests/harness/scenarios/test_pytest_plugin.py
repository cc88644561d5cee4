"""The pytest plugin as users run it: `pytest <scenario dir> --vapi-url URL` in a separate process."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.endpoint import builtin_endpoint
from harness.servers import ServerThread

pytestmark = pytest.mark.slow
TOOL_SCENARIO = """\
name: weather tool round trip
assistant:
  model:
    model: m
    tools:
      - type: function
        function:
          name: get_weather
          parameters: {type: object, properties: {location: {type: string}}, required: [location]}
toolResults:
  get_weather: Sunny, 21 degrees.
turns:
  - user: What's the weather in Paris?
    expect:
      tool_call: {name: get_weather, arguments: {location: Paris}}
      content: {contains: 21 degrees}
"""
PYTHON_TESTS = """\
def test_one_turn(vapi_turn):
    result = vapi_turn([{"role": "user", "content": "Hi"}], metadataSendMode="off")
    assert result.exchange.status == 200
    assert not result.failed
    assert "ttft_ms" in result.metrics and "call" not in result.exchange.request.json_body


def test_a_scenario_as_a_dict(vapi_scenario):
    results = vapi_scenario({"name": "inline", "turns": [{"user": "Hi", "expect": {"content": {"regex": "\\\\w"}}}]})
    assert [r.passed for r in results] == [True]
"""


def _pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", str(folder), "-p", "no:cacheprovider", "--rootdir", str(folder)]
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=120, check=False, cwd=folder)


def test_scenarios_pass_against_the_builtin_endpoint_and_feed_junit(tmp_path: Path) -> None:
    (tmp_path / "weather.yaml").write_text(TOOL_SCENARIO)
    (tmp_path / "ci.yaml").write_text("jobs:\n  build: {runs-on: ubuntu-latest}\n")  # not a scenario: left alone
    (tmp_path / "test_custom.py").write_text(PYTHON_TESTS)
    done = _pytest(tmp_path, "--junitxml", str(tmp_path / "junit.xml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout
    names = {case.get("name") for case in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")}
    assert names == {"weather tool round trip", "test_one_turn", "test_a_scenario_as_a_dict"}


def test_the_shipped_suites_pass_through_pytest_with_vapi_url(tmp_path: Path) -> None:
    shipped = Path(__file__).parents[3] / "scenarios"
    with builtin_endpoint() as url:
        command = [sys.executable, "-m", "pytest", str(shipped), "-p", "no:cacheprovider", "--vapi-url", url]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    count = len(list(shipped.glob("*/*.yaml")))
    assert f"{count} passed" in done.stdout


def test_a_failure_shows_the_expectation_the_request_and_the_transcript(
    tmp_path: Path, fake_llm: Callable[..., ServerThread]
) -> None:
    (tmp_path / "weather.yaml").write_text(TOOL_SCENARIO)
    server = fake_llm(faults={"ignore-tool-results"})
    done = _pytest(tmp_path, "--vapi-url", f"{server.url}/v1", "--vapi-api-key", "sk-plugin-secret-7")
    assert done.returncode == 1
    out = done.stdout
    assert "✗ content.contains: expected '21 degrees' in the reply" in out
    assert "request: POST " in out and '"role":"tool"' in out.replace(" ", "")
    assert "tool call: get_weather" in out and "transcript:" in out
    assert "sk-plugin-secret-7" not in out
    assert "Traceback" not in out


def test_a_malformed_file_is_a_collection_error_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(TOOL_SCENARIO.replace("content:", "contnet:"))
    done = _pytest(tmp_path)
    assert done.returncode == 2
    assert "bad.yaml:16: turns[0].expect.contnet: unknown key. Did you mean 'content'?" in done.stdout


def test_a_bad_url_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "weather.yaml").write_text(TOOL_SCENARIO)
    done = _pytest(tmp_path, "--vapi-url", "ftp://example")
    assert done.returncode == 4
    assert "--vapi-url: 'ftp://example' is not an http(s) URL" in done.stderr
