"""The check registry: small pure functions over one recorded exchange."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NoReturn

from harness.exchange import Exchange

__all__ = [
    "REGISTRY",
    "Check",
    "CheckContext",
    "CheckFailed",
    "Expect",
    "Finding",
    "Severity",
    "Status",
    "Thresholds",
    "check",
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
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Thresholds:
    """Budgets for the voice-quality warnings, in milliseconds."""

    max_stall_ms: float = 1000.0
    first_sentence_ms: float = 1500.0
    buffered_window_ms: float = 5.0


@dataclass(frozen=True)
class CheckContext:
    """What a check knows besides the exchange: the probe and the budgets."""

    probe: str
    expect: Expect
    thresholds: Thresholds = field(default_factory=Thresholds)
    reference: Mapping[str, Any] | None = None  # a replayed request's recorded outcome


class CheckFailed(Exception):
    """A rule did not hold; `title` is short, `detail` quotes what was received."""

    def __init__(self, title: str, detail: str = "") -> None:
        super().__init__(title)
        self.title = title
        self.detail = detail


class _NotApplicable(Exception):
    pass


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

    def applies(self, ctx: CheckContext, exchange: Exchange) -> bool:
        """True when this check has something to judge in `exchange`."""
        if ctx.expect not in self.expects:
            return False
        if self.streamed is not None and exchange.streamed != self.streamed:
            return False
        if self.needs_success:
            return exchange.status is not None and 200 <= exchange.status < 300
        return True

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
    """One check's verdict on one exchange."""

    check: str
    severity: Severity
    status: Status
    title: str = ""
    detail: str = ""


def run_checks(ctx: CheckContext, exchange: Exchange, disabled: frozenset[str] = frozenset()) -> list[Finding]:
    """Run every applicable registered check; a check that crashes is reported, never raised."""
    findings = []
    for item in REGISTRY.values():
        if item.id in disabled or not item.applies(ctx, exchange):
            continue
        try:
            item(ctx, exchange)
        except CheckFailed as failed:
            findings.append(Finding(item.id, item.severity, Status.FAILED, failed.title, failed.detail))
        except _NotApplicable:
            continue
        except Exception as exc:  # a bug in a check must not lose the run
            findings.append(
                Finding(
                    item.id, item.severity, Status.FAILED, "The check itself crashed", f"{type(exc).__name__}: {exc}"
                )
            )
        else:
            findings.append(Finding(item.id, item.severity, Status.PASSED))
    return findings


def not_applicable() -> NoReturn:
    """Called by a check that finds nothing to judge in this exchange."""
    raise _NotApplicable
