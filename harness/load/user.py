"""`VapiCallUser`: a Locust user that holds Vapi-shaped calls, turn by turn, on Locust's fast HTTP client.

Each turn is the request Vapi sends (`mock_vapi.build_request`, the one builder) and its reply is fed line by
line, stamped as it arrives, into the same sans-IO recorder `check` uses (`harness.exchange.Recorder`), so the
metrics are `check`'s. Locust counts exactly one request per turn ("turn", its response time the whole reply),
and the exact voice metrics go to `LoadStats`, merged across workers.
"""

from __future__ import annotations

import csv
import json
import os
import random
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import gevent
from locust import FastHttpUser, events, task
from locust.env import Environment
from locust.runners import WorkerRunner

from harness.exchange import Exchange, Outcome, Recorder
from harness.load.stats import LoadStats
from harness.scenarios.model import Scenario
from mock_vapi import CallContext, CustomLLMModel, build_request

__all__ = ["CallPlan", "VapiCallUser", "stats_of", "web_rows", "write_reports"]

_MAX_BODY = 4 * 1024 * 1024
_SYSTEM = "You are Ava, the receptionist for Acme Dental. Keep answers short: they are spoken on a phone call."
_DEFAULT_TURNS = ("What time do you open tomorrow?", "And do you have parking?", "Great, thank you.")


class CallPlan:
    """What every simulated call says: a scenario's turns, or a short default call."""

    def __init__(self, scenario: Scenario | None = None, model: str = "vapi-harness-load") -> None:
        self.scenario = scenario
        fields = dict(scenario.model) if scenario is not None else {}
        fields.setdefault("model", model)
        fields.setdefault("messages", [{"role": "system", "content": _SYSTEM}])
        self.model_fields = fields
        self.turns: Sequence[str] = [t.user for t in scenario.turns] if scenario is not None else _DEFAULT_TURNS
        self.first_message = scenario.first_message if scenario is not None else "Hi, this is Ava. How can I help?"
        self.metadata: Mapping[str, Any] = scenario.metadata if scenario is not None else {"tenant": "acme"}


def stats_of(environment: Environment) -> LoadStats:
    """The run's stats object, created on first use and kept on the Locust environment."""
    stats = getattr(environment, "vapi_stats", None)
    if stats is None:
        stats = LoadStats()
        environment.vapi_stats = stats  # type: ignore[attr-defined]
    return stats


def _abort(stream: Any) -> None:
    """Close the connection mid-body (a barge-in): it must not go back to the pool half read."""
    pool, sock = getattr(stream, "_pool", None), getattr(stream, "_sock", None)
    if pool is not None and sock is not None:
        pool.release_socket(sock)  # closes it
        stream._sock = None
        stream._pool = None


class VapiCallUser(FastHttpUser):
    """One caller: plays a call (the plan's turns, think time between them), then the next call."""

    abstract = True
    plan: ClassVar[CallPlan] = CallPlan()
    api_key: ClassVar[str | None] = None
    think_time_s: ClassVar[tuple[float, float]] = (1.0, 3.0)  # the caller speaking before the next turn
    barge_in_rate: ClassVar[float] = 0.0  # share of turns the caller interrupts after the first content
    timeout_s: ClassVar[float] = 20.0

    def _model(self) -> CustomLLMModel:
        fields = {
            **self.plan.model_fields,
            "provider": "custom-llm",
            "url": self.host,
            "timeoutSeconds": self.timeout_s,
        }
        return CustomLLMModel.from_vapi(fields)

    @task
    def call(self) -> None:
        """One call, turn by turn."""
        model = self._model()
        context = CallContext.inbound_phone_call(metadata=self.plan.metadata)
        history: list[dict[str, Any]] = [dict(m) for m in model.messages]
        if self.plan.first_message:
            history.append({"role": "assistant", "content": self.plan.first_message})
        for utterance in self.plan.turns:
            messages = [*history, {"role": "user", "content": utterance}]
            barge_in = random.random() < self.barge_in_rate
            exchange = self.turn(build_request(model, messages, context=context, api_key=self.api_key), barge_in)
            if barge_in and exchange.outcome is Outcome.ABORTED:  # the caller kept talking: the turn goes again
                exchange = self.turn(build_request(model, messages, context=context, api_key=self.api_key), False)
            if exchange.outcome is not Outcome.COMPLETE:
                return  # Vapi ends the call on a failed turn
            history += [{"role": "user", "content": utterance}, {"role": "assistant", "content": exchange.text}]
            gevent.sleep(random.uniform(*self.think_time_s))

    def turn(self, request: Any, barge_in: bool) -> Exchange:
        """Send one turn, record its reply as `check` does, and report it to Locust once."""
        exchange = Exchange(request, time.perf_counter())
        recorder = Recorder(exchange)
        path = request.url.removeprefix(str(self.host).rstrip("/"))
        with self.client.request(
            request.method, path, data=request.body, headers=dict(request.headers), stream=True,
            catch_response=True, name="turn", timeout=self.timeout_s,
        ) as response:  # fmt: skip
            exchange.t_headers = time.perf_counter()
            exchange.status = response.status_code
            failure = self._read(response, recorder, barge_in)
            recorder.finish(time.perf_counter())
            stats = stats_of(self.environment)
            error = failure or stats.add(exchange)
            response.request_meta["response_time"] = (time.perf_counter() - exchange.t_start) * 1000
            response.request_meta["response_length"] = exchange.body_bytes
            if error is None:
                response.success()
            else:
                response.failure(error)
        return exchange

    def _read(self, response: Any, recorder: Recorder, barge_in: bool) -> str | None:
        exchange = recorder.exchange
        if response.status_code == 0:
            exchange.outcome = Outcome.CONNECT_ERROR
            exchange.error = str(response.error)
            stats_of(self.environment).add(exchange)
            return "endpoint_unreachable"
        stream = response.stream
        try:
            while True:
                line = stream.readline(b"\n")
                now = time.perf_counter()
                if not line:
                    rest = stream.read()
                    if rest:
                        recorder.feed(bytes(rest), now)
                    recorder.end_of_body(now)
                    return None
                recorder.feed(bytes(line), now)
                if exchange.body_bytes > _MAX_BODY:
                    exchange.outcome = Outcome.TOO_LARGE
                    _abort(stream)
                    return None
                if barge_in and recorder.first_delta_at is not None:
                    exchange.outcome = Outcome.ABORTED
                    _abort(stream)
                    return None
        except (OSError, gevent.Timeout, ValueError) as exc:
            exchange.outcome = Outcome.BROKEN
            exchange.error = f"{type(exc).__name__}: {exc}"
            _abort(stream)
            return None


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
