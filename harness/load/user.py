"""`VapiCallUser`: a Locust user that holds Vapi-shaped calls, turn by turn.

Each call is a scenario played by `mock_vapi.CallSimulator` (the one builder of Vapi's requests, the one stream
reader `check` uses, tool results and follow-ups included) on the process's `CallLoop`, an asyncio thread
beside gevent. Locust counts exactly one request per exchange ("turn", its response time the whole reply,
failed with the error class `check` uses), and the exact voice metrics go to `LoadStats`, merged across
workers. `TestRecorder` writes each test's reports; the web UI gets a "Voice latency" tab.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import aiohttp
import gevent
from locust import User, events, task
from locust.env import Environment
from locust.exception import CatchResponseError
from locust.runners import WorkerRunner

from harness.load.call_loop import CallLoop
from harness.load.recorder import TestRecorder
from harness.load.slo import Slo, evaluate
from harness.load.stats import LOAD_METRICS, LoadStats
from harness.suite import SYSTEM_PROMPT
from mock_vapi.exchange import Exchange
from mock_vapi.reader import ReadLimits
from mock_vapi.scenarios.model import Scenario, Turn
from mock_vapi.simulator import CallSimulator

__all__ = ["VapiCallUser", "call_loop", "default_call", "stats_of", "web_rows"]

T = TypeVar("T")
_DEFAULT_TURNS = ("What time do you open tomorrow?", "And do you have parking?", "Great, thank you.")


def default_call(turns: tuple[str, ...] = _DEFAULT_TURNS, first_message: str | None = None) -> Scenario:
    """The call a load run plays without `--scenario`: a short inbound phone call to a receptionist."""
    return Scenario(
        name="default-call",
        source="the built-in load call",
        turns=tuple(Turn(user=text) for text in turns),
        first_message=first_message if first_message is not None else "Hi, this is Ava. How can I help?",
        metadata={"tenant": "acme"},
        model={"model": "vapi-harness-load", "messages": [{"role": "system", "content": SYSTEM_PROMPT}]},
    )


def _kept(environment: Environment, name: str, make: Callable[[], T]) -> T:
    """The object kept on the Locust environment under `name`, made on first use."""
    value = getattr(environment, name, None)
    if value is None:
        value = make()
        setattr(environment, name, value)
    return value


def stats_of(environment: Environment) -> LoadStats:
    """The run's stats object, created on first use and kept on the Locust environment."""
    return _kept(environment, "vapi_stats", LoadStats)


def call_loop(environment: Environment) -> CallLoop:
    """The process's call loop, started on first use and kept on the Locust environment."""
    return _kept(environment, "vapi_call_loop", CallLoop)


class VapiCallUser(User):
    """One caller: plays the scenario as a call (think time before each turn after the first), then again."""

    abstract = True
    scenario: ClassVar[Scenario] = default_call()
    api_key: ClassVar[str | None] = None
    think_time_s: ClassVar[tuple[float, float]] = (1.0, 3.0)  # the caller speaking before the next turn
    barge_in_rate: ClassVar[float] = 0.0  # share of turns the caller talks over (after the first content)
    limits: ClassVar[ReadLimits] = ReadLimits()

    _simulator: CallSimulator | None = None  # made on the first call, on the call loop's thread
    _stopped: bool = False  # Locust stopped this caller: what its cut call still reports is not counted

    @task
    def call(self) -> None:
        """One call, played on the call loop; this greenlet waits for it."""
        loop = call_loop(self.environment)

        def play(session: aiohttp.ClientSession) -> Any:
            if self._simulator is None:
                self._simulator = CallSimulator(
                    self.scenario, str(self.host), session, api_key=self.api_key, limits=self.limits,
                    think_s=self.think_time_s, barge_in_rate=self.barge_in_rate,
                    on_exchange=lambda exchange: loop.to_hub(self._report, exchange),
                )  # fmt: skip
            return self._simulator.play()

        try:
            loop.run(play)
        except gevent.GreenletExit:
            self._stopped = True
            raise

    def _report(self, exchange: Exchange) -> None:
        """In the hub: one Locust request per exchange, and its voice metrics. A turn that ends after Locust
        stopped this caller (cut by the stop) is counted by neither, so both reports hold the same turns."""
        if self._stopped:
            return
        error = stats_of(self.environment).add(exchange)
        t_end = exchange.t_end if exchange.t_end is not None else exchange.t_start
        self.environment.events.request.fire(
            request_type=exchange.request.method, name="turn", response_time=(t_end - exchange.t_start) * 1000,
            response_length=exchange.body_bytes, exception=CatchResponseError(error) if error else None,
            context={}, url=exchange.request.url,
        )  # fmt: skip


