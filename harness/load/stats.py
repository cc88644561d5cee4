"""Voice-latency samples of a load run: exact, mergeable across Locust workers, with errors named by class.

Raw samples (8 bytes each in an `array`) rather than a histogram: percentiles are exact, and a 1-hour run at
200 calls per second keeps well under 100 MB. Workers send what they measured since their last report; the
master merges, so the aggregate equals the union of what the workers measured.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.exchange import Exchange, Outcome
from harness.metrics import Distribution, exchange_metrics

__all__ = ["LOAD_METRICS", "LoadStats", "error_class"]

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


@dataclass
class LoadStats:
    """Samples per metric, turn and error counts; `drain` and `merge` move them from workers to the master."""

    samples: dict[str, array[float]] = field(default_factory=lambda: {m: array("d") for m in LOAD_METRICS})
    turns: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    breakpoint: dict[str, Any] | None = None  # the breakpoint profile's result: the highest level that held

    def add(self, exchange: Exchange) -> str | None:
        """Record one turn; returns its error class (None when it succeeded)."""
        self.turns += 1
        failure = error_class(exchange)
        if failure is not None:
            self.errors[failure] += 1
            return failure
        metrics = exchange_metrics(exchange)
        for name in LOAD_METRICS:
            value = metrics.get(name)
            if value is not None:
                self.samples[name].append(value)
        return None

    def drain(self) -> dict[str, Any]:
        """What was measured since the last drain, as plain data for Locust's worker report; then reset."""
        data = {
            "samples": {name: values.tolist() for name, values in self.samples.items()},
            "turns": self.turns,
            "errors": dict(self.errors),
        }
        self.samples = {m: array("d") for m in LOAD_METRICS}
        self.turns = 0
        self.errors = Counter()
        return data

    def merge(self, data: Mapping[str, Any]) -> None:
        """Add a worker's drained data."""
        for name, values in (data.get("samples") or {}).items():
            self.samples.setdefault(name, array("d")).extend(float(v) for v in values)
        self.turns += int(data.get("turns", 0))
        self.errors.update({str(k): int(v) for k, v in (data.get("errors") or {}).items()})

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
        }
        if self.breakpoint is not None:
            summary["breakpoint"] = self.breakpoint
        return summary
