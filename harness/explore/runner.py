"""The exploration: Hypothesis draws conversations, each is sent and judged as `check` judges it, and each distinct
failure is shrunk to the smallest request that fails the same way.

Hypothesis's engine does the generating and the shrinking. The test it runs sends a batch of `concurrency`
conversations at once (drawn together, so they shrink together) and raises one exception class per
`FailureKey`: Hypothesis keeps distinct bugs apart by exception type, so each failure is shrunk on its own
(`report_multiple_bugs`). Whatever the engine does, every judged example is offered to its failures, which keep
the smallest request seen and count the steps down to it. Hypothesis stops generating soon after a failure,
so a run that found one is followed by another with the next seed, in which the known failures are no longer
raised. The example database (Hypothesis's, a directory) keeps the failing examples, so a re-run tries them
first.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from hypothesis import HealthCheck, Phase, Verbosity, given, reject, seed, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import Flaky, HypothesisException, Unsatisfiable

from harness.checks import Expect, Severity
from harness.explore.results import (
    ExampleJudged,
    ExploreEvent,
    ExploreFinished,
    ExploreInfo,
    ExploreResult,
    ExploreStarted,
    Failure,
    FailureKey,
    failure_key,
)
from harness.explore.rules import rule_problems
from harness.explore.strategies import Conversation, conversations
from harness.judging import RunSettings, judge_exchange
from harness.suite import Probe
from mock_vapi import VapiRequest
from mock_vapi.exchange import Exchange, Outcome
from mock_vapi.reader import new_session, read_into

__all__ = ["ExploreSettings", "Explorer"]

_DIGEST = b"vapi-harness explore 1"


@dataclass(frozen=True)
class ExploreSettings:
    """How to explore: how many examples, for how long, how many at once, what fails, where the database is."""

    max_examples: int = 200
    max_run_s: float = 300.0
    concurrency: int = 1
    strict: bool = False
    run: RunSettings = field(default_factory=RunSettings)  # read limits, thresholds, checks switched off
    database: Path | None = None  # None: no example database


class _Failed(Exception):
    """An example failed; each `FailureKey` gets a subclass of its own, so Hypothesis shrinks each apart."""


class _OutOfTime(BaseException):
    """--max-run-s has passed: a BaseException, so Hypothesis stops at once instead of shrinking it."""


class _Stopped(BaseException):
    """The endpoint cannot be reached: every further example would fail the same way."""


class Explorer:
    """Explores one endpoint; `run` hands every event to `sink` and returns what was found.

    Ctrl-C (`KeyboardInterrupt`) ends the run as interrupted: the final event is still handed on, then the
    interrupt is raised again for the command to exit 130.
    """

    def __init__(
        self,
        info: ExploreInfo,
        settings: ExploreSettings,
        sink: Callable[[ExploreEvent], None],
        *,
        api_key: str | None = None,
        finish: Callable[[ExploreResult], None] | None = None,
    ) -> None:
        self.info = info
        self.settings = settings
        self.sink = sink
        self.api_key = api_key
        self.finish = finish  # called before the final event (the command writes the reproducers)
        self.run = ExploreResult(info)
        self._classes: dict[FailureKey, type[_Failed]] = {}
        self._deadline = math.inf
        self._masked: frozenset[FailureKey] = frozenset()  # failures found by an earlier run: kept, not raised
        self._t_out: float | None = None
        self._loop: asyncio.Runner | None = None
        self._session: aiohttp.ClientSession | None = None

    def explore(self) -> ExploreResult:
        """Run the exploration to its end (or its bound); the result, complete or not."""
        t0 = time.perf_counter()
        self._deadline = t0 + self.settings.max_run_s
        self.sink(ExploreStarted(self.info))
        try:
            with asyncio.Runner() as loop:
                self._loop = loop
                self._session = loop.run(_open(self.settings.concurrency))
                try:
                    self._rounds()
                finally:
                    loop.run(self._session.close())
        except KeyboardInterrupt:
            self._end(t0, "Ctrl-C")
            raise
        self._end(t0, None)
        return self.run

    def _end(self, t0: float, interrupted: str | None) -> None:
        self.run.elapsed_s = time.perf_counter() - t0
        self.run.finished_at = datetime.now(UTC)
        if interrupted is not None:
            self.run.interrupted = interrupted
        if self.finish is not None:
            self.finish(self.run)
        self.sink(ExploreFinished(self.run))

    def _rounds(self) -> None:
        """Hypothesis's runs, until the examples are spent or a run finds nothing new.

        Hypothesis stops generating soon after its first failure, to shrink it. So a run that found a failure
        is followed by another (the next seed) in which the failures already known are kept but no longer
        raised: a second bug behind a shallow first one is found too. Only the first run replays the database.
        """
        for number in itertools.count():
            known = frozenset(self.run.failures)
            remaining = self.settings.max_examples - self.run.examples
            if remaining <= 0 or not self._engine(number, known, remaining):
                return
            if frozenset(self.run.failures) == known:
                return

    def _engine(self, number: int, known: frozenset[FailureKey], examples: int) -> bool:
        """One Hypothesis run: generate, and shrink each new failure; its own errors become notes. False when
        the exploration must stop (out of time, the endpoint unreachable, nothing Vapi could send)."""
        self._masked = known
        test = self._hypothesis_test(number, examples)
        try:
            test()
        except _OutOfTime:
            self.run.interrupted = f"the run exceeded --max-run-s {self.settings.max_run_s:g}"
            return False
        except _Stopped:
            return False
        except Unsatisfiable:
            self.run.stopped_early = "every generated example broke one of Vapi's rules (a generator bug)"
            return False
        except Exception as exc:
            self._engine_ended(exc)
        return True

    def _engine_ended(self, exc: BaseException) -> None:
        """Hypothesis re-raised the failures (each is in `run.failures` already, with its smallest request);
        its own complaints become notes; a bug of ours is raised again."""
        if isinstance(exc, Flaky):  # before the group: Hypothesis's flaky failure is a group of the failures
            note = (
                "the endpoint answered the same request differently when it was sent again (flaky); the "
                "smallest request seen to fail is reported"
            )
            if note not in self.run.notes:
                self.run.notes.append(note)
        elif isinstance(exc, ExceptionGroup):
            for error in exc.exceptions:
                self._engine_ended(error)
        elif isinstance(exc, HypothesisException):
            self.run.notes.append(f"Hypothesis: {type(exc).__name__}: {exc}")
        elif not isinstance(exc, _Failed):
            raise exc

    def _hypothesis_test(self, number: int, examples: int) -> Callable[[], None]:
        size = self.settings.concurrency
        database = None if self.settings.database is None else DirectoryBasedExampleDatabase(self.settings.database)
        reuse = (Phase.reuse,) if number == 0 else ()
        phases = (Phase.explicit, *reuse, Phase.generate, Phase.shrink)

        @settings(
            database=database,
            max_examples=math.ceil(examples / size),
            deadline=None,
            phases=phases,
            report_multiple_bugs=True,
            suppress_health_check=list(HealthCheck),
            verbosity=Verbosity.quiet,
            print_blob=False,
        )
        @seed(self.info.seed + number)
        @given(st.lists(conversations(self.info.url), min_size=size, max_size=size))
        def explore(batch: list[Conversation]) -> None:
            self._example(batch)

        # Earlier failures are kept per endpoint and batch size (the built-in endpoint's port changes each run).
        where = b"builtin" if self.info.builtin else self.info.url.encode()
        inner = explore.hypothesis.inner_test  # type: ignore[attr-defined]
        inner._hypothesis_internal_add_digest = _DIGEST + b" " + where + b" %d" % size
        return explore

    def _example(self, batch: Sequence[Conversation]) -> None:
        """Send a batch at once and judge each; raise the first failure that this run has not known before."""
        t_in = time.perf_counter()
        drawn_s = t_in - self._t_out if self._t_out is not None else 0.0
        if t_in >= self._deadline:
            raise _OutOfTime
        sent: list[tuple[Conversation, VapiRequest]] = []
        for conversation in batch:
            request = conversation.request(self.api_key)
            if rule_problems(request.json_body or {}):
                self.run.rejected += 1
                continue
            sent.append((conversation, request))
        if not sent:
            self._t_out = time.perf_counter()
            reject()
        t_send = time.perf_counter()
        exchanges = self._send([request for _, request in sent])
        t_back = time.perf_counter()
        failed: list[FailureKey] = []
        for (conversation, _), exchange in zip(sent, exchanges, strict=True):
            failed += self._judge(conversation, exchange)
        self._t_out = time.perf_counter()
        parts = {"generate": drawn_s, "build": t_send - t_in, "judge": self._t_out - t_back}
        for part, seconds in parts.items():
            self.run.part_ms[part].extend([seconds * 1000 / len(sent)] * len(sent))
        self.run.own_ms.extend([sum(parts.values()) * 1000 / len(sent)] * len(sent))
        unreachable = next((x for x in exchanges if x.outcome is Outcome.CONNECT_ERROR), None)
        if unreachable is not None:
            self.run.stopped_early = unreachable.error
            raise _Stopped
        if any(x.outcome is Outcome.CANCELLED for x in exchanges):
            raise _OutOfTime
        new = [key for key in failed if key not in self._masked]
        if new:
            raise self._exception(min(new))

    def _send(self, requests: Sequence[VapiRequest]) -> list[Exchange]:
        """Every request at once, each within the read limits, all within what is left of the run."""
        assert self._loop is not None and self._session is not None
        session, limits = self._session, self.settings.run.limits
        exchanges = [Exchange(request, time.perf_counter()) for request in requests]
        remaining_s = max(self._deadline - time.perf_counter(), 0.001)

        async def read_all() -> None:
            tasks = [asyncio.ensure_future(read_into(session, x, limits)) for x in exchanges]
            done, pending = await asyncio.wait(tasks, timeout=remaining_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            for task in done:
                task.result()  # a bug of ours surfaces here

        self._loop.run(read_all())
        return exchanges

    def _judge(self, conversation: Conversation, exchange: Exchange) -> list[FailureKey]:
        """Judge one exchange as `check` does and offer it to its failures; the keys it failed."""
        run = self.run
        run.examples += 1
        index = run.examples
        if exchange.outcome is Outcome.CANCELLED:
            return []
        probe = Probe(f"explore_{index}", "a generated conversation", exchange.request, Expect.TURN)
        settings = self.settings.run
        result = judge_exchange(probe, exchange, thresholds=settings.thresholds, disabled=settings.disabled_checks)
        keys: list[FailureKey] = []
        new: list[FailureKey] = []
        size = (len(exchange.request.body), len(conversation.messages))
        for finding in result.failed:
            if finding.severity is not Severity.ERROR and not self.settings.strict:
                continue
            key = failure_key(finding)
            if key in keys:
                continue
            keys.append(key)
            known = run.failures.get(key)
            if known is None:
                summary = conversation.summary()
                run.failures[key] = Failure(key, finding.severity, index, result, finding, summary, size)
                new.append(key)
            else:
                known.offer(result, finding, conversation.summary, size)
        self.sink(ExampleJudged(index, result, tuple(keys), tuple(new), run))
        return keys

    def _exception(self, key: FailureKey) -> _Failed:
        cls = self._classes.get(key)
        if cls is None:
            cls = type(f"ExploreFailure{len(self._classes) + 1}", (_Failed,), {"__module__": __name__})
            self._classes[key] = cls
        return cls(str(key))


async def _open(concurrency: int) -> aiohttp.ClientSession:
    return new_session(limit=max(concurrency, 1) * 2)
