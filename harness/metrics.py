"""Exact percentiles and distributions of voice-latency samples (definitions: docs/metrics.md).

The timings of one exchange are measured where it is recorded (`mock_vapi.timing`); they are re-exported here
for the judging side.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mock_vapi.timing import (
    FIRST_SENTENCE_MIN_CHARS,
    METRICS,
    exchange_metrics,
    first_sentence_time,
    longest_content_gap,
)

__all__ = [
    "FIRST_SENTENCE_MIN_CHARS",
    "METRICS",
    "PERCENTILES",
    "Distribution",
    "exchange_metrics",
    "first_sentence_time",
    "longest_content_gap",
    "percentile",
]

PERCENTILES = (0.5, 0.9, 0.95, 0.99)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Exact percentile by linear interpolation between closest ranks (numpy's default method)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    position = (len(sorted_values) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


@dataclass(frozen=True)
class Distribution:
    """Summary of raw samples: count, min, mean, max and `PERCENTILES`."""

    n: int
    min: float
    mean: float
    max: float
    percentiles: dict[str, float]

    @classmethod
    def of(cls, samples: Iterable[float | None]) -> Distribution | None:
        """Summarise the non-None samples; None when there are none."""
        values = sorted(v for v in samples if v is not None)
        if not values:
            return None
        pcts = {f"p{round(q * 100)}": percentile(values, q) for q in PERCENTILES}
        return cls(len(values), values[0], sum(values) / len(values), values[-1], pcts)
