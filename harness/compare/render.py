"""A comparison told in words: lines for the terminal (regressions first, 80 columns) and Markdown for a
pull-request comment or `$GITHUB_STEP_SUMMARY`."""

from __future__ import annotations

from harness.compare.comparison import Comparison, ItemChange, Move
from harness.compare.stats import MetricChange, Verdict

__all__ = ["comparison_markdown", "terminal_lines"]

_SHORT = {
    Verdict.REGRESSION: "REGRESSED",
    Verdict.NOT_SIGNIFICANT: "in noise",
    Verdict.IMPROVEMENT: "improved",
    Verdict.OK: "ok",
    Verdict.TOO_FEW: "too few",
    Verdict.MISSING: "no samples",
}
_ORDER = list(Verdict)


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:+.1f}" if signed else f"{value:.1f}"


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:+.0f}%"


def _count(n: int) -> str:
    return str(n) if n < 10_000 else f"{n / 1000:.0f}k"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _interval(row: MetricChange) -> str:
    if row.interval is None:
        return ""
    low, high = row.interval
    return f"{row.confidence:.0%} interval of the change {low:+.1f} to {high:+.1f} ms"


def _why(row: MetricChange) -> str:
    """The reason in a sentence, for the lines under a regression (and the Markdown)."""
    if row.verdict is Verdict.TOO_FEW:
        return f"{row.stat} needs {row.needed} samples in each run (has {row.n_baseline} and {row.n_new})"
    if row.verdict is Verdict.MISSING:
        return "measured in one run only"
    return _interval(row) + f" (threshold {row.threshold.text})"


def _item_line(item: ItemChange) -> str:
    was = item.baseline or "absent"
    now = item.new or "absent"
    return f"{item.kind.value} {item.name}: {item.move.value} ({was} -> {now})"


def terminal_lines(comparison: Comparison, width: int = 80) -> list[str]:
    """Regressions first, then what improved or was not judged, notes, the latency table and the verdict."""
    base = comparison.baseline
    lines = [f"Compared with {base.source} ({base.kind.value}, run {base.run_id}, vapi-harness {base.version})"]
    regressed = [m for m in comparison.metrics if m.verdict is Verdict.REGRESSION]
    for row in regressed:
        lines.append(
            f" REGRESSION  {row.name}: {_number(row.baseline)} -> {_number(row.new)} ms, "
            f"{_number(row.change, True)} ms ({_pct(row.change_pct)}), n {row.n_baseline}/{row.n_new}"
        )
        lines.append("             " + _why(row))
    for item in comparison.items:
        mark = {Move.NEWLY_FAILING: " REGRESSION  ", Move.NEWLY_PASSING: " NOW PASSES  "}.get(
            item.move, " NOTE        "
        )
        lines.append(mark + _item_line(item))
    lines += [f" note: {note}" for note in comparison.notes]
    judged = [m for m in comparison.metrics if m.verdict is not Verdict.TOO_FEW]
    if judged:
        lines.append(
            f"{'Latency (ms)':<23} {'n base/new':>9} {'baseline':>8} {'new':>8} {'change':>8} {'%':>7}  verdict"
        )
        for row in sorted(judged, key=lambda m: m.verdict is not Verdict.REGRESSION):
            n = f"{_count(row.n_baseline)}/{_count(row.n_new)}"
            lines.append(
                f"{row.name:<23} {n:>9} {_number(row.baseline):>8} {_number(row.new):>8} "
                f"{_number(row.change, True):>8} {_pct(row.change_pct):>7}  {_SHORT[row.verdict]}"
            )
        if any(m.verdict is Verdict.NOT_SIGNIFICANT for m in judged):
            lines.append(f"in noise: above the threshold, but its {comparison.confidence:.0%} interval reaches 0")
    too_few = len(comparison.metrics) - len(judged)
    if too_few:
        lines.append(f"{too_few} percentiles not judged for too few samples: each run needs 5 for a p50,")
        lines.append("10 for a p90, 20 for a p95 and 100 for a p99 (--repeat adds samples)")
    if not comparison.metrics:
        lines.append("No latency was measured in either run.")
    if comparison.regressed:
        lines.append("REGRESSION: " + ", ".join(comparison.regressions))
    else:
        lines.append("No regression.")
    return [_cut(line, width) for line in lines]


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def comparison_markdown(comparison: Comparison) -> str:
    """The comparison as Markdown: verdict, regressions, changed verdicts, and every percentile."""
    base, new = comparison.baseline, comparison.new
    mark = "❌ regression" if comparison.regressed else "✅ no regression"
    lines = [
        f"## vapi-harness compare: {mark}",
        "",
        f"Baseline `{_cell(base.source)}` ({base.kind.value}, run {_cell(base.run_id)}) against "
        f"`{_cell(new.source)}` (run {_cell(new.run_id)}). A latency regression rises beyond its threshold and "
        f"its {comparison.confidence:.0%} bootstrap interval lies above 0.",
    ]
    if comparison.regressions:
        lines += ["", "**Regressions:** " + ", ".join(f"`{_cell(r)}`" for r in comparison.regressions)]
    for note in comparison.notes:
        lines += ["", f"> {_cell(note)}"]
    if comparison.items:
        lines += ["", "| kind | name | baseline | new | change |", "|---|---|---|---|---|"]
        for item in comparison.items:
            lines.append(
                f"| {item.kind.value} | `{_cell(item.name)}` | {item.baseline or 'absent'} | "
                f"{item.new or 'absent'} | {item.move.value} |"
            )
    if comparison.metrics:
        lines += [
            "",
            "| metric | n (baseline/new) | baseline ms | new ms | change ms | change % | interval ms | threshold "
            "| verdict |",
            "|---|---:|---:|---:|---:|---:|---:|---|---|",
        ]
        for row in sorted(comparison.metrics, key=lambda m: _ORDER.index(m.verdict)):
            interval = "" if row.interval is None else f"{row.interval[0]:+.1f} to {row.interval[1]:+.1f}"
            verdict = f"**{row.verdict.value}**" if row.verdict is Verdict.REGRESSION else row.verdict.value
            if row.verdict is Verdict.TOO_FEW:
                verdict += f" (needs {row.needed})"
            lines.append(
                f"| `{row.name}` | {row.n_baseline}/{row.n_new} | {_number(row.baseline)} | "
                f"{_number(row.new)} | {_number(row.change, True)} | {_pct(row.change_pct)} | {interval} | "
                f"{row.threshold.text} | {verdict} |"
            )
    return "\n".join(lines) + "\n"
