"""A short Markdown summary of a run, for `$GITHUB_STEP_SUMMARY` or a pull-request comment.

Rendered from the JSON document (like every saved-run view), so it shows the same figures as the other reports.
"""

from __future__ import annotations

from typing import Any

from harness.reporting.document import run_document
from harness.reporting.file_report import FileReport
from harness.results import RunResult

__all__ = ["MarkdownReport", "markdown_summary"]

_MAX_ROWS = 20


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def markdown_summary(document: dict[str, Any]) -> str:
    """The summary: verdict, failing checks, scenarios, and latency percentiles."""
    summary = document["summary"]
    target = document["target"]
    passed = document["verdict"] == "passed"
    where = "the built-in endpoint" if target["builtin"] else f"`{target['url']}`"
    lines = [
        f"## vapi-harness: {'✅ passed' if passed else '❌ failed'}",
        "",
        f"Checked {where}: {summary['checks_passed']} checks passed, {summary['errors']} failed, "
        f"{summary['warnings']} warnings, {summary.get('checks_not_judged', 0)} not judged, "
        f"{summary['exchanges']} requests.",
    ]
    if summary.get("scenarios"):
        ok = summary["scenarios"] - summary["scenarios_failed"]
        lines[-1] += f" {ok} of {summary['scenarios']} scenarios passed."
    for reason, label in ((document.get("interrupted"), "Interrupted"), (document.get("stopped_early"), "Stopped")):
        if reason:
            lines += ["", f"**{label}:** {_cell(reason)}"]
    failing = [c for c in document["checks"] if c["status"] == "failed"]
    if failing:
        lines += ["", "| check | severity | where | message |", "|---|---|---|---|"]
        for check in failing[:_MAX_ROWS]:
            first = check["failures"][0]
            lines.append(
                f"| `{check['id']}` | {first['severity']} | {_cell(first['probe'])} | {_cell(first['title'])} |"
            )
    scenarios = document.get("scenarios") or []
    if scenarios:
        lines += ["", "| scenario | result | turns | first failure |", "|---|---|---|---|"]
        shown = sorted(scenarios, key=lambda s: s["verdict"] == "passed")[:_MAX_ROWS]
        for scenario in shown:
            turns = scenario["turns"]
            good = sum(t["verdict"] == "passed" for t in turns)
            failure = ""
            for turn in turns:
                reasons = [e["message"] for e in turn["expectations"] if not e["passed"]] + turn["failed_checks"]
                if reasons:
                    failure = f"turn {turn['index']}: {reasons[0]}"
                    break
            mark = "✅" if scenario["verdict"] == "passed" else "❌"
            label = scenario["name"] + (f" [call {scenario['copy'] + 1}]" if scenario["copy"] else "")
            lines.append(f"| {_cell(label)} | {mark} | {good}/{len(turns)} | {_cell(failure[:200])} |")
        if len(scenarios) > _MAX_ROWS:
            lines.append(f"| … {len(scenarios) - _MAX_ROWS} more | | | |")
    latency = document.get("latency") or {}
    rows = [
        (name, latency[name]) for name in ("ttft_ms", "first_sentence_ms", "total_ms", "max_gap_ms") if name in latency
    ]
    if rows:
        lines += ["", "| metric | n | p50 | p95 | p99 | max |", "|---|---:|---:|---:|---:|---:|"]
        for name, d in rows:
            lines.append(f"| {name} | {d['n']} | {d['p50']:.0f} | {d['p95']:.0f} | {d['p99']:.0f} | {d['max']:.0f} |")
    return "\n".join(lines) + "\n"


class MarkdownReport(FileReport):
    """Appends the summary to a file when the run ends (GitHub's step summary is appended to, too)."""

    append = True

    def render(self, run: RunResult) -> str:
        """The run's Markdown summary."""
        document = run_document(run, self.redactor)
        return markdown_summary(document) + "".join("\n" + s.markdown(document) for s in self.sections)
