"""Service-level objectives for a load run: `ttft_p95_ms=800`, `first_sentence_p99_ms=1500`, `error_rate=0.01`.

A metric SLO is `<metric>_<pNN|mean|max>_ms=<limit>` over the load metrics (ttft, first_sentence, total,
max_gap); `error_rate=<fraction>` bounds failed turns. Each is met when the measured value is at or below the
limit; a metric with no samples breaks its SLO (nothing was measured, so nothing was met). A run cut short by a
signal is not judged at all: its numbers are reported, and every SLO is "not judged (interrupted)".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.load.stats import LOAD_METRICS, LoadStats
from mock_vapi.errors import did_you_mean

__all__ = ["DEFAULT_SLOS", "NOT_JUDGED", "Slo", "SloResult", "evaluate", "parse_slo", "parse_slo_lines", "slo_rows"]

_METRIC_SLO = re.compile(r"^(?P<metric>[a-z_]+?)_(?P<stat>p50|p90|p95|p99|mean|max)_ms$")
DEFAULT_SLOS = ("ttft_p95_ms=800", "first_sentence_p95_ms=1500", "error_rate=0.01")
NOT_JUDGED = "not judged (interrupted)"


@dataclass(frozen=True)
class Slo:
    """One objective: a measured value must stay at or below `limit`."""

    name: str
    limit: float
    metric: str | None  # None for error_rate
    stat: str | None


@dataclass(frozen=True)
class SloResult:
    """An objective and what was measured against it."""

    slo: Slo
    value: float | None

    @property
    def met(self) -> bool:
        """True when measured and at or below the limit."""
        return self.value is not None and self.value <= self.slo.limit

    def verdict(self, interrupted: bool = False) -> str:
        """`met`, `BROKEN by ...`, `no samples`, or NOT_JUDGED for a run cut short."""
        if interrupted:
            return NOT_JUDGED
        if self.value is None:
            return "no samples"
        unit = "" if self.slo.metric is None else " ms"
        return "met" if self.met else f"BROKEN by {self.value - self.slo.limit:.4g}{unit}"

    def line(self, interrupted: bool = False) -> str:
        """One line for the terminal: what, measured, limit, and by how much it broke."""
        unit = "" if self.slo.metric is None else " ms"
        if self.value is None:
            tail = f": {NOT_JUDGED}" if interrupted else ""
            return f"{self.slo.name}: no samples (limit {self.slo.limit:g}{unit}){tail}"
        measured = f"{self.value:.4g}{unit} (limit {self.slo.limit:g}{unit})"
        return f"{self.slo.name}: {measured}: {self.verdict(interrupted)}"


def parse_slo(text: str) -> Slo:
    """`NAME=VALUE`; `ValueError` naming what is wrong."""
    name, sep, raw = text.partition("=")
    name = name.strip()
    if not sep:
        raise ValueError(f"{text!r} is not NAME=VALUE (e.g. ttft_p95_ms=800)")
    try:
        limit = float(raw)
    except ValueError:
        raise ValueError(f"{text!r}: {raw!r} is not a number") from None
    if limit < 0:
        raise ValueError(f"{text!r}: the limit must not be negative")
    if name == "error_rate":
        if limit > 1:
            raise ValueError(f"{text!r}: error_rate is a fraction between 0 and 1")
        return Slo(name, limit, None, None)
    match = _METRIC_SLO.match(name)
    metrics = [m.removesuffix("_ms") for m in LOAD_METRICS]
    if match is None or match["metric"] not in metrics:
        examples = [f"{m}_p95_ms" for m in metrics]
        raise ValueError(f"{text!r}: unknown SLO {name!r}.{did_you_mean(name, [*examples, 'error_rate'])} Use "
                         f"error_rate or <metric>_<p50|p90|p95|p99|mean|max>_ms, where <metric> is one of "
                         f"{', '.join(metrics)}")  # fmt: skip
    return Slo(name, limit, f"{match['metric']}_ms", match["stat"])


def parse_slo_lines(text: str | None) -> list[Slo]:
    """One SLO per line (as `vapi-harness load` hands them to Locust); the defaults when there is no text."""
    lines = (text if text is not None else "\n".join(DEFAULT_SLOS)).splitlines()
    return [parse_slo(line) for line in lines if line.strip()]


def evaluate(slos: Sequence[Slo], stats: LoadStats | Mapping[str, Any]) -> list[SloResult]:
    """Measure each objective on a run's (merged) stats, or on the summary they wrote (`LoadStats.summary()`)."""
    summary = stats.summary() if isinstance(stats, LoadStats) else stats
    results = []
    for slo in slos:
        if slo.metric is None:
            value: float | None = float(summary["error_rate"]) if summary["turns"] else None
        else:
            metric = summary["metrics"].get(slo.metric)
            value = None if metric is None else float(metric[str(slo.stat)])
        results.append(SloResult(slo, value))
    return results


def slo_rows(results: Sequence[SloResult], interrupted: bool) -> list[dict[str, Any]]:
    """The verdicts as the reports hold them; `met` is None when the run was cut short (not judged)."""
    return [
        {
            "name": r.slo.name,
            "limit": r.slo.limit,
            "value": r.value,
            "met": None if interrupted else r.met,
            "verdict": r.verdict(interrupted),
        }
        for r in results
    ]
