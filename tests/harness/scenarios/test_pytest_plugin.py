"""The pytest plugin as users run it: `pytest <scenario dir> --vapi-url URL` in a separate process.

The `vapi_turn` argument checks run here too, through the installed plugin's own fixture: they raise before
any request is sent.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
THREE_CALLS = TOOL_SCENARIO.replace("name: weather tool round trip", "name: three weather calls\nconcurrency: 3")
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


# A wide terminal, so the summary line has room for the reason and the report's own 100 columns are what bound it.
ENV = {**os.environ, "COLUMNS": "200"}


def _command(folder: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", str(folder), "-p", "no:cacheprovider", "--rootdir", str(folder), *args]


def _pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = _command(folder, *args)
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=folder, env=ENV)


def _report(out: str, title: str) -> list[str]:
    """The lines of one test's failure report: after its `___ title ___` line, up to the next section."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("_") and f" {title} " in line) + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith(("_", "=", "-")))
    return lines[start:end]


def _summary_line(out: str, node: str) -> str:
    return next(line for line in out.splitlines() if line.startswith(f"FAILED {node}"))


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


def test_a_failure_shows_what_broke_the_reply_and_a_short_request_and_the_summary_gives_the_reason(
    tmp_path: Path, fake_llm: Callable[..., ServerThread]
) -> None:
    (tmp_path / "weather.yaml").write_text(TOOL_SCENARIO)
    (tmp_path / "three.yaml").write_text(THREE_CALLS)
    server = fake_llm(faults={"ignore-tool-results"})
    url = f"{server.url}/v1"
    done = _pytest(tmp_path, "--vapi-url", url, "--vapi-api-key", "sk-plugin-secret-7", "-ra", "--junitxml", "j.xml")
    assert done.returncode == 1, done.stdout + done.stderr
    report = _report(done.stdout, "scenario: weather tool round trip")
    text = "\n".join(report)
    assert report[0].startswith("✗ turn 1: content.contains: expected '21 degrees' in the reply; said ")
    said = next(i for i, line in enumerate(report) if line.startswith("  assistant said: "))
    request = report.index(f"  request 2 of 2: POST {url}/chat/completions -> HTTP 200")
    assert 0 < said < request
    assert report[request + 1] == '    3 messages; the last user message: "What\'s the weather in Paris?"'
    assert report[request + 2] == "    (pytest -vv shows the whole body)"
    assert "tool calls: get_weather" in text and "tool call: get_weather" in text  # the turn, the transcript
    assert '"phoneNumber"' not in text and '"role": "tool"' not in text  # no body without -vv
    assert max(len(line) for line in report) <= 100
    assert "sk-plugin-secret-7" not in done.stdout and "Traceback" not in done.stdout

    reason = "turn 1: expected '21 degrees' in the reply; said \"Sure!"
    assert f"weather.yaml::weather tool round trip - {reason}" in _summary_line(done.stdout, "weather.yaml")
    cases = {case.get("name"): case for case in ET.parse(tmp_path / "j.xml").getroot().iter("testcase")}
    failure = cases["weather tool round trip"].find("failure")
    assert failure is not None and failure.get("message", "").startswith(reason)

    # Three copies of a call fail alike: the first in full, the others one line each.
    copies = _report(done.stdout, "scenario: three weather calls")
    assert copies[0].startswith("✗ call 1, turn 1: content.contains: ")
    assert [line.split(":")[0] for line in copies if line.startswith("✗ call")] == ["✗ call 1, turn 1"] + [
        f"✗ call {n}, turn 1" for n in (2, 3)
    ]
    assert sum(line.startswith("  request ") for line in copies) == 1
    assert "three.yaml::three weather calls - call 1, turn 1: expected '21 degrees'" in _summary_line(
        done.stdout, "three.yaml"
    )


