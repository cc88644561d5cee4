"""Run probes against an endpoint, one at a time, and yield events; checks and metrics stay free of I/O."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime

import aiohttp

from harness.judging import RunSettings, judge_exchange
from harness.results import (
    ExchangeFinished,
    ExchangeResult,
    ProbeStarted,
    RunEvent,
    RunFinished,
    RunInfo,
    RunResult,
    RunStarted,
    ScenarioFinished,
    ScenarioStarted,
)
from harness.scenarios.runner import play_scenarios
from harness.suite import Probe
from mock_vapi.exchange import Exchange, Outcome
from mock_vapi.reader import new_session, read_into
from mock_vapi.scenarios.model import Scenario

__all__ = ["Runner"]

# After this many hung requests in a row the endpoint is not answering: stop rather than wait out every probe.
_MAX_HUNG_IN_A_ROW = 3
_HUNG = frozenset({Outcome.HEADERS_TIMEOUT, Outcome.FIRST_DELTA_TIMEOUT, Outcome.IDLE_TIMEOUT, Outcome.DEADLINE})
# An answered request that Vapi would not send (stream: false) does not break a run of hung ones.


class Runner:
    """Sends each probe in turn, judges and measures it; `run` keeps what was measured if interrupted."""

    def __init__(
        self,
        info: RunInfo,
        probes: Sequence[Probe],
        settings: RunSettings,
        scenarios: Sequence[Scenario] = (),
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.probes = list(probes)
        self.scenarios = list(scenarios)
        self.settings = settings
        self.api_key = api_key
        self.headers = dict(headers or {})
        self.run = RunResult(info)

    async def events(self) -> AsyncIterator[RunEvent]:
        """Yield `RunStarted`, then per probe `ProbeStarted` and `ExchangeFinished`, then `RunFinished`."""
        yield RunStarted(self.run.info)
        total = len(self.probes) * self.settings.repeat
        index = hung = 0
        async with new_session() as session:
            for repeat in range(1, self.settings.repeat + 1):
                for probe in self.probes:
                    index += 1
                    if probe.pause_before_s:
                        await asyncio.sleep(probe.pause_before_s)
                    exchange = Exchange(probe.request, time.perf_counter())
                    yield ProbeStarted(probe, repeat, index, total, exchange)
                    try:
                        await read_into(session, exchange, self.settings.limits, abort=probe.abort)
                    except asyncio.CancelledError:
                        self.run.results.append(self._judge(probe, repeat, exchange))  # kept, unjudged
                        raise
                    result = self._judge(probe, repeat, exchange)
                    self.run.results.append(result)
                    yield ExchangeFinished(result)
                    if exchange.outcome in _HUNG:
                        hung += 1
                    elif probe.request.stream:
                        hung = 0
                    if exchange.outcome is Outcome.CONNECT_ERROR:
                        self.run.stopped_early = exchange.error
                    elif hung >= _MAX_HUNG_IN_A_ROW:
                        self.run.stopped_early = (
                            f"{hung} requests in a row hung ({exchange.error}); the remaining probes were not sent"
                        )
                    if self.run.stopped_early:
                        break
                if self.run.stopped_early:
                    break
            if not self.run.stopped_early:
                async for event in self._scenarios(session):
                    yield event
        self.run.finished_at = datetime.now(UTC)
        yield RunFinished(self.run)

    async def _scenarios(self, session: aiohttp.ClientSession) -> AsyncIterator[RunEvent]:
        for index, scenario in enumerate(self.scenarios, start=1):
            yield ScenarioStarted(scenario, index, len(self.scenarios))
            played = await play_scenarios(
                [scenario], self.run.info.url, session, self.settings, api_key=self.api_key, headers=self.headers
            )
            for result in played:
                self.run.scenarios.append(result)
                self.run.results.extend(x for turn in result.turns for x in turn.exchanges)
                yield ScenarioFinished(result)

    def interrupted(self, reason: str) -> RunFinished:
        """The final event for a run cut short: everything measured so far."""
        self.run.interrupted = reason
        self.run.finished_at = datetime.now(UTC)
        return RunFinished(self.run)

    def _judge(self, probe: Probe, repeat: int, exchange: Exchange) -> ExchangeResult:
        settings = self.settings
        return judge_exchange(
            probe, exchange, repeat=repeat, thresholds=settings.thresholds, disabled=settings.disabled_checks
        )
