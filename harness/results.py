"""Run events and results: what the runner yields and what report writers consume."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from harness.checks import REGISTRY, Expect, Finding, Severity, Status
from harness.metrics import METRICS, Distribution
from harness.suite import Probe
from mock_vapi.exchange import Exchange, Outcome

if TYPE_CHECKING:  # the scenario runner builds on these results
    from harness.scenarios.runner import ScenarioResult
    from mock_vapi.scenarios.model import Scenario

__all__ = [
    "CheckSummary",
    "ExchangeFinished",
    "ExchangeResult",
    "ProbeStarted",
    "RunEvent",
    "RunFinished",
    "RunInfo",
    "RunResult",
    "RunStarted",
    "ScenarioFinished",
    "ScenarioStarted",
]


@dataclass(frozen=True)
class RunInfo:
    """What was run, against what."""

    run_id: str
    url: str
    model: str
    metadata_send_mode: str
    builtin: bool
    authenticated: bool
    timeout_s: float
    repeat: int
    strict: bool
    probes: tuple[str, ...]
    started_at: datetime
    suites: tuple[str, ...] = ()
    scenarios: tuple[str, ...] = ()
    thresholds: tuple[tuple[str, float], ...] = ()  # the voice budgets the checks used, for the reports


@dataclass(frozen=True)
class ExchangeResult:
    """One probe's exchange, judged and measured; `sent` is False for a probe reported without being sent (the
    endpoint hung before its turn: its findings say so, none passed)."""

    probe: Probe
    repeat: int
    exchange: Exchange
    findings: list[Finding]
    metrics: dict[str, float | None]
    sent: bool = True

    @property
    def failed(self) -> list[Finding]:
        """Findings that failed, errors first."""
        failed = [f for f in self.findings if f.status is Status.FAILED]
        return sorted(failed, key=lambda f: f.severity is not Severity.ERROR)


@dataclass
class CheckSummary:
    """One check across every exchange it judged."""

    id: str
    severity: Severity
    rationale: str
    runs: int = 0  # exchanges it judged
    failures: list[tuple[ExchangeResult, Finding]] = field(default_factory=list)
    unjudged: dict[str, int] = field(default_factory=dict)  # why it had nothing to judge -> how many exchanges

    @property
    def status(self) -> Status:
        """FAILED if any exchange failed it, PASSED if it judged one, else NOT_JUDGED (never a pass)."""
        if self.failures:
            return Status.FAILED
        return Status.PASSED if self.runs else Status.NOT_JUDGED

    @property
    def not_judged_reason(self) -> str:
        """Why it judged nothing (the most common reasons), or "" when it judged something."""
        if self.runs:
            return ""
        if not self.unjudged:
            return "no probe of this run concerns it"
        reasons = sorted(self.unjudged.items(), key=lambda item: -item[1])
        return "; ".join(reason for reason, _ in reasons[:2]) + ("; ..." if len(reasons) > 2 else "")

    @property
    def worst(self) -> Severity | None:
        """The gravest severity among the failures (a probe Vapi does not send only warns), or None."""
        if not self.failures:
            return None
        return min((f.severity for _, f in self.failures), key=lambda s: s is not Severity.ERROR)

    @property
    def failures_first(self) -> list[tuple[ExchangeResult, Finding]]:
        """Failures, errors before warnings."""
        return sorted(self.failures, key=lambda pair: pair[1].severity is not Severity.ERROR)


@dataclass
class RunResult:
    """Everything a run measured; complete or not."""

    info: RunInfo
    results: list[ExchangeResult] = field(default_factory=list)
    finished_at: datetime | None = None
    interrupted: str | None = None
    stopped_early: str | None = None
    scenarios: list[ScenarioResult] = field(default_factory=list)

    def checks(self) -> list[CheckSummary]:
        """Per-check summaries in registry order, errors first."""
        summaries = {cid: CheckSummary(cid, c.severity, c.rationale) for cid, c in REGISTRY.items()}
        for result in self.results:
            for finding in result.findings:
                summary = summaries[finding.check]
                if finding.status is Status.NOT_JUDGED:
                    summary.unjudged[finding.title] = summary.unjudged.get(finding.title, 0) + 1
                    continue
                summary.runs += 1
                if finding.status is Status.FAILED:
                    summary.failures.append((result, finding))
        return sorted(summaries.values(), key=lambda s: s.severity is not Severity.ERROR)

    def latency_samples(self) -> dict[str, list[float]]:
        """Each metric's samples over the streamed turns that completed (what a voice call sees), sorted.

        The one source of every latency table and chart of a run; metrics with no sample are left out.
        """
        turns = [
            r
            for r in self.results
            if r.exchange.outcome is Outcome.COMPLETE and r.exchange.streamed and r.probe.expect is Expect.TURN
        ]
        samples = {name: sorted(v for r in turns if (v := r.metrics.get(name)) is not None) for name in METRICS}
        return {name: values for name, values in samples.items() if values}

    def latency(self) -> dict[str, Distribution]:
        """Distributions of each metric over `latency_samples`."""
        out = {}
        for name, values in self.latency_samples().items():
            dist = Distribution.of(values)
            if dist is not None:
                out[name] = dist
        return out

    def counts(self) -> dict[str, int]:
        """Failed checks by severity, and exchanges (the requests sent)."""
        checks = self.checks()
        return {
            "exchanges": sum(r.sent for r in self.results),
            "checks_passed": sum(s.status is Status.PASSED for s in checks),
            "checks_not_judged": sum(s.status is Status.NOT_JUDGED for s in checks),
            "errors": sum(s.worst is Severity.ERROR for s in checks),
            "warnings": sum(s.worst is Severity.WARNING for s in checks),
            "scenarios": len(self.scenarios),
            "scenarios_failed": sum(not s.passed for s in self.scenarios),
        }

    @property
    def passed(self) -> bool:
        """The verdict: no failed error check (nor warning, when strict), and the run was complete."""
        counts = self.counts()
        if counts["errors"] or (self.info.strict and counts["warnings"]):
            return False
        if counts["scenarios_failed"]:
            return False
        return not self.interrupted and not self.stopped_early and bool(self.results)


@dataclass(frozen=True)
class RunStarted:
    """The run began."""

    info: RunInfo


@dataclass(frozen=True)
class ProbeStarted:
    """A probe was sent (the runner yields it in the probes' order, when the probes before it have finished)."""

    probe: Probe
    repeat: int
    index: int
    total: int
    exchange: Exchange | None = None  # filled in while it is read (a live progress line reads it)


@dataclass(frozen=True)
class ExchangeFinished:
    """A probe's exchange was judged."""

    result: ExchangeResult


@dataclass(frozen=True)
class RunFinished:
    """The run ended, completely or not."""

    run: RunResult


@dataclass(frozen=True)
class ScenarioStarted:
    """A scenario is about to be played (all its copies at once)."""

    scenario: Scenario
    index: int
    total: int


@dataclass(frozen=True)
class ScenarioFinished:
    """One copy of a scenario was played and judged."""

    result: ScenarioResult


RunEvent = RunStarted | ProbeStarted | ExchangeFinished | ScenarioStarted | ScenarioFinished | RunFinished
