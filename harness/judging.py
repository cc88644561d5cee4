"""Judging one recorded exchange: the checks that apply, its metrics, its result. The runner, the scenario
runner and the pytest plugin all judge through `judge_exchange`, so an exchange is judged the same way
wherever it was sent from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from harness.checks import REGISTRY, CheckContext, Finding, Severity, Status, Thresholds, run_checks
from harness.metrics import exchange_metrics
from harness.results import ExchangeResult
from harness.suite import Probe
from mock_vapi.exchange import Exchange, Outcome
from mock_vapi.reader import ReadLimits

__all__ = ["MAX_IN_FLIGHT", "OPTIONAL_NOTE", "RunSettings", "judge_exchange", "unjudged_result"]

OPTIONAL_NOTE = "warns only: Vapi would not send this to your assistant"
# Requests of different calls the runner keeps in flight at once (a call's own turns go one after another).
MAX_IN_FLIGHT = 8


@dataclass(frozen=True)
class RunSettings:
    """How to run: repeats, bounds, budgets, checks switched off, and how many requests may be in flight at once
    (1 sends one probe after another)."""

    repeat: int = 1
    limits: ReadLimits = field(default_factory=ReadLimits)
    thresholds: Thresholds = field(default_factory=Thresholds)
    disabled_checks: frozenset[str] = frozenset()
    max_in_flight: int = MAX_IN_FLIGHT


def _as_warning(finding: Finding) -> Finding:
    if finding.status is not Status.FAILED or finding.severity is Severity.WARNING:
        return finding
    return replace(finding, severity=Severity.WARNING, note=OPTIONAL_NOTE)


def judge_exchange(
    probe: Probe,
    exchange: Exchange,
    *,
    repeat: int = 1,
    thresholds: Thresholds | None = None,
    disabled: Iterable[str] = (),
) -> ExchangeResult:
    """Run the checks that apply to `exchange` (none when it was cancelled before its reply ended: nothing can
    be judged), lower an optional probe's failures to warnings, and measure it."""
    findings: list[Finding] = []
    if exchange.outcome is not Outcome.CANCELLED:
        ctx = CheckContext(probe.name, probe.expect, thresholds or Thresholds(), probe.reference)
        findings = run_checks(ctx, exchange, frozenset(disabled))
        if probe.optional:
            findings = [_as_warning(f) for f in findings]
    return ExchangeResult(probe, repeat, exchange, findings, exchange_metrics(exchange))


def unjudged_result(
    probe: Probe, exchange: Exchange, reason: str, *, repeat: int = 1, sent: bool = True
) -> ExchangeResult:
    """The result of an exchange that was cut short or never sent for a reason of the run (the endpoint hangs):
    every check the probe concerns is not judged, with `reason`; none passes. `sent`: whether the request left.
    """
    ctx = CheckContext(probe.name, probe.expect)
    findings = [
        Finding(item.id, item.severity, Status.NOT_JUDGED, reason)
        for item in REGISTRY.values()
        if item.concerns(ctx, exchange)
    ]
    return ExchangeResult(probe, repeat, exchange, findings, exchange_metrics(exchange), sent=sent)
