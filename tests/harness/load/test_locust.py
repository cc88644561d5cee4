"""Locust runs as Locust (`locust -f harness/load/locustfile.py --headless`) against the fake LLM on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.servers import ServerThread

pytestmark = [pytest.mark.slow, pytest.mark.load]
LOCUSTFILE = Path(__file__).parents[3] / "harness" / "load" / "locustfile.py"


def _locust(host: str, prefix: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", host]
    command += ["-u", "4", "-r", "4", "-t", "3s", "--only-summary", "--csv", str(prefix)]
    command += ["--json-file", str(prefix.with_name(prefix.name + "_locust")), *args]
    environ = {**os.environ, "VAPI_HARNESS_LOAD_THINK_S": "0.02,0.05", **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, env=environ)


def _locust_turns(prefix: Path) -> tuple[int, int]:
    """Locust's own final counts for "turn" (its JSON file; its CSV is written before the last requests end)."""
    stats = json.loads(prefix.with_name(prefix.name + "_locust.json").read_text())
    row = next(r for r in stats if r["name"] == "turn")
    return int(row["num_requests"]), int(row["num_failures"])


def test_one_locust_request_per_turn_and_exact_voice_metrics(
    tmp_path: Path, fake_llm: Callable[..., ServerThread]
) -> None:
    server = fake_llm(ttft_ms=25, chunk_delay_ms=2)
    prefix = tmp_path / "run"
    done = _locust(f"{server.url}/v1", prefix)
    assert done.returncode == 0, done.stderr[-2000:]
    summary: dict[str, Any] = json.loads(prefix.with_name("run_vapi.json").read_text())
    requests, failures = _locust_turns(prefix)
    assert summary["turns"] == requests > 0 and failures == 0 and summary["errors"] == {}
    ttft = summary["metrics"]["ttft_ms"]
    assert ttft["n"] == requests
    assert ttft["min"] >= 25  # the fake waits 25 ms before the first chunk: nothing can be faster
    assert ttft["p50"] <= ttft["p95"] <= ttft["max"]
    bodies = [r.body for r in server.app.state.fake.recorded]
    assert all(b["stream"] is True and b["call"]["type"] == "inboundPhoneCall" for b in bodies)
    assert any(len(b["messages"]) > 3 for b in bodies)  # later turns carry the call's history


def test_failures_are_counted_once_and_named_as_check_names_them(
    tmp_path: Path, fake_llm: Callable[..., ServerThread]
) -> None:
    server = fake_llm(faults={"no-choices"})
    prefix = tmp_path / "run"
    done = _locust(f"{server.url}/v1", prefix)
    assert done.returncode == 1  # Locust exits 1 when requests failed
    summary = json.loads(prefix.with_name("run_vapi.json").read_text())
    requests, failures = _locust_turns(prefix)
    assert failures == requests == summary["turns"] and summary["errors"] == {"chunks_have_choices": requests}
    rows = prefix.with_name("run_vapi.csv").read_text().splitlines()
    assert f"error:chunks_have_choices,{requests},,,,,,," in rows


def test_the_web_ui_has_a_voice_latency_tab_with_exact_percentiles(
    tmp_path: Path, fake_llm: Callable[..., ServerThread]
) -> None:
    import time

    import httpx

    from harness.servers import free_port

    server = fake_llm()
    port = free_port()
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--host", f"{server.url}/v1", "-u", "3",
               "-r", "3", "-t", "6s", "--autostart", "--autoquit", "0", "--web-host", "127.0.0.1",
               "--web-port", str(port)]  # fmt: skip
    environ = {**os.environ, "VAPI_HARNESS_LOAD_THINK_S": "0.02,0.05"}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environ)
    try:
        rows: list[dict[str, Any]] = []
        for _ in range(100):  # bounded: until some turns were measured
            time.sleep(0.1)
            try:
                stats = httpx.get(f"http://127.0.0.1:{port}/stats/requests", timeout=2).json()
            except httpx.HTTPError:
                continue
            rows = next((s["data"] for s in stats.get("extended_stats", []) if s["key"] == "vapi-latency"), [])
            if any(r["metric"] == "ttft_ms" and r["n"] for r in rows):
                break
        page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5).text
    finally:
        process.terminate()
        process.wait(timeout=30)
    ttft = next(r for r in rows if r["metric"] == "ttft_ms")
    assert ttft["n"] >= 1 and ttft["p50"] <= ttft["p99"] <= ttft["max"]
    assert any(r["metric"] == "turns" and r["n"] >= ttft["n"] for r in rows)
    assert "Voice latency" in page and "vapi-latency" in page


SCENARIOS = Path(__file__).parents[3] / "scenarios"


def test_a_scenario_with_a_tool_sends_its_result_and_the_follow_up_under_load(
    tmp_path: Path, fake_llm: Callable[..., ServerThread]
) -> None:
    server = fake_llm()
    prefix = tmp_path / "run"
    scenario = SCENARIOS / "conformance" / "tool_round_trip.yaml"
    done = _locust(f"{server.url}/v1", prefix, env={"VAPI_HARNESS_LOAD_SCENARIO": str(scenario)})
    assert done.returncode == 0, done.stderr[-2000:]
    bodies = [r.body for r in server.app.state.fake.recorded]
    follow_ups = [b for b in bodies if b["messages"][-1]["role"] == "tool"]
    assert follow_ups, "no request carried the tool's result"
    for body in follow_ups:  # the call's assistant tool_calls message, then the mocked result
        call, result = body["messages"][-2], body["messages"][-1]
        assert call["role"] == "assistant" and call["tool_calls"][0]["function"]["name"] == "get_weather"
        assert result == {"role": "tool", "tool_call_id": call["tool_calls"][0]["id"], "content": "Sunny, 21 degrees."}
    requests, failures = _locust_turns(prefix)
    summary = json.loads(prefix.with_name("run_vapi.json").read_text())
    # One Locust request per request sent, the tool call and its follow-up alike (the 4 users' last ones may be
    # cut short when the run ends).
    assert requests == summary["turns"] and len(bodies) - 4 <= requests <= len(bodies) and failures == 0


def test_barge_ins_close_the_stream_and_send_the_turn_again(
    tmp_path: Path, fake_llm: Callable[..., ServerThread]
) -> None:
    server = fake_llm(ttft_ms=5, chunk_delay_ms=20)  # long enough replies to be talked over
    prefix = tmp_path / "run"
    done = _locust(f"{server.url}/v1", prefix, env={"VAPI_HARNESS_LOAD_BARGE_IN_RATE": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    records = list(server.app.state.fake.recorded)
    cut = [r for r in records if r.outcome == "client_disconnected"]
    assert cut, "no stream was closed by a barge-in"
    # Every cut turn goes again with the same history: the re-sent request repeats the aborted one.
    bodies = [json.dumps(r.body["messages"], sort_keys=True) for r in records]
    for record in cut:
        index = records.index(record)
        if index + 1 < len(records):
            assert json.dumps(record.body["messages"], sort_keys=True) in bodies[index + 1 :]
    requests, failures = _locust_turns(prefix)
    assert failures == 0 and requests >= len(cut)
