"""Terminal output: progress on stderr while running, results and latency tables on stdout."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from harness.checks import Severity, Status
from harness.metrics import METRICS
from harness.reporting.redact import Redactor
from harness.results import (
    CheckSummary,
    ExchangeFinished,
    RunEvent,
    RunFinished,
    RunResult,
    RunStarted,
    ScenarioFinished,
)
from harness.scenarios.runner import ScenarioResult

__all__ = ["TerminalReport", "render_results"]

_WIDTH = 120


def _verdict(summary: CheckSummary) -> Text:
    if summary.status is Status.SKIPPED:
        return Text("n/a", style="dim")
    if summary.status is Status.PASSED:
        return Text("PASS", style="green")
    if summary.worst is Severity.ERROR:
        return Text("FAIL", style="bold red")
    return Text("WARN", style="yellow")


def render_results(run: RunResult, console: Console, redactor: Redactor, *, show_skipped: bool = False) -> None:
    """Print the checks table, the latency table and the verdict line."""
    checks = Table(title="Checks", title_justify="left", expand=False)
    checks.add_column("check", no_wrap=True)
    checks.add_column("severity")
    checks.add_column("result")
    checks.add_column("runs", justify="right")
    checks.add_column("message", overflow="fold")
    skipped = 0
    for summary in run.checks():
        if summary.status is Status.SKIPPED and not show_skipped:
            skipped += 1
            continue
        message = ""
        if summary.failures:
            result, finding = summary.failures_first[0]
            more = f" (+{len(summary.failures) - 1} more)" if len(summary.failures) > 1 else ""
            message = f"{result.probe.name}: {finding.title}{more}"
            if finding.detail:
                message += f"\n{finding.detail.splitlines()[0][:200]}"
        checks.add_row(summary.id, summary.severity.value, _verdict(summary), str(summary.runs), redactor.text(message))
    console.print(checks)
    if skipped:
        console.print(Text(f"{skipped} checks did not apply to any probe", style="dim"))
    if run.scenarios:
        _render_scenarios(run.scenarios, console, redactor)
    latency = run.latency()
    if latency:
        table = Table(title="Latency", title_justify="left")
        for column in ("metric", "n", "p50", "p90", "p95", "p99", "max", "unit"):
            table.add_column(column, justify="left" if column in ("metric", "unit") else "right")
        for name, unit in METRICS.items():
            dist = latency.get(name)
            if dist is None:
                continue
            p = dist.percentiles
            cells = [f"{v:.1f}" for v in (p["p50"], p["p90"], p["p95"], p["p99"], dist.max)]
            table.add_row(name, str(dist.n), *cells, unit)
        console.print(table)
    counts = run.counts()
    verdict = Text("PASSED", style="bold green") if run.passed else Text("FAILED", style="bold red")
    line = Text.assemble(
        verdict,
        f": {counts['checks_passed']} checks passed, {counts['errors']} failed, {counts['warnings']} warnings, "
        f"{counts['exchanges']} requests",
    )
    if counts["scenarios"]:
        line.append(f"; {counts['scenarios'] - counts['scenarios_failed']} of {counts['scenarios']} scenarios passed")
    if run.info.strict and counts["warnings"]:
        line.append(" (strict: warnings fail)")
    if run.stopped_early:
        line.append(f"\nStopped early: {redactor.text(run.stopped_early)}")
    if run.interrupted:
        line.append(f"\nInterrupted ({run.interrupted}): the reports hold what was measured until then.")
    console.print(line)


def _render_scenarios(results: list[ScenarioResult], console: Console, redactor: Redactor) -> None:
    table = Table(title="Scenarios", title_justify="left")
    for column in ("scenario", "result", "turns", "requests", "ended", "first failure"):
        table.add_column(column, overflow="fold", justify="right" if column in ("turns", "requests") else "left")
    for result in results:
        passed_turns = sum(t.passed for t in result.turns)
        requests = sum(len(t.exchanges) for t in result.turns)
        failure = ""
        for turn in result.turns:
            reasons = [e.message for e in turn.failed_expectations] + turn.failed_checks
            if reasons:
                failure = f"turn {turn.index}: {reasons[0]}"
                break
        verdict = Text("PASS", style="green") if result.passed else Text("FAIL", style="bold red")
        table.add_row(
            Text(redactor.text(result.label)),
            verdict,
            f"{passed_turns}/{len(result.turns)}",
            str(requests),
            result.ended_reason,
            Text(redactor.text(failure[:300])),
        )
    console.print(table)
    for result in results:
        if result.passed:
            continue
        console.print(Text(f"Transcript of {result.label} ({result.source}):", style="bold"))
        for role, text in result.transcript[-40:]:
            console.print(Text(f"  {role:>11}: ", style="dim") + Text(redactor.text(text)[:400]))


class TerminalReport:
    """Progress lines on stderr; tables on stdout when the run ends."""

    def __init__(self, out: Console, err: Console, redactor: Redactor) -> None:
        self.out = out
        self.err = err
        self.redactor = redactor

    def handle_event(self, event: RunEvent) -> None:
        """Render one event."""
        if isinstance(event, RunStarted):
            info = event.info
            where = f"{info.url} (built-in endpoint)" if info.builtin else info.url
            what = f"{len(info.scenarios)} scenarios" if info.suites else f"{len(info.probes)} probes"
            self.err.print(f"vapi-harness: checking {self.redactor.text(where)}, {what}", highlight=False)
        elif isinstance(event, ExchangeFinished):
            self._progress(event)
        elif isinstance(event, ScenarioFinished):
            result = event.result
            mark = "[green]✓[/green]" if result.passed else "[red]✗[/red]"
            turns = f"{sum(t.passed for t in result.turns)}/{len(result.turns)} turns"
            self.err.print(
                f" {mark} {self.redactor.text(result.label)}  {turns}  {result.ended_reason}", highlight=False
            )
        elif isinstance(event, RunFinished):
            render_results(event.run, self.out, self.redactor)

    def _progress(self, event: ExchangeFinished) -> None:
        result = event.result
        exchange = result.exchange
        failed = result.failed
        errors = sum(f.severity is Severity.ERROR for f in failed)
        status = str(exchange.status) if exchange.status is not None else exchange.outcome.value
        ttft = result.metrics.get("ttft_ms")
        timing = f"ttft {ttft:.0f} ms" if ttft is not None else f"{result.metrics.get('total_ms') or 0:.0f} ms"
        mark = "[red]✗[/red]" if errors else ("[yellow]![/yellow]" if failed else "[green]✓[/green]")
        repeat = f"#{result.repeat} " if result.repeat > 1 else ""
        note = f"  {failed[0].check}: {self.redactor.text(failed[0].title)}" if failed else ""
        self.err.print(f" {mark} {repeat}{result.probe.name:<20} {status:<5} {timing}{note}", highlight=False)

    def close(self) -> None:
        """Nothing to release."""
