"""Did a percentile of a run move beyond noise? Thresholds and a bootstrap confidence interval of the change.

Pure and deterministic: no I/O, and every random draw comes from a generator seeded with the row's name, so the
same two sets of samples always give the same verdict. Percentiles are `harness.metrics.percentile`, the one
definition every report uses.

The bootstrap resamples each run with replacement and takes the percentile of each resample. Drawing whole
resamples costs n values each (a load run keeps 100,000 and more), so the percentile of a resample is drawn
directly: the k-th smallest of n values drawn with replacement from the sorted samples is the sample at index
floor(n * U), where U is the k-th smallest of n uniform numbers, which follows Beta(k, n - k + 1); the next one
up is U + (1 - U) * Beta(1, n - k). The result is the same distribution as resampling, at two draws a replicate.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from harness.metrics import percentile

__all__ = [
    "DEFAULT_THRESHOLD",
    "RESAMPLES",
    "MetricChange",
    "Threshold",
    "Verdict",
    "difference_interval",
    "judge_change",
    "min_samples",
    "quantile_of",
    "resampled_percentile",
]

RESAMPLES = 4000
_MIN_SAMPLES = 5


@dataclass(frozen=True)
class Threshold:
    """How much a percentile may rise before it counts: a share of the baseline's value, milliseconds, or both
    (then the change must exceed both)."""

    percent: float | None = None
    ms: float | None = None

    def exceeded(self, baseline: float, change: float) -> bool:
        """True when `change` (new - baseline, ms) is a rise beyond every bound set."""
        if change <= 0:
            return False
        if self.percent is not None and change <= abs(baseline) * self.percent / 100:
            return False
        return self.ms is None or change > self.ms

    @property
    def text(self) -> str:
        """As it is written: `20%`, `100ms` or `20%+50ms`."""
        parts = []
        if self.percent is not None:
            parts.append(f"{self.percent:g}%")
        if self.ms is not None:
            parts.append(f"{self.ms:g}ms")
        return "+".join(parts)

    @classmethod
    def parse(cls, text: str) -> Threshold:
        """`20%`, `100ms` or `20%+50ms`; `ValueError` saying what is wrong."""
        percent = ms = None
        parts = [part.strip().lower() for part in text.split("+")]
        for part in parts:
            unit = "%" if part.endswith("%") else "ms" if part.endswith("ms") else None
            if unit is None:
                raise ValueError(f"{text!r} is not a threshold: write 20% (of the baseline), 100ms, or 20%+50ms")
            number = part.removesuffix(unit).strip()
            try:
                value = float(number)
            except ValueError:
                raise ValueError(f"{text!r}: {number!r} is not a number") from None
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{text!r}: a threshold is a finite number >= 0")
            if unit == "%":
                if percent is not None:
                    raise ValueError(f"{text!r} gives a percentage twice")
                percent = value
            else:
                if ms is not None:
                    raise ValueError(f"{text!r} gives milliseconds twice")
                ms = value
        return cls(percent, ms)


# Half a voice budget's worth of noise is not a regression: a percentile must rise by a fifth and by 50 ms.
DEFAULT_THRESHOLD = Threshold(percent=20.0, ms=50.0)


class Verdict(StrEnum):
    """What a change of one percentile amounts to."""

    REGRESSION = "regression"  # above its threshold, and the interval of the change is above 0
    NOT_SIGNIFICANT = "not significant"  # above its threshold, but noise could explain it
    IMPROVEMENT = "improvement"  # down by more than the threshold, and the interval is below 0
    OK = "ok"  # within the threshold
    TOO_FEW = "too few samples"  # one run has too few samples to place this percentile
    MISSING = "no samples"  # the metric was measured in one run only


def quantile_of(stat: str) -> float:
    """`p95` -> 0.95."""
    return float(stat.removeprefix("p")) / 100


def min_samples(q: float) -> int:
    """The fewest samples that place the q-th percentile: below 1 / (1 - q) of them no sample lies above it (a
    p95 of 8 samples is their largest), and never fewer than 5."""
    return max(_MIN_SAMPLES, math.ceil(round(1 / (1 - q), 9)))


def resampled_percentile(sorted_values: Sequence[float], q: float, rng: random.Random) -> float:
    """The q-th percentile of one bootstrap resample of `sorted_values`, drawn through its order statistics."""
    n = len(sorted_values)
    position = (n - 1) * q
    low = math.floor(position)
    k = low + 1  # the order statistic (1-based) at the low rank
    u = rng.betavariate(k, n - k + 1)
    low_value = sorted_values[min(n - 1, int(n * u))]
    fraction = position - low
    if fraction == 0 or k >= n:
        return low_value
    v = u + (1 - u) * rng.betavariate(1, n - k)
    high_value = sorted_values[min(n - 1, int(n * v))]
    return low_value + (high_value - low_value) * fraction


def difference_interval(
    baseline: Sequence[float],
    new: Sequence[float],
    q: float,
    confidence: float,
    seed: str,
    resamples: int = RESAMPLES,
) -> tuple[float, float]:
    """The two-sided `confidence` interval of (new - baseline) at the q-th percentile (percentile bootstrap);
    both sequences sorted."""
    rng = random.Random(seed)
    diffs = sorted(resampled_percentile(new, q, rng) - resampled_percentile(baseline, q, rng) for _ in range(resamples))
    alpha = 1 - confidence
    return percentile(diffs, alpha / 2), percentile(diffs, 1 - alpha / 2)


@dataclass(frozen=True)
class MetricChange:
    """One percentile of one metric in both runs, and the verdict."""

    metric: str
    stat: str
    threshold: Threshold
    n_baseline: int
    n_new: int
    baseline: float | None
    new: float | None
    interval: tuple[float, float] | None
    verdict: Verdict
    confidence: float

    @property
    def name(self) -> str:
        """`ttft_ms.p95`."""
        return f"{self.metric}.{self.stat}"

    @property
    def change(self) -> float | None:
        """new - baseline, ms."""
        return None if self.baseline is None or self.new is None else self.new - self.baseline

    @property
    def change_pct(self) -> float | None:
        """The change as a share of the baseline, in percent (None from a baseline of 0)."""
        change = self.change
        if change is None or not self.baseline:
            return None
        return change / abs(self.baseline) * 100

    @property
    def needed(self) -> int:
        """The samples each run needs for this percentile."""
        return min_samples(quantile_of(self.stat))


def judge_change(
    metric: str,
    stat: str,
    baseline: Sequence[float],
    new: Sequence[float],
    threshold: Threshold,
    confidence: float,
) -> MetricChange:
    """Compare the `stat` percentile of two runs' samples: a regression only when the rise exceeds `threshold`
    and the `confidence` interval of the change lies above 0."""
    base, after = sorted(baseline), sorted(new)
    q = quantile_of(stat)

    def made(verdict: Verdict, interval: tuple[float, float] | None = None) -> MetricChange:
        return MetricChange(
            metric,
            stat,
            threshold,
            len(base),
            len(after),
            percentile(base, q) if base else None,
            percentile(after, q) if after else None,
            interval,
            verdict,
            confidence,
        )

    if not base or not after:
        return made(Verdict.MISSING)
    if min(len(base), len(after)) < min_samples(q):
        return made(Verdict.TOO_FEW)
    before_value, after_value = percentile(base, q), percentile(after, q)
    change = after_value - before_value
    interval = difference_interval(base, after, q, confidence, seed=f"{metric}.{stat}")
    if threshold.exceeded(before_value, change):
        return made(Verdict.REGRESSION if interval[0] > 0 else Verdict.NOT_SIGNIFICANT, interval)
    if threshold.exceeded(before_value, -change) and interval[1] < 0:
        return made(Verdict.IMPROVEMENT, interval)
    return made(Verdict.OK, interval)
