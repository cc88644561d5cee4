"""Two runs side by side: each latency percentile judged (`stats.judge_change`), and what newly fails or passes.

A check, scenario, SLO or load error class that fails now and did not before is a regression, as is a latency
percentile that rose beyond its threshold and beyond noise. One that passes now after failing is reported, and
so is one no longer judged: "not judged" is never a pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from harness import __version__
from harness.compare.model import COMPARED_METRICS, ItemKind, RunKind, RunView
from harness.compare.stats import DEFAULT_THRESHOLD, RESAMPLES, MetricChange, Threshold, Verdict, judge_change
from harness.metrics import PERCENTILES
from mock_vapi.errors import ConfigError, did_you_mean

__all__ = [
    "COMPARISON_KIND",
    "DEFAULT_CONFIDENCE",
    "METHOD",
    "STATS",
    "Comparison",
    "ItemChange",
    "Move",
    "Thresholds",
    "compare_runs",
    "confidence_level",
    "parse_max_increase",
    "require_kind",
]

COMPARISON_KIND = "vapi-harness comparison"
DEFAULT_CONFIDENCE = 0.95
STATS = tuple(f"p{round(q * 100)}" for q in PERCENTILES)
METHOD = (
    f"percentile bootstrap of the change ({RESAMPLES} resamples, seeded): a regression rises beyond its threshold "
    "and its confidence interval lies above 0"
)
_NAME = re.compile(r"^(?P<metric>[A-Za-z0-9_]+)(?:\.(?P<stat>[A-Za-z0-9]+))?$")

Thresholds = Mapping[tuple[str, str], Threshold]  # (metric, stat) -> the rise it may take


def parse_max_increase(text: str) -> list[tuple[tuple[str, str], Threshold]]:
    """`METRIC[.STAT]=VALUE` (`ttft_ms.p95=20%`, `first_sentence_ms=100ms`: every percentile of it);
    `ValueError` naming what is wrong."""
    name, sep, value = text.partition("=")
    match = _NAME.match(name.strip())
    if not sep or match is None:
        raise ValueError(f"{text!r} is not METRIC[.STAT]=VALUE (e.g. ttft_ms.p95=20%)")
    metric, stat = match["metric"], match["stat"]
    if metric not in COMPARED_METRICS:
        raise ValueError(
            f"{text!r}: unknown metric {metric!r}.{did_you_mean(metric, COMPARED_METRICS)} The "
            f"metrics are {', '.join(COMPARED_METRICS)}"
        )
    if stat is not None and stat.lower() not in STATS:
        raise ValueError(f"{text!r}: {stat!r} is not one of {', '.join(STATS)}.{did_you_mean(stat, STATS)}")
    threshold = Threshold.parse(value)
    stats = [stat.lower()] if stat is not None else list(STATS)
    return [((metric, s), threshold) for s in stats]


def confidence_level(text: str) -> float:
    """A confidence level strictly between 0.5 and 1 (0.95)."""
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number (e.g. 0.95)") from None
    if not 0.5 <= value < 1:
        raise ValueError(f"{text!r} must be at least 0.5 and below 1 (e.g. 0.95)")
    return value


class Move(StrEnum):
    """How a check, scenario or SLO changed between the runs."""

    NEWLY_FAILING = "newly failing"
    NEWLY_PASSING = "newly passing"
    NO_LONGER_JUDGED = "no longer judged"


@dataclass(frozen=True)
class ItemChange:
    """A check, scenario, SLO or error class whose verdict changed."""

    kind: ItemKind
    name: str
    baseline: str | None  # passed, failed, not_judged, or None: absent from that run
    new: str | None
    move: Move


def _move(baseline: str | None, new: str | None) -> Move | None:
    if new == "failed" and baseline != "failed":
        return Move.NEWLY_FAILING
    if baseline == "failed" and new == "passed":
        return Move.NEWLY_PASSING
    if baseline in ("passed", "failed") and new in ("not_judged", None):
        return Move.NO_LONGER_JUDGED
    return None


def _item_changes(baseline: RunView, new: RunView) -> list[ItemChange]:
    keys = list(dict.fromkeys([*baseline.outcomes, *new.outcomes]))
    changes = []
    for key in keys:
        before, after = baseline.status(key), new.status(key)
        move = _move(before, after)
        if move is not None:
            changes.append(ItemChange(key[0], key[1], before, after, move))
    order = list(Move)
    return sorted(changes, key=lambda c: order.index(c.move))


def require_kind(baseline: RunView, kind: RunKind, what: str) -> None:
    """Runs of different kinds do not compare: `ConfigError` naming both."""
    if baseline.kind is not kind:
        raise ConfigError(
            f"{baseline.source} is {_a(baseline.kind.value)} run and {what} {_a(kind.value)} run: "
            "compare runs of one kind"
        )


def _a(word: str) -> str:
    """`word` with its indefinite article: a check, an explore."""
    return f"{'an' if word[:1] in 'aeiou' else 'a'} {word}"


@dataclass(frozen=True)
class Comparison:
    """The whole comparison of two runs."""

    baseline: RunView
    new: RunView
    confidence: float
    metrics: list[MetricChange]
    items: list[ItemChange]
    notes: list[str]

    @property
    def regressions(self) -> list[str]:
        """One short name per regression: `ttft_ms.p50`, `check stream_ends_with_done`."""
        found = [m.name for m in self.metrics if m.verdict is Verdict.REGRESSION]
        found += [f"{i.kind.value} {i.name}" for i in self.items if i.move is Move.NEWLY_FAILING]
        return found

    @property
    def regressed(self) -> bool:
        """True when anything regressed."""
        return bool(self.regressions)

    def document(self) -> dict[str, Any]:
        """The comparison as JSON (`compare --json`, and the `comparison` block of a run's report)."""
        return {
            "kind": COMPARISON_KIND,
            "version": __version__,
            "verdict": "regression" if self.regressed else "no regression",
            "regressions": self.regressions,
            "confidence": self.confidence,
            "method": METHOD,
            "baseline": self.baseline.document(),
            "new": self.new.document(),
            "notes": list(self.notes),
            "metrics": [
                {
                    "metric": m.metric,
                    "stat": m.stat,
                    "threshold": m.threshold.text,
                    "n_baseline": m.n_baseline,
                    "n_new": m.n_new,
                    "n_needed": m.needed,
                    "baseline": _round(m.baseline),
                    "new": _round(m.new),
                    "change": _round(m.change),
                    "change_pct": _round(m.change_pct),
                    "interval": None if m.interval is None else [_round(v) for v in m.interval],
                    "verdict": m.verdict.value,
                }
                for m in self.metrics
            ],
            "items": [
                {"kind": i.kind.value, "name": i.name, "baseline": i.baseline, "new": i.new, "change": i.move.value}
                for i in self.items
            ],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _notes(baseline: RunView, new: RunView) -> list[str]:
    notes = []
    if baseline.setup != new.setup:
        notes.append(f"the runs were set up differently (baseline: {baseline.setup}; new: {new.setup})")
    for view, label in ((baseline, "baseline"), (new, "new run")):
        if view.interrupted:
            notes.append(f"the {label} was cut short: its samples cover part of the run")
    return notes


def compare_runs(
    baseline: RunView,
    new: RunView,
    thresholds: Thresholds | None = None,
    confidence: float = DEFAULT_CONFIDENCE,
    stats: Iterable[str] = STATS,
) -> Comparison:
    """Judge every percentile of every latency either run measured, and every verdict that changed."""
    require_kind(baseline, new.kind, new.source)
    chosen = dict(thresholds or {})
    rows: list[MetricChange] = []
    metrics = [m for m in COMPARED_METRICS if m in baseline.samples or m in new.samples]
    for metric in metrics:
        for stat in _stats_of(metric, stats, chosen):
            threshold = chosen.get((metric, stat), DEFAULT_THRESHOLD)
            before = baseline.samples.get(metric, [])
            after = new.samples.get(metric, [])
            rows.append(judge_change(metric, stat, before, after, threshold, confidence))
    return Comparison(baseline, new, confidence, rows, _item_changes(baseline, new), _notes(baseline, new))


def _stats_of(metric: str, stats: Iterable[str], chosen: Thresholds) -> Sequence[str]:
    wanted = set(stats) | {stat for (m, stat) in chosen if m == metric}
    return [s for s in STATS if s in wanted]
