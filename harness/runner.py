"""Run probes against an endpoint, one at a time, and yield events; checks and metrics stay free of I/O."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime

import aiohttp

from harness.judging import RunSettings, judge_exchange
from harness.protocol import Redactor
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
from mock_vapi import VapiRequest
from mock_vapi.exchange import Exchange, Outcome
from mock_vapi.oauth2 import TokenError, TokenSource
from mock_vapi.reader import new_session, read_into
from mock_vapi.scenarios.model import Scenario

__all__ = ["Runner", "TokenAuth"]

# After this many hung requests in a row the endpoint is not answering: stop rather than wait out every probe.
_MAX_HUNG_IN_A_ROW = 3
_HUNG = frozenset({Outcome.HEADERS_TIMEOUT, Outcome.FIRST_DELTA_TIMEOUT, Outcome.IDLE_TIMEOUT, Outcome.DEADLINE})
# An answered request that Vapi would not send (stream: false) does not break a run of hung ones.


class TokenAuth:
    """OAuth2 in place of a static key, as Vapi does it for a credential with an `oauth2` plan: a probe that
    carries the run's credential is sent with the current token (`source` fetches one, reuses it while it is
    valid, fetches again after). `redactor` learns every token, so none reaches an output, a log or a report.
    """

    def __init__(self, source: TokenSource, redactor: Redactor) -> None:
        self.source = source
        self.redactor = redactor

    async def token(self, session: aiohttp.ClientSession) -> str:
        """The current token, known to the redactor; `TokenError` when the token endpoint gives none."""
        token = await self.source.token(session)
        self.redactor.add(token)
        return token

    async def authorize(self, session: aiohttp.ClientSession, request: VapiRequest) -> VapiRequest:
        """`request` with `Authorization: Bearer <the current token>`."""
        return request.with_headers(authorization=f"Bearer {await self.token(session)}")


class Runner:
    """Sends each probe in turn, judges and measures it; `run` keeps what was measured if interrupted.

    With `auth`, the first token is fetched before anything is sent: a `TokenError` then leaves `events` before
    `RunStarted` (a plan that gives no token is the user's to fix). A token that cannot be fetched later stops
    the run like an unreachable endpoint: the remaining probes are not sent, the reports say why.
    """

    def __init__(
        self,
        info: RunInfo,
        probes: Sequence[Probe],
        settings: RunSettings,
        scenarios: Sequence[Scenario] = (),
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        auth: TokenAuth | None = None,
    ) -> None:
        self.probes = list(probes)
        self.scenarios = list(scenarios)
        self.settings = settings
        self.api_key = api_key
        self.headers = dict(headers or {})
        self.auth = auth
        self.run = RunResult(info)

    async def events(self) -> AsyncIterator[RunEvent]:
        """Yield `RunStarted`, then per probe `ProbeStarted` and `ExchangeFinished`, then `RunFinished`; raise
        `TokenError` before `RunStarted` when the run's first OAuth2 token cannot be fetched."""
        total = len(self.probes) * self.settings.repeat
        index = hung = 0
        async with new_session() as session:
            if self.auth is not None:
                await self.auth.token(session)  # a TokenError here leaves before anything was sent
            yield RunStarted(self.run.info)
            for repeat in range(1, self.settings.repeat + 1):
                for probe in self.probes:
                    index += 1
                    if probe.pause_before_s:
                        await asyncio.sleep(probe.pause_before_s)
                    request = await self._request(session, probe)
                    if request is None:
                        break
                    exchange = Exchange(request, time.perf_counter())
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

    async def _request(self, session: aiohttp.ClientSession, probe: Probe) -> VapiRequest | None:
        """The probe's request as it is sent: with the current OAuth2 token when the run has one and the probe
        carries the credential; None (the run stopped early) when no token could be fetched."""
        if self.auth is None or not probe.credentials:
            return probe.request
        try:
            return await self.auth.authorize(session, probe.request)
        except TokenError as exc:
            self.run.stopped_early = f"no OAuth2 token: {exc}; the remaining probes were not sent"
            return None

    async def _api_key(self, session: aiohttp.ClientSession) -> str | None:
        """The key a scenario's calls send: the static one, or the OAuth2 token current when the call starts."""
        if self.auth is None:
            return self.api_key
        try:
            return await self.auth.token(session)
        except TokenError as exc:
            self.run.stopped_early = f"no OAuth2 token: {exc}; the remaining scenarios were not played"
            return None

    async def _scenarios(self, session: aiohttp.ClientSession) -> AsyncIterator[RunEvent]:
        for index, scenario in enumerate(self.scenarios, start=1):
            api_key = await self._api_key(session)
            if self.run.stopped_early:
                return
            yield ScenarioStarted(scenario, index, len(self.scenarios))
            played = await play_scenarios(
                [scenario], self.run.info.url, session, self.settings, api_key=api_key, headers=self.headers
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
