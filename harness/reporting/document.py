"""The versioned JSON document of a run: what `--json` writes and saved runs are re-rendered from."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any, Protocol

import jsonschema

from harness import __version__
from harness.metrics import Distribution
from harness.protocol import Redactor
from harness.results import ExchangeResult, RunResult
from harness.scenarios.runner import ScenarioResult
from mock_vapi.exchange import Exchange

__all__ = [
    "SCHEMA_VERSION",
    "TIMELINE_LIMIT",
    "TOOL_NAME",
    "document_header",
    "report_schema",
    "run_document",
    "run_header",
    "schema_errors",
    "shipped_schema",
    "validate_document",
]

SCHEMA_VERSION = 3  # 3: the optional `comparison` block (check --baseline); reports of 2 still validate
TIMELINE_LIMIT = 2000
TOOL_NAME = "vapi-harness"  # the `tool.name` of every versioned document we write
_BODY_LIMIT = 4000
_CONTENT_LIMIT = 200


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _timeline(exchange: Exchange) -> list[dict[str, Any]]:
    """Headers, byte chunks, events and end on one axis, in ms from the request start."""
    items: list[dict[str, Any]] = []
    if exchange.t_headers is not None:
        items.append({"t_ms": _round(exchange.ms(exchange.t_headers)), "kind": "headers"})
    items += [{"t_ms": _round(exchange.ms(t)), "kind": "bytes", "size": n} for t, n in exchange.byte_chunks]
    for event in exchange.events:
        item: dict[str, Any] = {"t_ms": _round(exchange.ms(event.sse.t)), "kind": "event", "index": event.sse.index}
        if event.sse.is_done:
            item["done"] = True
        if event.content:
            item["content"] = event.content[:_CONTENT_LIMIT]
        if event.tool_calls:
            item["tool_call"] = True
        if not event.spoken:
            item["ignored"] = True
        items.append(item)
    items.sort(key=lambda i: i["t_ms"])
    items = items[: TIMELINE_LIMIT - 1]
    if exchange.t_end is not None:
        items.append({"t_ms": _round(exchange.ms(exchange.t_end)), "kind": "end", "outcome": exchange.outcome.value})
    return items


def _exchange(result: ExchangeResult, redactor: Redactor) -> dict[str, Any]:
    exchange = result.exchange
    request = exchange.request
    body: Any = dict(request.json_body) if request.json_body is not None else request.body.decode("utf-8", "replace")
    return {
        "probe": result.probe.name,
        "description": result.probe.description,
        "expect": result.probe.expect.value,
        "repeat": result.repeat,
        "request": {
            "method": request.method,
            "url": redactor.text(request.url),
            "headers": redactor.headers(request.headers),
            "stream": request.stream,
            "body": redactor.deep(body),
        },
        "response": {
            "status": exchange.status,
            "headers": redactor.headers(exchange.headers.items()),
            "outcome": exchange.outcome.value,
            "error": redactor.text(exchange.error) if exchange.error else None,
            "bytes": exchange.body_bytes,
            "events": len(exchange.events),
            "comments": exchange.comments,
            "redirects": [redactor.text(u) for u in exchange.redirects],
            "text": redactor.text(exchange.text[:_BODY_LIMIT]),
            "body_excerpt": redactor.text(exchange.body_excerpt(_BODY_LIMIT)),
        },
        "deviations": [
            {"kind": d.kind, "detail": redactor.text(d.detail), "t_ms": _round(exchange.ms(d.t))}
            for d in exchange.deviations
        ],
        "findings": [
            {
                "check": f.check,
                "severity": f.severity.value,
                "status": f.status.value,
                "title": redactor.text(f.title),
                "detail": redactor.text(f.detail),
                "note": f.note,
                "event": f.event,
            }
            for f in result.findings
        ],
        "metrics": {k: _round(v) for k, v in result.metrics.items()},
        "timeline": redactor.deep(_timeline(exchange)),
    }


def _latency(run: RunResult) -> dict[str, Any]:
    """Each metric's distribution, with the raw samples it summarises (charts and comparisons use those)."""
    out = {}
    for name, values in run.latency_samples().items():
        d = Distribution.of(values)
        if d is None:
            continue
        fields = {k: _round(v) if isinstance(v, float) else v for k, v in asdict(d).items() if k != "percentiles"}
        out[name] = fields | {k: _round(v) for k, v in d.percentiles.items()} | {"samples": [_round(v) for v in values]}
    return out


