"""`check` on slow endpoints: calls overlap, a hang is met once and the probes after it are not judged."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from benchmarks.check_slow import Slowness, SlowServer, slow_app
from harness.judging import RunSettings
from harness.reporting import validate_document
from harness.results import ExchangeFinished, ProbeStarted, RunEvent, RunFinished, RunInfo, RunResult, RunStarted
from harness.runner import Runner, hangs
from harness.servers import ServerThread
from harness.suite import Probe, Target, default_probes
from mock_vapi import CustomLLMModel
from mock_vapi.exchange import Exchange, Outcome
from mock_vapi.reader import ReadLimits

pytestmark = pytest.mark.slow

FAST = ("--timeout-s", "2", "--deadline-s", "3", "--close-grace-s", "0.5", "--barge-in-pause-ms", "200")
KEY = "sk-slow-0123456789abcdef"
HUNG = "the endpoint hangs (stream_basic: No response headers within 0.5 s)"


def _completions(server: ServerThread) -> int:
    return sum(r.path.endswith("/chat/completions") for r in server.app.state.fake.recorded)


def _unjudged(exchange: dict[str, Any], reason: str) -> bool:
    """Every finding of the exchange is not judged, for `reason`; there is at least one."""
    findings = exchange["findings"]
    return bool(findings) and all(f["status"] == "not_judged" and f["title"] == reason for f in findings)


def test_a_hanging_endpoint_gets_one_request_and_the_rest_are_not_judged(
    fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    server = fake_llm(faults={"hang"})
    junit = tmp_path / "junit.xml"
    result = run_cli(
        "check", "--url", f"{server.url}/v1", "--timeout-s", "0.5", "--deadline-s", "1", "--junit", str(junit)
    )
    assert result.code == 1
    report = result.report
    assert validate_document(report) == []
    assert _completions(server) == 1  # the first probe went alone, and hung: nothing else was sent
    exchanges = report["exchanges"]
    assert [e["probe"] for e in exchanges] == report["settings"]["probes"]
    first, rest = exchanges[0], exchanges[1:]
    assert first["response"]["outcome"] == "headers_timeout"
    assert "headers_within_timeout" in result.failed("error")
    for exchange in rest:
        assert exchange["response"]["outcome"] == "cancelled"
        assert exchange["response"]["error"] == f"Not sent: {HUNG}"
        assert _unjudged(exchange, HUNG), exchange["findings"]
    assert report["summary"]["exchanges"] == 1
    assert report["stopped_early"].startswith("the endpoint hangs: stream_basic hung (No response headers")
    assert f"{len(rest)} probes were not judged" in report["stopped_early"]
    # Only what the one request showed is judged: the URL, and that the connection was accepted.
    passed = {c["id"] for c in report["checks"] if c["status"] == "passed"}
    assert passed <= {"model_url_is_base_url", "endpoint_reachable"}
    assert result.check("message_in_reply")["not_judged_reason"] == HUNG  # only a not-sent probe concerns it
    assert f"   {HUNG}:" in result.out
    skipped = {s.get("message") for s in ET.parse(junit).getroot().iterfind("testsuite[@name='non_stream']//skipped")}
    assert skipped == {f"not judged: {HUNG}"}


def test_a_stream_of_empty_chunks_cuts_the_requests_in_flight(
    serve: Callable[[Any], ServerThread], run_cli: Callable[..., Any]
) -> None:
    state = SlowServer(Slowness.EMPTY, stall_s=0)
    server = serve(slow_app(state))
    result = run_cli("check", "--url", f"{server.url}/v1", *FAST)
    assert result.code == 1
    report = result.report
    assert validate_document(report) == []
    assert state.max_open >= 2  # the probes of different calls overlapped
    exchanges = {e["probe"]: e for e in report["exchanges"]}
    assert list(exchanges) == report["settings"]["probes"]
    assert exchanges["stream_basic"]["response"]["outcome"] == "first_delta_timeout"
    reason = "the endpoint hangs (stream_basic: No content or tool-call delta within 2 s)"
    # The turn after the tool result waited for the tool turn, the barge-in for every earlier call to be answered
    # (the tool call's second turn never was): none of them was sent.
    not_sent = {name for name, e in exchanges.items() if (e["response"]["error"] or "").startswith("Not sent: ")}
    assert not_sent == {"after_tool_result", "barge_in", "after_barge_in", "turn_after_barge_in"}
    # The streams that started after the first one had answered were still open: cut.
    cut = {name for name, e in exchanges.items() if (e["response"]["error"] or "").startswith("Cut short: ")}
    assert {"stream_tool_call", "metadata_off", "metadata_variable", "stream_usage"} <= cut
    for exchange in report["exchanges"]:
        error = exchange["response"]["error"] or ""
        if error.startswith(("Cut short: ", "Not sent: ")):
            assert error.endswith(reason) and _unjudged(exchange, reason), exchange["findings"]
        elif exchange["request"]["stream"] and exchange["expect"] == "turn":
            # A stream cut by its own bound in the same instant is judged, and fails: never a pass.
            assert exchange["response"]["outcome"] == "first_delta_timeout", exchange["probe"]
            assert any(f["status"] == "failed" for f in exchange["findings"])
    assert report["summary"]["exchanges"] == len(report["exchanges"]) - len(not_sent)


def _info(url: str, probes: list[Probe]) -> RunInfo:
    return RunInfo("r", url, "m", "variable", False, False, 2.0, 1, False, tuple(p.name for p in probes),
                   datetime.now(UTC))  # fmt: skip


def _run(url: str, probes: list[Probe], max_in_flight: int) -> tuple[list[RunEvent], RunResult]:
    limits = ReadLimits(deadline_s=3.0, close_grace_s=0.5)
    runner = Runner(_info(url, probes), probes, RunSettings(limits=limits, max_in_flight=max_in_flight))

    async def drive() -> list[RunEvent]:
        return [event async for event in runner.events()]

    return asyncio.run(drive()), runner.run


def _verdicts(run: RunResult) -> list[tuple[str, str, list[tuple[str, str]]]]:
    return [
        (r.probe.name, r.exchange.outcome.value, [(f.check, f.status.value) for f in r.findings]) for r in run.results
    ]


def test_a_correct_endpoint_is_judged_the_same_with_calls_overlapping(
    fake_llm: Callable[..., ServerThread],
) -> None:
    server = fake_llm(api_key=KEY)
    model = CustomLLMModel(url=f"{server.url}/v1", model="m", timeout_s=2.0)
    probes = default_probes(Target(model, KEY), barge_in_pause_ms=100)
    one_by_one = _run(model.url, probes, max_in_flight=1)[1]
    events, together = _run(model.url, probes, max_in_flight=8)
    assert together.passed and one_by_one.passed
    assert _verdicts(together) == _verdicts(one_by_one)
    assert [(s.id, s.status, s.runs) for s in together.checks()] == [
        (s.id, s.status, s.runs) for s in one_by_one.checks()
    ]
    # The writers see the events in the probes' order, each probe started before it finished.
    expected: list[tuple[str, str]] = []
    for probe in probes:
        expected += [("ProbeStarted", probe.name), ("ExchangeFinished", probe.name)]
    seen = [
        (type(e).__name__, e.probe.name if isinstance(e, ProbeStarted) else e.result.probe.name)
        for e in events
        if isinstance(e, ProbeStarted | ExchangeFinished)
    ]
    assert seen == expected
    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunFinished)
    assert [e.index for e in events if isinstance(e, ProbeStarted)] == list(range(1, len(probes) + 1))


def test_a_stalling_endpoint_is_met_by_overlapping_calls_whose_turns_stay_in_order(
    serve: Callable[[Any], ServerThread],
) -> None:
    state = SlowServer(Slowness.STALL, stall_s=0.3)
    server = serve(slow_app(state))
    model = CustomLLMModel(url=f"{server.url}/v1", model="m", timeout_s=2.0)
    probes = default_probes(Target(model), barge_in_pause_ms=100)
    _, run = _run(model.url, probes, max_in_flight=8)
    assert run.passed and not run.stopped_early
    assert 2 <= state.max_open <= 8
    results = {r.probe.name: r.exchange for r in run.results}
    assert list(results) == [p.name for p in probes]

    def after(later: str, earlier: str) -> bool:
        end = results[earlier].t_end
        return end is not None and results[later].t_start >= end

    # A call's turns one after another: the tool turn, then the turn after its result; the barge-in trio.
    assert after("after_tool_result", "stream_tool_call")
    assert after("after_barge_in", "barge_in") and after("turn_after_barge_in", "after_barge_in")
    # No request of another call leaves after the barge-in: each had its first bytes before it.
    barge_in = results["barge_in"].t_start
    assert all(x.t_start < barge_in for name, x in results.items() if not name.endswith("barge_in"))
    # The first probe went alone until it was answered.
    first = results["stream_basic"].events[0].sse.t
    assert all(x.t_start > first for name, x in results.items() if name != "stream_basic")


def test_probes_of_one_call_are_sent_one_at_a_time(serve: Callable[[Any], ServerThread]) -> None:
    state = SlowServer(Slowness.STALL, stall_s=0.1)
    server = serve(slow_app(state))
    model = CustomLLMModel(url=f"{server.url}/v1", model="m", timeout_s=2.0)
    requests = [p.request for p in default_probes(Target(model))[:4]]
    probes = [Probe(f"replay_{i}", "a recorded request", request) for i, request in enumerate(requests)]
    _, run = _run(model.url, probes, max_in_flight=8)
    assert state.received == 4 and state.max_open == 1
    assert [r.probe.name for r in run.results] == [p.name for p in probes]


def _exchange(probe: Probe, outcome: Outcome) -> Exchange:
    return Exchange(probe.request, time.perf_counter(), outcome)


@pytest.mark.parametrize(
    ("outcome", "hung"),
    [
        (Outcome.HEADERS_TIMEOUT, True),
        (Outcome.FIRST_DELTA_TIMEOUT, True),
        (Outcome.IDLE_TIMEOUT, True),
        (Outcome.DEADLINE, True),
        (Outcome.CLOSE_TIMEOUT, False),
        (Outcome.TOO_LARGE, False),
        (Outcome.BROKEN, False),
        (Outcome.COMPLETE, False),
        (Outcome.CANCELLED, False),
    ],
)
def test_which_outcomes_show_the_endpoint_hanging(outcome: Outcome, hung: bool) -> None:
    probes = {p.name: p for p in default_probes(Target(CustomLLMModel(url="http://127.0.0.1:9/v1", model="m")))}
    assert hangs(probes["stream_basic"], _exchange(probes["stream_basic"], outcome)) is hung
    # Requests Vapi does not send on a call are judged as themselves, and stop nothing.
    for name in ("non_stream", "stream_usage"):
        assert not hangs(probes[name], _exchange(probes[name], outcome))
