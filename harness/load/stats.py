"""Voice-latency samples of a load run: exact, mergeable across Locust workers, with errors named by class.

Raw samples (8 bytes each in an `array`) rather than a histogram: percentiles are exact, and a 1-hour run at
200 calls per second keeps well under 100 MB. Each turn's wall-clock time is kept too (the time series of the
reports), with one example of each error class. Workers send what they measured since their last report; the
master merges, so the aggregate equals the union of what the workers measured.
"""

from __future__ import annotations

import math
import time
from array import array
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.metrics import Distribution, exchange_metrics, percentile
from mock_vapi.exchange import Exchange, Outcome

__all__ = [
    "LOAD_METRICS",
    "LOAD_SUMMARY_KIND",
    "MAX_TIMELINE_ROWS",
    "LoadStats",
    "error_class",
    "error_example",
    "timeline",
]

LOAD_SUMMARY_KIND = "vapi-harness load summary"  # `load_vapi.json`'s "kind": how `vapi-harness report` knows it
MAX_TIMELINE_ROWS = 120  # a run's time series is cut into at most this many intervals (of whole seconds)

LOAD_METRICS = ("ttft_ms", "first_sentence_ms", "total_ms", "max_gap_ms")
_BY_OUTCOME = {
    Outcome.CONNECT_ERROR: "endpoint_unreachable",
    Outcome.HEADERS_TIMEOUT: "headers_timeout",
    Outcome.FIRST_DELTA_TIMEOUT: "first_delta_timeout",
    Outcome.IDLE_TIMEOUT: "stalled",
    Outcome.DEADLINE: "deadline",
    Outcome.BROKEN: "body_incomplete",
    Outcome.TOO_LARGE: "body_too_large",
    Outcome.CLOSE_TIMEOUT: "stream_never_closed",
    Outcome.REDIRECT_LOOP: "redirect_loop",
    Outcome.BAD_RESPONSE: "not_http",
}


def error_class(exchange: Exchange) -> str | None:
    """Why a turn failed, in the words `check` uses for the same failure; None when Vapi could speak it."""
    if exchange.outcome in _BY_OUTCOME:
        return _BY_OUTCOME[exchange.outcome]
    if exchange.status is not None and not 200 <= exchange.status < 300:
        return f"http_{exchange.status}"
    if exchange.outcome is Outcome.ABORTED:
        return None  # a barge-in we made on purpose
    if exchange.streamed:
        for event in exchange.events:
            if not event.sse.terminated or event.sse.after_done or event.sse.is_done:
                continue
            if event.json_error is not None:
                return "sse_data_is_json"
            if event.has_error:
                return "chunk_has_no_error"
            if not event.has_choices:
                return "chunks_have_choices"
        if not exchange.content_events:
            return "first_delta_within_timeout"
    return None


def error_example(exchange: Exchange, failure: str) -> dict[str, Any]:
    """What a failed turn received, for the reports: status, outcome, the reader's error and the body's start."""
    return {
        "class": failure,
        "status": exchange.status,
        "outcome": str(exchange.outcome),
        "error": exchange.error,
        "body": exchange.body_excerpt(300),
    }


def _times() -> dict[str, array[float]]:
    # Wall-clock seconds (time.time(): workers' and the master's clocks agree well enough for 1 s intervals).
    return {"turn": array("d"), "error": array("d"), "ttft": array("d")}


