"""The terminal while exploring: a progress bar on stderr (examples, examples/s, failures found), a line per new
failure as it is found, and the summary on stdout when the run ends, failures first, every line cut to the
console's width."""

from __future__ import annotations

import json

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.text import Text

from harness.checks import Severity
from harness.explore.results import ExampleJudged, ExploreEvent, ExploreFinished, ExploreResult, ExploreStarted, Failure
from harness.protocol import Redactor
from harness.reporting import INDENT, MARKS, first_line, print_line

__all__ = ["ExploreTerminal", "render_summary"]

_QUOTE_CHARS = 60


def _shape(failure: Failure, redactor: Redactor) -> str:
    """The smallest request in a few words: messages, stream, call kind, tools, the last user message."""
    facts = failure.summary
    request = failure.result.exchange.request
    parts = [
        f"{facts.get('messages')} messages",
        "stream" if request.stream else "stream: false",
        str(facts.get("kind")),
        f"{facts.get('tools')} tools",
        f"{len(request.body)} bytes",
    ]
    last = facts.get("lastUserMessage")
    if isinstance(last, str):
        quoted = last if len(last) <= _QUOTE_CHARS else last[: _QUOTE_CHARS - 1] + "…"
        parts.append(f"last user message {json.dumps(redactor.text(quoted), ensure_ascii=False)}")
    return ", ".join(parts)


def _failure(failure: Failure, console: Console, redactor: Redactor) -> None:
    mark = "FAIL" if failure.severity is Severity.ERROR else "WARN"
    steps = f"seen {failure.examples}x, {failure.shrink_steps} shrink steps"
    print_line(console, Text.assemble((f" {mark}  ", MARKS[mark]), (failure.key.check, "bold"), f"  {steps}"))
    for text in (failure.finding.title, first_line(failure.finding.detail)):
        if text:
            print_line(console, INDENT + redactor.text(text))
    print_line(console, INDENT + "smallest: " + _shape(failure, redactor), "dim")
    if failure.reproducer is not None:  # folded, not cut: the path is there to be copied
        replay = Text(INDENT + f"replay: vapi-harness check --url URL --replay {failure.reproducer}")
        console.print(replay, overflow="fold")


def render_summary(run: ExploreResult, console: Console, redactor: Redactor) -> None:
    """Failures first, then the verdict line and how the run ended."""
    failures = run.failures_first
    if failures:
        console.print(Text("Failures", style="bold"))
        for failure in failures:
            _failure(failure, console, redactor)
    verdict = Text("PASSED", style="bold green") if run.passed else Text("FAILED", style="bold red")
    line = Text.assemble(
        verdict,
        f": {run.examples} examples, {len(failures)} failures, {run.examples_per_s:.1f} examples/s, "
        f"seed {run.info.seed}",
    )
    if run.info.strict and any(f.severity is Severity.WARNING for f in failures):
        line.append(" (strict: warnings fail)")
    console.print(line)
    if run.rejected:
        print_line(console, f"{run.rejected} generated requests broke one of Vapi's rules and were not sent", "dim")
    for note in run.notes:
        print_line(console, f"Note: {redactor.text(note)}", "yellow")
    if run.stopped_early:
        print_line(console, f"Stopped early: {redactor.text(run.stopped_early)}")
    if run.interrupted:
        print_line(console, f"Interrupted ({run.interrupted}): the reports hold what was found until then.")


class ExploreTerminal:
    """A progress bar on stderr while exploring (live on a terminal, its last state once elsewhere); the summary
    on stdout."""

    def __init__(self, out: Console, err: Console, redactor: Redactor) -> None:
        self.out = out
        self.err = err
        self.redactor = redactor
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def handle_event(self, event: ExploreEvent) -> None:
        """Render one event."""
        if isinstance(event, ExploreStarted):
            info = event.info
            where = f"{info.url} (built-in endpoint)" if info.builtin else info.url
            print_line(self.err, f"vapi-harness: exploring {self.redactor.text(where)}, seed {info.seed}")
            self._start(info.max_examples)
        elif isinstance(event, ExampleJudged):
            self._advance(event)
        elif isinstance(event, ExploreFinished):
            self._stop()
            render_summary(event.run, self.out, self.redactor)

    def _start(self, total: int) -> None:
        if self.err.quiet:
            return
        self._progress = Progress(
            TextColumn("explore"),
            BarColumn(bar_width=20),
            TextColumn("{task.completed}/{task.total} examples"),
            TextColumn("{task.fields[rate]:.1f}/s"),
            TextColumn("{task.fields[failures]} failures"),
            console=self.err,
            refresh_per_second=4,
        )
        self._task = self._progress.add_task("explore", total=total, rate=0.0, failures=0)
        self._progress.start()

    def _advance(self, event: ExampleJudged) -> None:
        progress, task = self._progress, self._task
        run = event.run
        if progress is None or task is None:
            return
        elapsed_s = progress.tasks[0].elapsed or 0.0
        rate = run.examples / elapsed_s if elapsed_s > 0 else 0.0
        total = max(run.info.max_examples, run.examples)  # shrinking sends more than the generated examples
        progress.update(task, completed=run.examples, total=total, rate=rate, failures=len(run.failures))
        for key in event.new:
            text = Text.assemble(" ", ("✗", "red"), f" new failure after {event.index} examples: ")
            text.append(self.redactor.text(str(key)))
            text.truncate(self.err.width, overflow="ellipsis")
            progress.console.print(text, no_wrap=True, overflow="ellipsis", crop=True)

    def _stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    def close(self) -> None:
        """Stop the progress bar if the run ended without its final event."""
        self._stop()
