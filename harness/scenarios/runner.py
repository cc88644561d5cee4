"""Play scenarios against an endpoint: each call through the simulator, each request through the checks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp

from harness.checks import Expect
from harness.judging import RunSettings, judge_exchange
from harness.results import ExchangeResult
from harness.scenarios.judge import ExpectationResult, judge_turn
from harness.suite import Probe
from mock_vapi.scenarios.model import Expectation, Scenario
from mock_vapi.simulator import CallRecord, CallSimulator, TurnRecord, turn_timing

__all__ = ["ScenarioResult", "TurnResult", "exchanges_of", "play_scenarios"]


@dataclass
class TurnResult:
    """One turn of a played call: what was said and done, its timing, and each expectation's verdict."""

    index: int
    user: str | None
    spoken: str
    tool_calls: list[str]
    timing: dict[str, float | None]
    expectations: list[ExpectationResult]
    exchanges: list[ExchangeResult]
    played: bool = True

    @property
    def failed_expectations(self) -> list[ExpectationResult]:
        """Expectations that did not hold."""
        return [e for e in self.expectations if not e.passed]

    @property
    def failed_checks(self) -> list[str]:
        """`check_id: title` of each error-level check failure on the turn's requests."""
        return [f"{f.check}: {f.title}" for r in self.exchanges for f in r.failed if f.severity.value == "error"]

    @property
    def passed(self) -> bool:
        """No failed expectation and no failed error-level check."""
        return self.played and not self.failed_expectations and not self.failed_checks


@dataclass
class ScenarioResult:
    """One played copy of a scenario."""

    name: str
    source: str
    copy: int
    call_id: str
    ended_reason: str
    turns: list[TurnResult] = field(default_factory=list)
    transcript: list[tuple[str, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Every turn passed."""
        return all(t.passed for t in self.turns)

    @property
    def label(self) -> str:
        """The name, with the copy number when the scenario plays several calls at once."""
        return self.name if self.copy == 0 else f"{self.name} [call {self.copy + 1}]"


def _judge_exchanges(
    scenario: Scenario, turn: TurnRecord, skip: frozenset[str], settings: RunSettings
) -> list[ExchangeResult]:
    results = []
    for number, exchange in enumerate(turn.exchanges, start=1):
        name = f"{scenario.name} · turn {turn.index}" + (f" · request {number}" if len(turn.exchanges) > 1 else "")
        probe = Probe(name=name, description=turn.user or "(call start)", request=exchange.request, expect=Expect.TURN)
        disabled = settings.disabled_checks | skip
        results.append(judge_exchange(probe, exchange, thresholds=settings.thresholds, disabled=disabled))
    return results


def _result(scenario: Scenario, call: CallRecord, settings: RunSettings) -> ScenarioResult:
    result = ScenarioResult(scenario.name, scenario.source, call.copy, call.call_id, call.ended_reason)
    result.transcript = call.transcript()
    played = {t.index: t for t in call.turns}
    plan: list[tuple[int, str | None, Expectation, frozenset[str]]] = []
    if scenario.first_message_mode == "assistant-speaks-first-with-model-generated-message":
        plan.append((0, None, scenario.expect_first_message, frozenset()))
    plan += [(i, t.user, t.expect, t.skip_checks) for i, t in enumerate(scenario.turns, start=1)]
    for index, user, expect, skip in plan:
        turn = played.get(index)
        if turn is None:
            reason = f"the call had already ended ({call.ended_reason})"
            result.turns.append(
                TurnResult(
                    index, user, "", [], {}, [ExpectationResult("played", False, f"not played: {reason}")], [], False
                )
            )
            continue
        expectations = judge_turn(expect, turn)
        if turn.problem is not None:
            expectations.insert(0, ExpectationResult("reply", False, f"the turn failed: {turn.problem}"))
        result.turns.append(
            TurnResult(
                index=index,
                user=turn.user,
                spoken=turn.spoken,
                tool_calls=[r.name for r in turn.tool_runs],
                timing=turn_timing(turn),
                expectations=expectations,
                exchanges=_judge_exchanges(scenario, turn, skip, settings),
            )
        )
    return result


async def play_scenarios(
    scenarios: Sequence[Scenario],
    base_url: str,
    session: aiohttp.ClientSession,
    settings: RunSettings,
    *,
    api_key: str | None = None,
    headers: Mapping[str, str] | None = None,
    on_result: Callable[[ScenarioResult], None] | None = None,
) -> list[ScenarioResult]:
    """Play each scenario in turn (its copies at once); results come back in order, and through `on_result`."""
    results: list[ScenarioResult] = []
    for scenario in scenarios:
        simulator = CallSimulator(scenario, base_url, session, api_key=api_key, limits=settings.limits, headers=headers)
        calls = await asyncio.gather(*(simulator.play(copy) for copy in range(scenario.concurrency)))
        for call in calls:
            result = _result(scenario, call, settings)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def exchanges_of(results: Sequence[ScenarioResult]) -> list[ExchangeResult]:
    """Every judged request of the played scenarios, for the check summaries and latency figures."""
    return [x for r in results for t in r.turns for x in t.exchanges]
