"""`VapiCallUser`: a Locust user that holds Vapi-shaped calls, turn by turn.

Each call is a scenario played by `mock_vapi.CallSimulator` (the one builder of Vapi's requests, the one stream
reader `check` uses, tool results and follow-ups included) on the process's `CallLoop`, an asyncio thread
beside gevent. Locust counts exactly one request per exchange ("turn", its response time the whole reply,
failed with the error class `check` uses), and the exact voice metrics go to `LoadStats`, merged across
workers.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import aiohttp
from locust import User, events, task
from locust.env import Environment
from locust.exception import CatchResponseError
from locust.runners import WorkerRunner

from harness.exchange import Exchange
from harness.load.call_loop import CallLoop
from harness.load.stats import LoadStats
from harness.reader import ReadLimits
from harness.scenarios.model import Scenario, Turn
from mock_vapi.simulator import CallSimulator

__all__ = ["VapiCallUser", "call_loop", "default_call", "stats_of", "web_rows", "write_reports"]

T = TypeVar("T")
_SYSTEM = "You are Ava, the receptionist for Acme Dental. Keep answers short: they are spoken on a phone call."
_DEFAULT_TURNS = ("What time do you open tomorrow?", "And do you have parking?", "Great, thank you.")


def default_call(turns: tuple[str, ...] = _DEFAULT_TURNS, first_message: str | None = None) -> Scenario:
    """The call a load run plays without `--scenario`: a short inbound phone call to a receptionist."""
    return Scenario(
        name="default-call",
        source="the built-in load call",
        turns=tuple(Turn(user=text) for text in turns),
        first_message=first_message if first_message is not None else "Hi, this is Ava. How can I help?",
        metadata={"tenant": "acme"},
        model={"model": "vapi-harness-load", "messages": [{"role": "system", "content": _SYSTEM}]},
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

        loop.run(play)

    def _report(self, exchange: Exchange) -> None:
        """In the hub: one Locust request per exchange, and its voice metrics."""
        error = stats_of(self.environment).add(exchange)
        t_end = exchange.t_end if exchange.t_end is not None else exchange.t_start
        self.environment.events.request.fire(
            request_type=exchange.request.method, name="turn", response_time=(t_end - exchange.t_start) * 1000,
            response_length=exchange.body_bytes, exception=CatchResponseError(error) if error else None,
            context={}, url=exchange.request.url,
        )  # fmt: skip


def _on_init(environment: Environment, **_: Any) -> None:
    """Workers send their samples with each report; the master merges them into the run's stats."""

    sent = LoadStats()  # what this worker reported, kept only for VAPI_HARNESS_LOAD_WORKER_DUMP

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
        if isinstance(environment.runner, WorkerRunner):
            # A check of the merge (tests): each worker writes every sample it sent to the master.
            dump = os.environ.get("VAPI_HARNESS_LOAD_WORKER_DUMP")
            if dump:
                path = Path(dump) / f"worker-{environment.runner.client_id}.json"
                path.write_text(json.dumps({"samples": {k: v.tolist() for k, v in sent.samples.items()},
                                            "turns": sent.turns, "errors": dict(sent.errors)}))  # fmt: skip
            return
        options = environment.parsed_options
        prefix = os.environ.get("VAPI_HARNESS_LOAD_REPORT_PREFIX") or getattr(options, "csv_prefix", None)
        if prefix:
            stats = stats_of(environment)
            write_reports(stats, Path(prefix))
            if os.environ.get("VAPI_HARNESS_LOAD_SAMPLES"):  # raw samples, for the HTML report's distributions
                path = Path(prefix).with_name(Path(prefix).name + "_vapi_samples.json")
                path.write_text(json.dumps({k: v.tolist() for k, v in stats.samples.items()}))

    environment.events.report_to_master.add_listener(report)
    environment.events.worker_report.add_listener(merge)
    environment.events.quitting.add_listener(quitting)
    if environment.web_ui is not None:
        _extend_web_ui(environment)


_WEB_KEY = "vapi-latency"
_WEB_COLUMNS = ("n", "p50", "p90", "p95", "p99", "max")


def web_rows(stats: LoadStats) -> list[dict[str, Any]]:
    """The rows of the "Voice latency" tab: one per metric (exact, in ms), then turns and errors by class."""
    summary = stats.summary()
    rows: list[dict[str, Any]] = [
        {"name": name, **{c: round(values[c], 1) if c != "n" else values[c] for c in _WEB_COLUMNS}}
        for name, values in summary["metrics"].items()
    ]
    rows.append({"name": "turns", "n": summary["turns"]})
    rows += [{"name": f"error: {error}", "n": count} for error, count in sorted(summary["errors"].items())]
    return rows


def _extend_web_ui(environment: Environment) -> None:
    """A "Voice latency" tab in Locust's web UI with the exact percentiles (Locust's own are rounded)."""
    from flask import request

    web_ui = environment.web_ui
    assert web_ui is not None and web_ui.app is not None
    structure = [{"key": "name", "title": "Metric"}] + [
        {"key": c, "title": c if c == "n" else f"{c} (ms)"} for c in _WEB_COLUMNS
    ]
    web_ui.template_args["extended_tabs"] = [{"title": "Voice latency", "key": _WEB_KEY}]
    web_ui.template_args["extended_tables"] = [{"key": _WEB_KEY, "structure": structure}]

    def add_voice_latency(response: Any) -> Any:
        if request.path != "/stats/requests" or not response.is_json:
            return response
        payload = response.get_json()
        payload["extended_stats"] = [{"key": _WEB_KEY, "data": web_rows(stats_of(environment))}]
        response.set_data(json.dumps(payload))
        return response

    web_ui.app.after_request(add_voice_latency)


def write_reports(stats: LoadStats, prefix: Path) -> tuple[Path, Path]:
    """`<prefix>_vapi.json` (the summary) and `<prefix>_vapi.csv` (one row per metric), beside Locust's CSVs."""
    summary = stats.summary()
    json_path = prefix.with_name(prefix.name + "_vapi.json")
    csv_path = prefix.with_name(prefix.name + "_vapi.csv")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    columns = ("n", "min", "mean", "p50", "p90", "p95", "p99", "max")
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["metric", *columns])
        for name, row in summary["metrics"].items():
            writer.writerow([name, *(round(row[c], 3) if c != "n" else row[c] for c in columns)])
        writer.writerow(["turns", summary["turns"], *([""] * (len(columns) - 1))])
        for error, count in sorted(summary["errors"].items()):
            writer.writerow([f"error:{error}", count, *([""] * (len(columns) - 1))])
    return json_path, csv_path


events.init.add_listener(_on_init)