def _on_init(environment: Environment, **_: Any) -> None:
    """Workers send their samples with each report and the master merges them; the master (or the standalone
    process) records each test and writes its reports when it ends."""

    sent = LoadStats()  # what this worker reported, kept only for VAPI_HARNESS_LOAD_WORKER_DUMP
    worker = isinstance(environment.runner, WorkerRunner)

    def report(client_id: str, data: dict[str, Any], **_: Any) -> None:
        data["vapi"] = stats_of(environment).drain()
        if os.environ.get("VAPI_HARNESS_LOAD_WORKER_DUMP"):
            sent.merge(data["vapi"])

    def merge(client_id: str, data: dict[str, Any], **_: Any) -> None:
        if "vapi" in data:
            stats_of(environment).merge(data["vapi"])

    def quitting(**_: Any) -> None:
        loop = getattr(environment, "vapi_call_loop", None)
        if loop is not None:
            loop.close()
        dump = os.environ.get("VAPI_HARNESS_LOAD_WORKER_DUMP")
        if isinstance(environment.runner, WorkerRunner) and dump:
            # A check of the merge (tests): each worker writes every sample it sent to the master.
            path = Path(dump) / f"worker-{environment.runner.client_id}.json"
            path.write_text(json.dumps({"samples": {k: v.tolist() for k, v in sent.samples.items()},
                                        "turns": sent.turns, "errors": dict(sent.errors)}))  # fmt: skip

    environment.events.report_to_master.add_listener(report)
    environment.events.worker_report.add_listener(merge)
    environment.events.quitting.add_listener(quitting)
    if worker:
        environment.events.test_start.add_listener(lambda **_: stats_of(environment).reset())
        return
    options = environment.parsed_options
    prefix = os.environ.get("VAPI_HARNESS_LOAD_REPORT_PREFIX") or getattr(options, "csv_prefix", None)
    recorder = TestRecorder(environment, stats_of(environment), Path(prefix) if prefix else None)
    recorder.install()
    if environment.web_ui is not None:
        _extend_web_ui(environment, recorder.slos)


_WEB_KEY = "vapi-latency"
_WEB_COLUMNS = ("n", "p50", "p90", "p95", "p99", "max")


def web_rows(stats: LoadStats, slos: Sequence[Slo] = ()) -> list[dict[str, Any]]:
    """The rows of the "Voice latency" tab: one per metric (exact, in ms; ttft first) with the verdicts of its
    SLOs so far, then turns, the error rate with its SLO, and the errors by class."""
    summary = stats.summary()
    verdicts: dict[str | None, list[str]] = {}
    for result in evaluate(slos, summary):
        verdicts.setdefault(result.slo.metric, []).append(result.line())
    rows: list[dict[str, Any]] = []
    for name in LOAD_METRICS:
        values = summary["metrics"].get(name)
        if values is None:
            cells: dict[str, Any] = dict.fromkeys(_WEB_COLUMNS, "") | {"n": 0, "p50": "no samples"}
        else:
            cells = {c: round(values[c], 1) if c != "n" else values[c] for c in _WEB_COLUMNS}
        rows.append({"metric": name, **cells, "slo": "; ".join(verdicts.get(name, []))})
    rows.append({"metric": "turns", "n": summary["turns"]})
    failed = sum(summary["errors"].values())
    rows.append(
        {"metric": f"error rate {summary['error_rate']:.2%}", "n": failed, "slo": "; ".join(verdicts.get(None, []))}
    )
    rows += [{"metric": f"error: {error}", "n": count} for error, count in sorted(summary["errors"].items())]
    return rows


def _extend_web_ui(environment: Environment, slos: Sequence[Slo]) -> None:
    """A "Voice latency" tab in Locust's web UI with the exact percentiles (Locust's own are rounded)."""
    from flask import request

    web_ui = environment.web_ui
    assert web_ui is not None and web_ui.app is not None
    # The first column's key is not "name": Locust's table sorts by "name" first, and ttft must stay on top.
    structure = [{"key": "metric", "title": "Metric"}] + [
        {"key": c, "title": c if c == "n" else f"{c} (ms)"} for c in _WEB_COLUMNS
    ] + [{"key": "slo", "title": "SLO (so far)"}]  # fmt: skip
    web_ui.template_args["extended_tabs"] = [{"title": "Voice latency", "key": _WEB_KEY}]
    web_ui.template_args["extended_tables"] = [{"key": _WEB_KEY, "structure": structure}]

    def add_voice_latency(response: Any) -> Any:
        if request.path != "/stats/requests" or not response.is_json:
            return response
        payload = response.get_json()
        payload["extended_stats"] = [{"key": _WEB_KEY, "data": web_rows(stats_of(environment), slos)}]
        response.set_data(json.dumps(payload))
        return response

    web_ui.app.after_request(add_voice_latency)


events.init.add_listener(_on_init)
