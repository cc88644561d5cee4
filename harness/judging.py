"""Judging one recorded exchange: the checks that apply, its metrics, its result. The runner, the scenario
runner and the pytest plugin all judge through `judge_exchange`, so an exchange is judged the same way
wherever it was sent from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from harness.checks import CheckContext, Finding, Severity, Status, Thresholds, run_checks
from harness.metrics import exchange_metrics
from harness.results import ExchangeResult
from harness.suite import Probe
from mock_vapi.exchange import Exchange, Outcome
from mock_vapi.reader import ReadLimits

__all__ = ["OPTIONAL_NOTE", "RunSettings", "judge_exchange"]

OPTIONAL_NOTE = "warns only: Vapi would not send this to your assistant"


@dataclass(frozen=True)
class RunSettings:
    """How to run: repeats, bounds, budgets and checks switched off."""

    repeat: int = 1
    limits: ReadLimits = field(default_factory=ReadLimits)
    thresholds: Thresholds = field(default_factory=Thresholds)
    disabled_checks: frozenset[str] = frozenset()


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
