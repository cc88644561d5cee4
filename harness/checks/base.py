"""The check registry: small pure functions over one recorded exchange."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NoReturn

from mock_vapi.exchange import Exchange, Outcome

__all__ = [
    "REGISTRY",
    "Check",
    "CheckContext",
    "CheckFailed",
    "Expect",
    "Finding",
    "RecordedReply",
    "Severity",
    "Status",
    "Thresholds",
    "check",
    "no_reply_reason",
    "not_applicable",
    "outcome_words",
    "run_checks",
]


class Severity(StrEnum):
    """`error`: Vapi would fail or the caller would hear nothing. `warning`: off-spec or a worse call."""

    ERROR = "error"
    WARNING = "warning"


class Expect(StrEnum):
    """What a probe expects of the endpoint."""

    TURN = "turn"  # a normal turn: a reply Vapi can speak
    MALFORMED = "malformed"  # a broken request body: a 4xx JSON error
    AUTH = "auth"  # a wrong or missing API key: 401/403
    BARGE_IN = "barge_in"  # a turn the caller interrupts: the client aborts mid-stream


class Status(StrEnum):
    """A check's result on one exchange."""

    PASSED = "passed"
    FAILED = "failed"
    NOT_JUDGED = "not_judged"  # nothing to judge (no reply, a cut stream, no chunk): never counted as a pass


@dataclass(frozen=True)
class Thresholds:
    """Budgets for the voice-quality warnings, in milliseconds."""

    max_stall_ms: float = 1000.0
    first_sentence_ms: float = 1500.0
    buffered_window_ms: float = 5.0


@dataclass(frozen=True)
class RecordedReply:
    """What the recorded reply to a replayed request did: its status, the tools it called, whether it spoke."""

    status: int | None
    tool_names: tuple[str, ...] = ()  # sorted
    has_content: bool = False

    @property
    def succeeded(self) -> bool:
        """True when the recorded reply was a 2xx."""
        return self.status is not None and 200 <= self.status < 300


@dataclass(frozen=True)
class CheckContext:
    """What a check knows besides the exchange: the probe and the budgets."""

    probe: str
    expect: Expect
    thresholds: Thresholds = field(default_factory=Thresholds)
    reference: RecordedReply | None = None  # a replayed request's recorded outcome


class CheckFailed(Exception):
    """A rule did not hold; `title` is short, `detail` quotes what was received.

    `severity` lowers a check's own severity for this finding (a refusal with an odd status is a warning where
    serving the request would be an error); None keeps the check's. `event` is the index of the SSE event at
    fault, when there is one (the HTML timeline marks it).
    """

    def __init__(
        self, title: str, detail: str = "", *, severity: Severity | None = None, event: int | None = None
    ) -> None:
        super().__init__(title)
        self.title = title
        self.detail = detail
        self.severity = severity
        self.event = event


class _NotApplicable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def outcome_words(outcome: Outcome) -> str:
    """An outcome as words for a message: `first_delta_timeout` -> "first delta timeout"."""
    return outcome.value.replace("_", " ")


def no_reply_reason(exchange: Exchange) -> str:
    """Why a check that reads the reply had nothing to judge: no response, or not a 2xx one."""
    if exchange.status is None:
        return f"no response ({outcome_words(exchange.outcome)})"
    return f"no 2xx reply (HTTP {exchange.status})"


@dataclass(frozen=True)
class Check:
    """A registered check."""

    id: str
    severity: Severity
    rationale: str
    expects: frozenset[Expect]
    streamed: bool | None
    needs_success: bool
    func: Callable[[CheckContext, Exchange], None]

    def concerns(self, ctx: CheckContext, exchange: Exchange) -> bool:
        """True when this check is about this kind of probe (its expectation, streamed or not)."""
        if ctx.expect not in self.expects:
            return False
        return self.streamed is None or exchange.streamed == self.streamed

    def applies(self, ctx: CheckContext, exchange: Exchange) -> bool:
        """True when this check has something to judge in `exchange`."""
        if not self.concerns(ctx, exchange):
            return False
        return not self.needs_success or (exchange.status is not None and 200 <= exchange.status < 300)

    def __call__(self, ctx: CheckContext, exchange: Exchange) -> None:
        self.func(ctx, exchange)


REGISTRY: dict[str, Check] = {}


def check(
    severity: Severity,
    *,
    on: Iterable[Expect] = (Expect.TURN,),
    streamed: bool | None = None,
    needs_success: bool = True,
) -> Callable[[Callable[[CheckContext, Exchange], None]], Check]:
    """Register a check; its id is the function name, its rationale the docstring's first line.

    Args:
        on: the probe expectations it judges.
        streamed: only streamed (True) or only non-streamed (False) requests; None for both.
        needs_success: only exchanges answered with a 2xx status.
    """

    def register(func: Callable[[CheckContext, Exchange], None]) -> Check:
        doc = (func.__doc__ or "").strip().splitlines()
        made = Check(func.__name__, severity, doc[0] if doc else "", frozenset(on), streamed, needs_success, func)
        if made.id in REGISTRY:
            raise ValueError(f"duplicate check id {made.id}")
        REGISTRY[made.id] = made
        return made

    return register


@dataclass(frozen=True)
class Finding:
    """One check's verdict on one exchange; for `NOT_JUDGED`, `title` says why there was nothing to judge.

    `note` says why a failure's severity was lowered (a probe Vapi would not send with this assistant).
    """

    check: str
    severity: Severity
    status: Status
    title: str = ""
    detail: str = ""
    note: str = ""
    event: int | None = None  # the SSE event at fault, when one is


def run_checks(ctx: CheckContext, exchange: Exchange, disabled: frozenset[str] = frozenset()) -> list[Finding]:
    """Run every registered check this probe concerns; a check that crashes is reported, never raised.

    A check with nothing to judge (no 2xx reply where it needs one, or its own `not_applicable`) yields a
    `NOT_JUDGED` finding with the reason; a check about other probes yields nothing.
    """
    findings = []
    for item in REGISTRY.values():
        if not item.concerns(ctx, exchange):
            continue
        if item.id in disabled:
            findings.append(Finding(item.id, item.severity, Status.NOT_JUDGED, "switched off"))
            continue
        if not item.applies(ctx, exchange):
            findings.append(Finding(item.id, item.severity, Status.NOT_JUDGED, no_reply_reason(exchange)))
            continue
        try:
            item(ctx, exchange)
        except CheckFailed as failed:
            severity = failed.severity or item.severity
            findings.append(Finding(item.id, severity, Status.FAILED, failed.title, failed.detail, event=failed.event))
        except _NotApplicable as unjudged:
            findings.append(Finding(item.id, item.severity, Status.NOT_JUDGED, unjudged.reason))
        except Exception as exc:  # a bug in a check must not lose the run
            findings.append(
                Finding(
                    item.id, item.severity, Status.FAILED, "The check itself crashed", f"{type(exc).__name__}: {exc}"
                )
            )
        else:
            findings.append(Finding(item.id, item.severity, Status.PASSED))
    return findings


def not_applicable(reason: str) -> NoReturn:
    """Called by a check that finds nothing to judge in this exchange; `reason` says why, for the reports."""
    raise _NotApplicable(reason)
