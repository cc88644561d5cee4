"""What an exploration found, and the events its writers consume: one `Failure` per distinct way of failing,
with the smallest request seen to fail that way."""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.checks import Finding, Severity
from harness.results import ExchangeResult

__all__ = [
    "ExampleJudged",
    "ExploreEvent",
    "ExploreFinished",
    "ExploreInfo",
    "ExploreResult",
    "ExploreStarted",
    "Failure",
    "FailureKey",
    "failure_key",
]

# What varies between two failures that are the same failure: ids, UUIDs, long numbers, quoted received text.
_VOLATILE = (
    (re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"), "<uuid>"),
    (re.compile(r"\b(?:chatcmpl|call|req|msg|run|toolu?)[-_][A-Za-z0-9_-]+"), "<id>"),
    (re.compile(r"\b[0-9a-fA-F]{12,}\b"), "<hex>"),
    (re.compile(r"'(?:[^'\\]|\\.)*'"), "'…'"),
    (re.compile(r'"(?:[^"\\]|\\.)*"'), '"…"'),
    (re.compile(r"\d+\.\d+|\d{4,}"), "<n>"),
)


@dataclass(frozen=True, order=True)
class FailureKey:
    """What makes two failures the same: the check, and its title with the volatile parts normalised."""

    check: str
    title: str

    def __str__(self) -> str:
        return f"{self.check}: {self.title}"


def failure_key(finding: Finding) -> FailureKey:
    """The key of a failed finding: `Recorded HTTP 500, replay got 502` and `... got 503` stay apart, ids and
    quoted text do not."""
    title = finding.title
    for pattern, replacement in _VOLATILE:
        title = pattern.sub(replacement, title)
    return FailureKey(finding.check, " ".join(title.split()))


@dataclass(frozen=True)
class ExploreInfo:
    """What was explored, and how."""

    run_id: str
    url: str
    builtin: bool
    authenticated: bool
    started_at: datetime
    seed: int
    max_examples: int
    max_run_s: float
    concurrency: int
    strict: bool
    database: str | None  # where Hypothesis keeps earlier failures, or None


@dataclass
class Failure:
    """One distinct failure: how often it was seen and the smallest request that failed that way.

    `shrink_steps` counts the successively smaller failing requests seen after the first (each one smaller than
    every earlier one of this failure); `summary` is the conversation's short facts.
    """

    key: FailureKey
    severity: Severity
    first_example: int
    result: ExchangeResult
    finding: Finding
    summary: dict[str, Any]
    size: tuple[int, int]  # (body bytes, messages): the smaller, the plainer
    examples: int = 1
    shrink_steps: int = 0
    reproducer: Path | None = None

    def offer(
        self, result: ExchangeResult, finding: Finding, summary: Callable[[], dict[str, Any]], size: tuple[int, int]
    ) -> bool:
        """Count another example that failed this way; keep it if it is smaller (`summary` is then asked for its
        facts). True when it was kept."""
        self.examples += 1
        if size >= self.size:
            return False
        self.result, self.finding, self.summary, self.size = result, finding, summary(), size
        self.shrink_steps += 1
        return True


@dataclass
class ExploreResult:
    """Everything an exploration saw; complete or not."""

    info: ExploreInfo
    examples: int = 0  # requests sent and judged (generated ones, and those the shrinker tried)
    rejected: int = 0  # generated bodies that broke one of Vapi's rules, not sent
    failures: dict[FailureKey, Failure] = field(default_factory=dict)
    finished_at: datetime | None = None
    interrupted: str | None = None
    stopped_early: str | None = None
    notes: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0
    own_ms: list[float] = field(default_factory=list)  # per example: generating, checking, bookkeeping
    # The same per example, by part: "generate" (Hypothesis drawing it), "build" (the request and Vapi's rules),
    # "judge" (checks, failures, events to writers).
    part_ms: dict[str, list[float]] = field(default_factory=lambda: {"generate": [], "build": [], "judge": []})

    @property
    def failures_first(self) -> list[Failure]:
        """Failures, errors before warnings, then in the order they were found."""
        return sorted(self.failures.values(), key=lambda f: (f.severity is not Severity.ERROR, f.first_example))

    @property
    def examples_per_s(self) -> float:
        """Examples judged per second of the run."""
        return self.examples / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def own_ms_median(self) -> float | None:
        """The median of our own work per example, in ms (None before the first example)."""
        return statistics.median(self.own_ms) if self.own_ms else None

    @property
    def passed(self) -> bool:
        """No failure, and the run was complete."""
        return not self.failures and not self.interrupted and not self.stopped_early and self.examples > 0


@dataclass(frozen=True)
class ExploreStarted:
    """The exploration began."""

    info: ExploreInfo


@dataclass(frozen=True)
class ExampleJudged:
    """An example was sent and judged; `new` names a failure seen for the first time."""

    index: int
    result: ExchangeResult
    failed: tuple[FailureKey, ...]
    new: tuple[FailureKey, ...]
    run: ExploreResult


@dataclass(frozen=True)
class ExploreFinished:
    """The exploration ended, completely or not."""

    run: ExploreResult


ExploreEvent = ExploreStarted | ExampleJudged | ExploreFinished