@dataclass
class LoadStats:
    """Samples per metric, turn and error counts; `drain` and `merge` move them from workers to the master.

    `times["turn"]` holds when each turn ended, `times["error"]` when each failed one did, and `times["ttft"]` when
    each `ttft_ms` sample was taken (index for index)."""

    samples: dict[str, array[float]] = field(default_factory=lambda: {m: array("d") for m in LOAD_METRICS})
    turns: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    breakpoint: dict[str, Any] | None = None  # the breakpoint profile's result: the highest level that held
    times: dict[str, array[float]] = field(default_factory=_times)
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)  # the first failed turn of each class
    resets: int = 0  # how often `reset` emptied it (a new test, or "Reset stats" in the web UI)

    def add(self, exchange: Exchange, now: float | None = None) -> str | None:
        """Record one turn (ended at wall-clock `now`); returns its error class (None when it succeeded)."""
        now = time.time() if now is None else now
        self.turns += 1
        self.times["turn"].append(now)
        failure = error_class(exchange)
        if failure is not None:
            self.errors[failure] += 1
            self.times["error"].append(now)
            if failure not in self.examples:
                self.examples[failure] = error_example(exchange, failure)
            return failure
        metrics = exchange_metrics(exchange)
        for name in LOAD_METRICS:
            value = metrics.get(name)
            if value is not None:
                self.samples[name].append(value)
                if name == "ttft_ms":
                    self.times["ttft"].append(now)
        return None

    def reset(self) -> None:
        """Forget everything measured (the breakpoint result too)."""
        self.samples = {m: array("d") for m in LOAD_METRICS}
        self.turns = 0
        self.errors = Counter()
        self.breakpoint = None
        self.times = _times()
        self.examples = {}
        self.resets += 1

    def drain(self) -> dict[str, Any]:
        """What was measured since the last drain, as plain data for Locust's worker report; then reset."""
        data = {
            "samples": {name: values.tolist() for name, values in self.samples.items()},
            "turns": self.turns,
            "errors": dict(self.errors),
            "times": {name: values.tolist() for name, values in self.times.items()},
            "examples": self.examples,
        }
        self.samples = {m: array("d") for m in LOAD_METRICS}
        self.turns = 0
        self.errors = Counter()
        self.times = _times()
        self.examples = {}
        return data

    def merge(self, data: Mapping[str, Any]) -> None:
        """Add a worker's drained data."""
        for name, values in (data.get("samples") or {}).items():
            self.samples.setdefault(name, array("d")).extend(float(v) for v in values)
        self.turns += int(data.get("turns", 0))
        self.errors.update({str(k): int(v) for k, v in (data.get("errors") or {}).items()})
        for name, values in (data.get("times") or {}).items():
            self.times.setdefault(name, array("d")).extend(float(v) for v in values)
        for failure, example in (data.get("examples") or {}).items():
            self.examples.setdefault(str(failure), example)

    @property
    def error_rate(self) -> float:
        """Failed turns over all turns (0 when there were none)."""
        return sum(self.errors.values()) / self.turns if self.turns else 0.0

    def distributions(self) -> dict[str, Distribution]:
        """Exact summaries of each metric that has samples."""
        out = {}
        for name, values in self.samples.items():
            summary = Distribution.of(values)
            if summary is not None:
                out[name] = summary
        return out

    def summary(self) -> dict[str, Any]:
        """The JSON-able result: turns, errors by class, error rate, and each metric's distribution."""
        summary: dict[str, Any] = {
            "turns": self.turns,
            "errors": dict(self.errors),
            "error_rate": self.error_rate,
            "metrics": {
                name: {"n": d.n, "min": d.min, "mean": d.mean, "max": d.max, **d.percentiles}
                for name, d in self.distributions().items()
            },
            "error_examples": [self.examples[k] for k in sorted(self.examples)],
        }
        if self.breakpoint is not None:
            summary["breakpoint"] = self.breakpoint
        return summary


def _interval_s(duration_s: float) -> float:
    return float(max(1, math.ceil(duration_s / MAX_TIMELINE_ROWS)))


def timeline(stats: LoadStats, start: float, duration_s: float, users: Sequence[tuple[float, int]]) -> dict[str, Any]:
    """The run over time, from wall-clock `start`: per interval, the most callers active (`users`: (time, count)
    samples; an interval without one carries the last), turns ended, failed turns, and the exact p50/p95 of the
    ttft samples taken (None without one)."""
    interval = _interval_s(duration_s)
    count = max(1, math.ceil(duration_s / interval - 0.25))  # the last interval takes a few ms past the end

    def slot(t: float) -> int:
        return min(count - 1, max(0, int((t - start) // interval)))

    turns, errors = [0] * count, [0] * count
    for t in stats.times["turn"]:
        turns[slot(t)] += 1
    for t in stats.times["error"]:
        errors[slot(t)] += 1
    ttft: list[list[float]] = [[] for _ in range(count)]
    for t, value in zip(stats.times["ttft"], stats.samples["ttft_ms"], strict=False):
        ttft[slot(t)].append(value)
    peak: list[int | None] = [None] * count
    last: list[int | None] = [None] * count
    for t, n in sorted(users):
        i = slot(t)
        peak[i], last[i] = max(n, peak[i] or 0), n
    carried = None
    for i in range(count):  # an interval without a sample had the callers the last sample saw
        if peak[i] is None:
            peak[i] = carried
        carried = last[i] if last[i] is not None else carried
    rows = []
    for i in range(count):
        values = sorted(ttft[i])
        rows.append(
            {
                "t_s": i * interval,
                "users": peak[i],
                "turns": turns[i],
                "errors": errors[i],
                "ttft_n": len(values),
                "ttft_p50_ms": percentile(values, 0.5) if values else None,
                "ttft_p95_ms": percentile(values, 0.95) if values else None,
            }
        )
    return {"interval_s": interval, "rows": rows}
