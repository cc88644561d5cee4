"""Run probes against an endpoint, calls side by side, and yield events; checks and metrics stay free of I/O."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum

import aiohttp

from harness.judging import RunSettings, judge_exchange, unjudged_result
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
from mock_vapi.reader import Abort, new_session, read_into
from mock_vapi.scenarios.model import Scenario

__all__ = ["Runner", "TokenAuth", "hangs"]

# A reader's bound that fired before the reply was done: no head within timeoutSeconds, no content within it, no
# bytes for --idle-s, or still open at the deadline.
_HUNG = frozenset({Outcome.HEADERS_TIMEOUT, Outcome.FIRST_DELTA_TIMEOUT, Outcome.IDLE_TIMEOUT, Outcome.DEADLINE})


def hangs(probe: Probe, exchange: Exchange) -> bool:
    """True when this exchange shows the endpoint hanging: a request Vapi sends (streamed, not optional) ended by
    a time bound before its reply was done. A hung request Vapi would not send (stream: false, or an optional
    probe) is judged as itself and stops nothing."""
    return exchange.outcome in _HUNG and probe.request.stream and not probe.optional


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


class _Fate(Enum):
    """What became of one probe of a pass."""

    PENDING = "pending"  # not sent yet, or being read
    READ = "read"  # sent and read to its end: judged
    CUT = "cut"  # in flight when the endpoint was seen hanging: not judged
    NOT_SENT = "not_sent"  # not yet sent when the endpoint was seen hanging: reported, not judged
    DROPPED = "dropped"  # not sent after the run stopped (unreachable, no token): not reported


class _Flight:
    """One probe of one pass: its request, and what became of it. `answered` is set at its first events or its
    end (what the first probe's followers and a barge-in wait for), `ended` once its fate is known."""

    def __init__(self, probe: Probe, repeat: int, index: int) -> None:
        self.probe = probe
        self.repeat = repeat
        self.index = index
        self.fate = _Fate.PENDING
        self.exchange: Exchange | None = None
        self.reading: asyncio.Task[Exchange] | None = None
        self.reported = False
        self.started = asyncio.Event()
        self.answered = asyncio.Event()
        self.ended = asyncio.Event()

    def settle(self, fate: _Fate) -> None:
        self.fate = fate
        for event in (self.started, self.answered, self.ended):
            event.set()


class _Pass:
    """One pass over the probes. Each call's turns go in order; different calls overlap, at most
    `settings.max_in_flight` requests at once. The first probe goes alone until it is answered (an unreachable
    or hanging endpoint is then met by one request); a probe that aborts its stream (a barge-in) waits until
    every earlier probe of other calls is answered, so no other request reaches a server the abort broke.

    Once an exchange `hangs`, the probes in flight are cut and those not sent are not sent: both are reported
    as not judged, with what was seen. The events come in the probes' order; an exchange is judged (and its
    `ExchangeFinished` yielded) only while no request is in flight, so the checks' CPU never delays a timestamp
    of a stream being read.
    """

    def __init__(self, runner: Runner, session: aiohttp.ClientSession, repeat: int) -> None:
        self.runner = runner
        self.session = session
        count = len(runner.probes)
        self.flights = [_Flight(p, repeat, (repeat - 1) * count + i + 1) for i, p in enumerate(runner.probes)]
        self.slots = asyncio.Semaphore(max(runner.settings.max_in_flight, 1))
        self.reading = 0
        self.quiet = asyncio.Event()
        self.quiet.set()
        self.hung: tuple[str, str] | None = None  # the probe and what was seen, once the endpoint hangs

    def calls(self) -> list[list[_Flight]]:
        """The flights grouped by call, calls in the order of their first probe."""
        calls: dict[str, list[_Flight]] = {}
        for flight in self.flights:
            calls.setdefault(flight.probe.call, []).append(flight)
        return list(calls.values())

    async def events(self) -> AsyncIterator[RunEvent]:
        """Play every call concurrently; yield each probe's events in the probes' order."""
        tasks = [asyncio.create_task(self._play(call)) for call in self.calls()]
        try:
            for flight in self.flights:
                async for event in self._events_of(flight):
                    yield event
            await asyncio.gather(*tasks)  # all ended: this raises what one of them raised, if any did
        finally:
            await self._cancel(tasks)
        self._note_stop()

    async def _events_of(self, flight: _Flight) -> AsyncIterator[RunEvent]:
        total = len(self.flights) * self.runner.settings.repeat
        await flight.started.wait()
        if flight.exchange is not None and flight.fate is not _Fate.CUT:
            yield ProbeStarted(flight.probe, flight.repeat, flight.index, total, flight.exchange)
        await flight.ended.wait()
        while self.reading:  # judge only while nothing is being read
            await self.quiet.wait()
        result = self._result(flight)
        flight.reported = True
        if result is not None:
            self.runner.run.results.append(result)
            if flight.fate is _Fate.READ:
                yield ExchangeFinished(result)

    @property
    def reason(self) -> str:
        """Why the probes cut short or not sent are not judged."""
        probe, seen = self.hung or ("", "")
        return f"the endpoint hangs ({probe}: {seen})"

    async def _play(self, call: list[_Flight]) -> None:
        """Send a call's turns in order; a bug raised here ends the pass (the events stop waiting) and is raised."""
        try:
            await self._play_turns(call)
        except Exception:
            for flight in self.flights:
                if not flight.ended.is_set():
                    flight.settle(_Fate.DROPPED)
            raise

    async def _play_turns(self, call: list[_Flight]) -> None:
        """Each turn waits for what it must follow: the first probe's answer, the turn before, and for an abort
        (a barge-in) every earlier probe of other calls; then for a free slot."""
        gate = self.flights[0]
        for flight in call:
            if flight is not gate:
                await gate.answered.wait()
            if flight.probe.abort is not Abort.NEVER:
                for other in self.flights[: self.flights.index(flight)]:
                    if other.probe.call != flight.probe.call:
                        await other.answered.wait()
            if flight.probe.pause_before_s and not flight.ended.is_set():
                await asyncio.sleep(flight.probe.pause_before_s)
            async with self.slots:
                if not flight.ended.is_set():  # settled meanwhile: the run stopped
                    await self._send(flight)

    async def _send(self, flight: _Flight) -> None:
        runner = self.runner
        request = await runner._request(self.session, flight.probe)
        if request is None:  # no OAuth2 token: the run stopped
            self._stop_sending()
            return
        if flight.ended.is_set():
            return
        exchange = flight.exchange = Exchange(request, time.perf_counter())
        flight.started.set()
        flight.reading = asyncio.create_task(
            read_into(
                self.session,
                exchange,
                runner.settings.limits,
                abort=flight.probe.abort,
                on_events=lambda _: flight.answered.set(),
            )
        )
        self._count(1)
        try:
            await asyncio.wait([flight.reading])
        finally:
            self._count(-1)
        if flight.reading.cancelled():
            flight.settle(_Fate.CUT)
            return
        flight.reading.result()  # the reader records every failure; anything else is a bug, raised
        flight.settle(_Fate.READ)
        if exchange.outcome is Outcome.CONNECT_ERROR:
            runner.run.stopped_early = runner.run.stopped_early or exchange.error
            self._stop_sending()
        elif self.hung is None and hangs(flight.probe, exchange):
            self.hung = (flight.probe.name, exchange.error or exchange.outcome.value)
            self._cut_short()

    def _count(self, change: int) -> None:
        self.reading += change
        if self.reading:
            self.quiet.clear()
        else:
            self.quiet.set()

    def _stop_sending(self) -> None:
        """The run stopped (unreachable, no token): what is not sent yet is not sent, nor reported."""
        for flight in self.flights:
            if flight.exchange is None and not flight.ended.is_set():
                flight.settle(_Fate.DROPPED)

    def _cut_short(self) -> None:
        """The endpoint hangs: cut what is in flight, send nothing more; all of it is reported, not judged."""
        for flight in self.flights:
            if flight.reading is not None and not flight.reading.done():
                flight.reading.cancel()
            elif flight.exchange is None and not flight.ended.is_set():
                flight.settle(_Fate.NOT_SENT)

    def _result(self, flight: _Flight) -> ExchangeResult | None:
        """The flight's result, by its fate; None when it is not reported."""
        probe, repeat, reason = flight.probe, flight.repeat, self.reason
        if flight.fate is _Fate.NOT_SENT:
            exchange = Exchange(probe.request, time.perf_counter(), Outcome.CANCELLED, f"Not sent: {reason}")
            exchange.t_end = exchange.t_start  # it ended where it began: nothing was sent, nothing arrived
            return unjudged_result(probe, exchange, reason, repeat=repeat, sent=False)
        if flight.exchange is None or flight.fate is _Fate.DROPPED:
            return None
        if flight.fate is _Fate.CUT:
            flight.exchange.error = f"Cut short: {reason}"
            return unjudged_result(probe, flight.exchange, reason, repeat=repeat)
        return self.runner._judge(probe, repeat, flight.exchange)  # read, or cancelled by an interrupt

    async def _cancel(self, tasks: list[asyncio.Task[None]]) -> None:
        """Stop every call and read still running (an interrupt), and keep what was measured, in order."""
        readings = [f.reading for f in self.flights if f.reading is not None]
        for task in [*tasks, *readings]:
            task.cancel()
        await asyncio.gather(*tasks, *readings, return_exceptions=True)
        for flight in self.flights:
            if not flight.reported and flight.exchange is not None:
                flight.reported = True
                if flight.fate is _Fate.PENDING:
                    flight.fate = _Fate.READ  # cut by the interrupt: kept, and judged as cancelled (unjudged)
                result = self._result(flight)
                if result is not None:
                    self.runner.run.results.append(result)

    def _note_stop(self) -> None:
        """Stop the run when the endpoint hung with probes left."""
        left = sum(f.fate in (_Fate.CUT, _Fate.NOT_SENT) for f in self.flights)
        if self.hung is not None and left and not self.runner.run.stopped_early:
            probe, seen = self.hung
            self.runner.run.stopped_early = (
                f"the endpoint hangs: {probe} hung ({seen}); {left} probes were not judged (cut short or not sent)"
            )


class Runner:
    """Sends the probes, judges and measures them; `run` keeps what was measured if interrupted.

    The probes of different calls overlap (`_Pass`); the events come in the probes' order. With `auth`, the
    first token is fetched before anything is sent: a `TokenError` then leaves `events` before `RunStarted` (a
    plan that gives no token is the user's to fix). A token that cannot be fetched later stops the run like an
    unreachable endpoint: the remaining probes are not sent, the reports say why.
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
        `TokenError` before `RunStarted` when the run's first OAuth2 token cannot be fetched. A probe cut short
        or not sent because the endpoint hangs has no `ExchangeFinished`: its result is in the run."""
        async with new_session() as session:
            if self.auth is not None:
                await self.auth.token(session)  # a TokenError here leaves before anything was sent
            yield RunStarted(self.run.info)
            for repeat in range(1, self.settings.repeat + 1):
                if not self.probes:
                    break
                async for event in _Pass(self, session, repeat).events():
                    yield event
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