def test_the_whole_request_body_under_vv_redacted_and_wrapped(
    tmp_path: Path, fake_llm: Callable[..., ServerThread]
) -> None:
    secret = "sk-plugin-secret-7"
    (tmp_path / "weather.yaml").write_text(
        TOOL_SCENARIO.replace("assistant:\n", f"assistant:\n  metadata: {{tenant: {secret}}}\n")
    )
    server = fake_llm(faults={"ignore-tool-results"})
    done = _pytest(tmp_path, "--vapi-url", f"{server.url}/v1", "--vapi-api-key", secret, "-ra", "-vv")
    assert done.returncode == 1, done.stdout + done.stderr
    report = _report(done.stdout, "scenario: weather tool round trip")
    body = report[report.index("    body:") + 1 :]
    assert body[0] == "      {"
    assert '            "role": "tool",' in body and '        "phoneNumber": {' in "\n".join(body)
    assert '          "tenant": "[redacted]"' in "\n".join(body)
    assert secret not in done.stdout
    assert max(len(line) for line in report) <= 100  # long strings in the body (call.monitor URLs) wrap
    # Untrimmed under -vv (and on CI), the summary line is still the reason alone, on one line.
    summary = done.stdout.splitlines()
    line = summary.index(_summary_line(done.stdout, "weather.yaml"))
    assert " - turn 1: expected '21 degrees' in the reply; said " in summary[line]
    assert summary[line + 1].startswith("=") and len(summary[line]) < 250


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


HI = [{"role": "user", "content": "Hi"}]
LIST_OF_MESSAGES = "expected a list of {'role': ..., 'content': ...} dicts"


