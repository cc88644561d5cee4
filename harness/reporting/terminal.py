"""Terminal output: progress on stderr while running, results on stdout when the run ends.

Failures come first and every line fits the console's width (the terminal's, or `COLUMNS`): a message is cut
with "…" and its full text is in the JSON, JUnit and HTML reports. Passing checks fold into one count line
unless `verbose`. While a request is in flight, a live line on a terminal says what it waits for.
"""

from __future__ import annotations

import textwrap
import time

from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.table import Table
from rich.text import Text

from harness.checks import Severity, Status
from harness.metrics import METRICS
from harness.protocol import Redactor
from harness.results import (
    CheckSummary,
    ExchangeFinished,
    ProbeStarted,
    RunEvent,
    RunFinished,
    RunResult,
    RunStarted,
    ScenarioFinished,
)
from harness.scenarios.runner import ScenarioResult
from mock_vapi.exchange import Exchange

__all__ = ["INDENT", "MARKS", "TerminalReport", "first_line", "print_line", "render_results"]

INDENT = "       "  # under a result mark: " FAIL  "
MARKS = {"FAIL": "bold red", "WARN": "yellow", "PASS": "green"}


def print_line(console: Console, text: str | Text, style: str = "") -> None:
    """One line, cut to the console's width (never wrapped)."""
    line = text if isinstance(text, Text) else Text(text, style=style)
    line.truncate(console.width, overflow="ellipsis")
    console.print(line, no_wrap=True, overflow="ellipsis", crop=True)


def first_line(text: str) -> str:
    """The first line of a message, or "" for an empty one."""
    return text.strip().splitlines()[0] if text.strip() else ""


def _failed(summary: CheckSummary, console: Console, redactor: Redactor) -> None:
    mark = "FAIL" if summary.worst is Severity.ERROR else "WARN"
    result, finding = summary.failures_first[0]
    more = f" (+{len(summary.failures) - 1} more)" if len(summary.failures) > 1 else ""
    print_line(
        console, Text.assemble((f" {mark}  ", MARKS[mark]), (summary.id, "bold"), f"  {result.probe.name}{more}")
    )
    for text in (finding.title, first_line(finding.detail), f"({finding.note})" if finding.note else ""):
        if text:
            print_line(console, INDENT + redactor.text(text))


def _checks(run: RunResult, console: Console, redactor: Redactor, verbose: bool) -> None:
    summaries = run.checks()
    failed = [s for s in summaries if s.status is Status.FAILED]
    failed.sort(key=lambda s: s.worst is not Severity.ERROR)
    passed = [s for s in summaries if s.status is Status.PASSED]
    unjudged = [s for s in summaries if s.status is Status.NOT_JUDGED]
    console.print(Text("Checks", style="bold"))
    for summary in failed:
        _failed(summary, console, redactor)
    if verbose:
        for summary in passed:
            print_line(
                console, Text.assemble((" PASS  ", MARKS["PASS"]), summary.id, (f"  {summary.runs} requests", "dim"))
            )
    elif passed:
        print_line(console, Text(f" {len(passed)} checks passed (-v lists them)", style="green"))
    if unjudged:
        by_reason: dict[str, list[str]] = {}
        for summary in unjudged:
            by_reason.setdefault(summary.not_judged_reason, []).append(summary.id)
        print_line(console, f" {len(unjudged)} not judged (nothing to judge; not counted as passed):", "dim")
        for reason, ids in by_reason.items():
            print_line(console, f"   {redactor.text(reason)}:", "dim")
            width = max(console.width - len(INDENT), 20)
            for names in textwrap.wrap(", ".join(ids), width, break_on_hyphens=False, break_long_words=False):
                print_line(console, INDENT + names, "dim")


def _latency(run: RunResult, console: Console) -> None:
    latency = run.latency()
    if not latency:
        return
    table = Table(title="Latency (ms, unless the name says otherwise)", title_justify="left", title_style="bold")
    for column in ("metric", "n", "p50", "p90", "p95", "p99", "max"):
        table.add_column(column, justify="left" if column == "metric" else "right", no_wrap=True)
    for name in METRICS:
        dist = latency.get(name)
        if dist is None:
            continue
        p = dist.percentiles
        cells = [f"{v:.1f}" for v in (p["p50"], p["p90"], p["p95"], p["p99"], dist.max)]
        table.add_row(name, str(dist.n), *cells)
    console.print(table)


def render_results(run: RunResult, console: Console, redactor: Redactor, *, verbose: bool = False) -> None:
    """Print failed checks first (passing ones folded into a count unless `verbose`), scenarios, latency, verdict."""
    _checks(run, console, redactor, verbose)
    if run.scenarios:
        _render_scenarios(run.scenarios, console, redactor)
    _latency(run, console)
    counts = run.counts()
    verdict = Text("PASSED", style="bold green") if run.passed else Text("FAILED", style="bold red")
    line = Text.assemble(
        verdict,
        f": {counts['checks_passed']} checks passed, {counts['errors']} failed, {counts['warnings']} warnings, "
        f"{counts['checks_not_judged']} not judged, {counts['exchanges']} requests",
    )
    if counts["scenarios"]:
        line.append(f"; {counts['scenarios'] - counts['scenarios_failed']} of {counts['scenarios']} scenarios passed")
    if run.info.strict and counts["warnings"]:
        line.append(" (strict: warnings fail)")
    console.print(line)
    if run.stopped_early:
        console.print(f"Stopped early: {redactor.text(run.stopped_early)}", highlight=False)
    if run.interrupted:
        console.print(f"Interrupted ({run.interrupted}): the reports hold what was measured until then.")