def _scenario(result: ScenarioResult, redactor: Redactor) -> dict[str, Any]:
    return {
        "name": result.name,
        "source": result.source,
        "copy": result.copy,
        "call_id": result.call_id,
        "verdict": "passed" if result.passed else "failed",
        "ended_reason": result.ended_reason,
        "turns": [
            {
                "index": turn.index,
                "user": redactor.text(turn.user) if turn.user is not None else None,
                "played": turn.played,
                "verdict": "passed" if turn.passed else "failed",
                "spoken": redactor.text(turn.spoken[:_BODY_LIMIT]),
                "tool_calls": turn.tool_calls,
                "timing": {k: _round(v) for k, v in turn.timing.items()},
                "expectations": [
                    {"what": e.what, "passed": e.passed, "message": redactor.text(e.message)} for e in turn.expectations
                ],
                "failed_checks": [redactor.text(c) for c in turn.failed_checks],
                "requests": [x.probe.name for x in turn.exchanges],
            }
            for turn in result.turns
        ],
        "transcript": [{"role": role, "text": redactor.text(text)} for role, text in result.transcript],
    }


class _Started(Protocol):
    @property
    def run_id(self) -> str: ...

    @property
    def started_at(self) -> datetime: ...


class _Ended(Protocol):
    """A run of any command, complete or not: what every one of its documents says first."""

    @property
    def info(self) -> _Started: ...

    @property
    def finished_at(self) -> datetime | None: ...

    @property
    def interrupted(self) -> str | None: ...

    @property
    def stopped_early(self) -> str | None: ...

    @property
    def passed(self) -> bool: ...


def run_header(run: _Ended, redactor: Redactor) -> dict[str, Any]:
    """Which run a document is of, when it ran, its verdict and whether it was cut short."""
    return {
        "run_id": run.info.run_id,
        "started_at": run.info.started_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "verdict": "passed" if run.passed else "failed",
        "interrupted": run.interrupted,
        "stopped_early": redactor.text(run.stopped_early) if run.stopped_early else None,
    }


def document_header(schema_version: int) -> dict[str, Any]:
    """The first keys of every versioned document we write: its schema's version and the tool that wrote it."""
    return {"schema_version": schema_version, "tool": {"name": TOOL_NAME, "version": __version__}}


def run_document(run: RunResult, redactor: Redactor) -> dict[str, Any]:
    """The JSON report of `run`, secrets redacted."""
    info = run.info
    return {
        **document_header(SCHEMA_VERSION),
        **run_header(run, redactor),
        "target": {
            "url": redactor.text(info.url),
            "model": info.model,
            "metadata_send_mode": info.metadata_send_mode,
            "builtin": info.builtin,
            "authenticated": info.authenticated,
            "timeout_s": info.timeout_s,
        },
        "settings": {
            "repeat": info.repeat,
            "strict": info.strict,
            "probes": list(info.probes),
            "suites": list(info.suites),
            "thresholds": dict(info.thresholds),
        },
        "summary": run.counts(),
        "checks": [
            {
                "id": s.id,
                "severity": s.severity.value,
                "rationale": s.rationale,
                "status": s.status.value,
                "runs": s.runs,
                "not_judged_reason": s.not_judged_reason,
                "failures": [
                    {
                        "probe": r.probe.name,
                        "repeat": r.repeat,
                        "severity": f.severity.value,
                        "title": redactor.text(f.title),
                        "detail": redactor.text(f.detail),
                        "note": f.note,
                    }
                    for r, f in s.failures_first
                ],
            }
            for s in run.checks()
        ],
        "latency": _latency(run),
        "exchanges": [_exchange(r, redactor) for r in run.results],
        "scenarios": [_scenario(r, redactor) for r in run.scenarios],
    }


@cache
def shipped_schema(name: str) -> dict[str, Any]:
    """A JSON Schema shipped in the package (`schema/NAME`)."""
    text = resources.files("harness").joinpath(f"schema/{name}").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def schema_errors(schema: dict[str, Any], document: Any) -> list[str]:
    """Where `document` breaks `schema`, with JSON paths; [] when valid."""
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(document)]


def report_schema() -> dict[str, Any]:
    """The JSON Schema every report validates against (shipped in the package)."""
    return shipped_schema("report.schema.json")


def validate_document(document: Any) -> list[str]:
    """Schema errors of a report document, with JSON paths; [] when valid."""
    return schema_errors(report_schema(), document)