@pytest.mark.parametrize(
    ("args", "keywords", "error", "message"),
    [
        (("Hello",), {}, TypeError, f"vapi_turn(messages=...): {LIST_OF_MESSAGES}, got str 'Hello'"),
        ((HI[0],), {}, TypeError, "got dict {'role': 'user', 'content': 'Hi'} (one message: put it in a list)"),
        (([*HI, "Hi"],), {}, TypeError, f"vapi_turn(messages=...): {LIST_OF_MESSAGES}, got str 'Hi' at messages[1]"),
        (([{"content": "Hi"}],), {}, ValueError, "vapi_turn(messages=...): messages[0] has no 'role'"),
        (([{"role": None}],), {}, ValueError, "messages[0]['role'] must be a string such as 'user', got NoneType"),
        (([],), {}, ValueError, "vapi_turn(messages=...): the list is empty"),
        ((HI,), {"tool": []}, TypeError, "vapi_turn(tool=...): unknown argument. Did you mean 'tools'?"),
        ((HI,), {"max_tokens": 9}, TypeError, "vapi_turn(max_tokens=...): unknown argument. Did you mean 'maxTokens'?"),
        ((HI,), {"url": "http://x"}, TypeError, "vapi_turn(url=...): not an argument: the endpoint is --vapi-url"),
        ((HI,), {"stream": "yes"}, TypeError, "vapi_turn(stream=...): expected True or False, got str 'yes'"),
        ((HI,), {"tools": "get_weather"}, TypeError, "vapi_turn(tools=...): expected a list of Vapi tools"),
    ],
)
def test_wrong_arguments_to_vapi_turn_are_named_at_the_call(
    vapi_turn: Callable[..., Any], args: tuple[Any, ...], keywords: dict[str, Any], error: type, message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        vapi_turn(*args, **keywords)


def test_vapi_turn_inside_an_event_loop_says_so(vapi_turn: Callable[..., Any]) -> None:
    async def an_async_test() -> None:
        vapi_turn(HI)

    with pytest.raises(RuntimeError, match=re.escape("vapi_turn: called inside a running event loop")):
        asyncio.run(an_async_test())


BAD_CALLS = """\
import re

import pytest


def test_bad_values_are_named(vapi_turn):
    hi = [{"role": "user", "content": "Hi"}]
    with pytest.raises(ValueError, match=re.escape("vapi_turn(temperature=...): must be a number from 0 to 2")):
        vapi_turn(hi, temperature="hot")
    typo = "vapi_turn(tools=...): tools[0].type: 'functon' is not a Vapi tool type. Did you mean 'function'?"
    with pytest.raises(ValueError, match=re.escape(typo)):
        vapi_turn(hi, tools=[{"type": "functon"}])
    with pytest.raises(TypeError, match=re.escape("vapi_turn: the messages or tools are not JSON")):
        vapi_turn([{"role": "user", "content": {1, 2}}])
    assert vapi_turn(hi, maxTokens=100, stream=False).exchange.request.json_body["max_tokens"] == 100


def test_a_string(vapi_turn):
    vapi_turn("Hello")
"""


def test_a_wrong_call_fails_at_the_line_of_the_call(tmp_path: Path, fake_llm: Callable[..., ServerThread]) -> None:
    (tmp_path / "test_calls.py").write_text(BAD_CALLS)
    done = _pytest(tmp_path, "--vapi-url", f"{fake_llm().url}/v1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 1 passed" in done.stdout
    report = _report(done.stdout, "test_a_string")
    assert '>       vapi_turn("Hello")' in report
    assert f"E       TypeError: vapi_turn(messages=...): {LIST_OF_MESSAGES}, got str 'Hello'" in report
    assert report[-1] == "test_calls.py:19: TypeError"  # no frame of the plugin or the request builder


HANGING_TURN = """\
def test_turn(vapi_turn):
    assert not vapi_turn([{"role": "user", "content": "Hi"}]).failed
"""
# A watchdog in another thread cancels the turn's task once the request is out, as a test timeout would.
CANCELLED_TURN = """\
import asyncio, gc, json, threading, time, urllib.request

FAKE = "{url}/_fake/requests"


def _received():
    with urllib.request.urlopen(FAKE) as answer:
        return len(json.load(answer))


def _cancel_once_sent(before):
    while _received() == before:
        time.sleep(0.02)
    loop = next(o for o in gc.get_objects() if isinstance(o, asyncio.AbstractEventLoop) and o.is_running())
    loop.call_soon_threadsafe(lambda: [task.cancel() for task in asyncio.all_tasks(loop)])


def test_turn(vapi_turn):
    threading.Thread(target=_cancel_once_sent, args=(_received(),), daemon=True).start()
    assert not vapi_turn([{{"role": "user", "content": "Hi"}}]).failed
"""


def _received(url: str) -> int:
    with urllib.request.urlopen(f"{url}/_fake/requests", timeout=10) as answer:
        return len(json.load(answer))


def test_a_cancelled_turn_is_never_judged(tmp_path: Path, fake_llm: Callable[..., ServerThread]) -> None:
    server = fake_llm(faults={"hang"})
    (tmp_path / "test_cancelled.py").write_text(CANCELLED_TURN.format(url=server.url))
    done = _pytest(tmp_path, "--vapi-url", f"{server.url}/v1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed" in done.stdout and "passed" not in done.stdout
    assert "vapi_turn: the turn was cancelled before its reply ended; nothing was judged" in done.stdout
    assert "CancelledError" not in done.stdout


def test_ctrl_c_during_a_turn_interrupts_the_run(tmp_path: Path, fake_llm: Callable[..., ServerThread]) -> None:
    server = fake_llm(faults={"hang"})
    (tmp_path / "test_hanging.py").write_text(HANGING_TURN)
    command = _command(tmp_path, "--vapi-url", f"{server.url}/v1")
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path) as child:
        for _ in range(3000):  # until the turn's request is out (or the child is gone)
            if _received(server.url) or child.poll() is not None:
                break
            time.sleep(0.01)
        child.send_signal(signal.SIGINT)
        out, _ = child.communicate(timeout=60)
    assert child.returncode == pytest.ExitCode.INTERRUPTED, out
    assert "KeyboardInterrupt" in out and "passed" not in out and "failed" not in out