def _first_failure(result: ScenarioResult) -> str:
    for turn in result.turns:
        reasons = [e.message for e in turn.failed_expectations] + turn.failed_checks
        if reasons:
            return f"turn {turn.index}: {first_line(reasons[0])}"
    return ""


def _render_scenarios(results: list[ScenarioResult], console: Console, redactor: Redactor) -> None:
    console.print(Text("Scenarios", style="bold"))
    for result in sorted(results, key=lambda r: r.passed):
        passed_turns = sum(t.passed for t in result.turns)
        requests = sum(len(t.exchanges) for t in result.turns)
        mark = "PASS" if result.passed else "FAIL"
        figures = f"  {passed_turns}/{len(result.turns)} turns, {requests} requests, {result.ended_reason}"
        print_line(console, Text.assemble((f" {mark}  ", MARKS[mark]), (redactor.text(result.label), "bold"), figures))
        if not result.passed:
            print_line(console, INDENT + redactor.text(_first_failure(result)))
    for result in results:
        if result.passed:
            continue
        console.print(Text(f"Transcript of {result.label} ({result.source}):", style="bold"))
        for role, text in result.transcript[-40:]:
            print_line(console, Text(f"  {role:>11}: ", style="dim") + Text(redactor.text(text)))


class _InFlight:
    """The live line for the request being read: what it waits for and for how long, redrawn by `Live`."""

    def __init__(self, name: str, exchange: Exchange) -> None:
        self.name = name
        self.exchange = exchange
        self.started = time.perf_counter()

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        exchange = self.exchange
        waited_s = time.perf_counter() - min(self.started, exchange.t_start)
        timeout_s = exchange.request.timeout_s
        if exchange.status is None:
            doing = f"waiting for headers, {waited_s:.0f} s of {timeout_s:g}"
        elif not exchange.events:
            doing = f"HTTP {exchange.status}, waiting for the first event, {waited_s:.0f} s of {timeout_s:g}"
        else:
            doing = f"reading: {len(exchange.events)} events, {exchange.body_bytes} bytes, {waited_s:.0f} s"
        line = Text(f" … {self.name}  {doing}", style="dim")
        line.truncate(options.max_width, overflow="ellipsis")
        yield line


class TerminalReport:
    """Progress lines on stderr (a live line for the request in flight on a terminal); results on stdout."""

    def __init__(self, out: Console, err: Console, redactor: Redactor, *, verbose: bool = False) -> None:
        self.out = out
        self.err = err
        self.redactor = redactor
        self.verbose = verbose
        self._live: Live | None = None
        self._name_width = 20

    def handle_event(self, event: RunEvent) -> None:
        """Render one event."""
        if isinstance(event, RunStarted):
            info = event.info
            self._name_width = max((len(name) for name in info.probes), default=20)
            where = f"{info.url} (built-in endpoint)" if info.builtin else info.url
            what = f"{len(info.scenarios)} scenarios" if info.suites else f"{len(info.probes)} probes"
            print_line(self.err, f"vapi-harness: checking {self.redactor.text(where)}, {what}")
        elif isinstance(event, ProbeStarted):
            self._stop_live()
            if event.exchange is not None and self.err.is_terminal:
                self._live = Live(
                    _InFlight(event.probe.name, event.exchange), console=self.err, refresh_per_second=2, transient=True
                )
                self._live.start()
        elif isinstance(event, ExchangeFinished):
            self._stop_live()
            self._progress(event)
        elif isinstance(event, ScenarioFinished):
            result = event.result
            mark = Text("✓", style="green") if result.passed else Text("✗", style="red")
            turns = f"{sum(t.passed for t in result.turns)}/{len(result.turns)} turns"
            label = self.redactor.text(result.label)
            print_line(self.err, Text.assemble(" ", mark, f" {label}  {turns}  {result.ended_reason}"))
        elif isinstance(event, RunFinished):
            self._stop_live()
            render_results(event.run, self.out, self.redactor, verbose=self.verbose)

    def _stop_live(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _progress(self, event: ExchangeFinished) -> None:
        result = event.result
        exchange = result.exchange
        failed = result.failed
        errors = sum(f.severity is Severity.ERROR for f in failed)
        status = str(exchange.status) if exchange.status is not None else exchange.outcome.value
        ttft = result.metrics.get("ttft_ms")
        timing = f"ttft {ttft:.0f} ms" if ttft is not None else f"{result.metrics.get('total_ms') or 0:.0f} ms"
        mark = Text("✗", style="red") if errors else (Text("!", style="yellow") if failed else Text("✓", style="green"))
        repeat = f"#{result.repeat} " if result.repeat > 1 else ""
        parts: list[str | Text] = [" ", mark, f" {repeat}{result.probe.name:<{self._name_width}} {status:<5} {timing}"]
        if failed:
            parts.append(f"  {failed[0].check}: {self.redactor.text(failed[0].title)}")
            if not errors and failed[0].note:
                parts.append(Text(f" ({failed[0].note})", style="dim"))
        print_line(self.err, Text.assemble(*parts))

    def close(self) -> None:
        """Stop the live line if a run ended without its final event."""
        self._stop_live()
