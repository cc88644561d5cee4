"""The comparison as HTML: a section (in `check --baseline`'s page too) and a page of its own (`compare --html`),
with both runs' cumulative distributions overlaid per metric, drawn by matplotlib into inline SVG."""

from __future__ import annotations

import html
from typing import Any

from harness.compare.comparison import Comparison, Move
from harness.compare.stats import Verdict
from harness.metrics import percentile
from harness.reporting import Plots, html_page

__all__ = ["comparison_page", "comparison_section"]

_CDF_POINTS = 400  # a CDF of 100,000 samples is drawn through this many quantiles: the same curve, a small file
_CSS = (
    ".regression{color:#c0392b;font-weight:600}.improvement{color:#27ae60}.cdfs{display:grid;"
    "grid-template-columns:repeat(auto-fill,minmax(320px,1fr));gap:8px}.regressed{background:#c0392b}"
)


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _curve(values: list[float]) -> tuple[list[float], list[float]]:
    """x and share of a step CDF from 0 ms; a long sample is drawn through evenly spaced quantiles."""
    ordered = sorted(values)
    if len(ordered) <= _CDF_POINTS:
        return [0.0, *ordered], [0.0] + [(i + 1) / len(ordered) for i in range(len(ordered))]
    shares = [i / _CDF_POINTS for i in range(1, _CDF_POINTS + 1)]
    return [0.0] + [percentile(ordered, s) for s in shares], [0.0, *shares]


class _ComparePlots(Plots):
    def overlay(self, metric: str, baseline: list[float], new: list[float]) -> str:
        """Both runs' cumulative distributions of one metric on one axis."""
        with self._matplotlib.rc_context(self._rc):
            figure = self._figure(figsize=(5, 2.4))
            ax = figure.add_subplot()
        for values, label, style in ((baseline, "baseline", "--"), (new, "new", "-")):
            if not values:
                continue
            x, y = _curve(values)
            color = "#7f8c8d" if label == "baseline" else "#2980b9"
            ax.step(x, y, style, where="post", color=color, label=f"{label} (n={len(values)})")
        ax.set_title(metric)
        ax.set_xlabel("ms")
        ax.set_ylabel("share")
        ax.set_xlim(left=0)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", frameon=False, fontsize=8)
        return self._svg(figure)


def _metric_rows(comparison: Comparison) -> str:
    rows = []
    for row in comparison.metrics:
        css = row.verdict.value.replace(" ", "-")
        interval = "" if row.interval is None else f"{row.interval[0]:+.1f} to {row.interval[1]:+.1f}"
        cells = [
            "" if value is None else f"{value:+.1f}" if signed else f"{value:.1f}"
            for value, signed in ((row.baseline, False), (row.new, False), (row.change, True))
        ]
        pct = "" if row.change_pct is None else f"{row.change_pct:+.0f}%"
        verdict = row.verdict.value + (f" (needs {row.needed})" if row.verdict is Verdict.TOO_FEW else "")
        rows.append(
            f"<tr data-row='{_e(row.name)}' data-verdict='{_e(row.verdict.value)}'><td><code>{_e(row.name)}</code>"
            f"</td><td class='num'>{row.n_baseline}/{row.n_new}</td>"
            + "".join(f"<td class='num'>{c}</td>" for c in cells)
            + f"<td class='num'>{pct}</td><td class='num'>{interval}</td><td>{_e(row.threshold.text)}</td>"
            f"<td class='{css}'>{_e(verdict)}</td></tr>"
        )
    head = (
        "<tr><th>metric</th><th class='num'>n base/new</th><th class='num'>baseline ms</th>"
        "<th class='num'>new ms</th><th class='num'>change ms</th><th class='num'>%</th>"
        f"<th class='num'>{comparison.confidence:.0%} interval ms</th><th>threshold</th><th>verdict</th></tr>"
    )
    return f"<table id='comparison-metrics'>{head}{''.join(rows)}</table>"


def _item_rows(comparison: Comparison) -> str:
    if not comparison.items:
        return "<p class='muted' id='comparison-items'>No check, scenario or SLO changed its verdict.</p>"
    rows = "".join(
        f"<tr data-move='{_e(i.move.value)}'><td>{_e(i.kind.value)}</td><td><code>{_e(i.name)}</code></td>"
        f"<td>{_e(i.baseline or 'absent')}</td><td>{_e(i.new or 'absent')}</td>"
        f"<td class='{'regression' if i.move is Move.NEWLY_FAILING else ''}'>{_e(i.move.value)}</td></tr>"
        for i in comparison.items
    )
    head = "<tr><th>kind</th><th>name</th><th>baseline</th><th>new</th><th>change</th></tr>"
    return f"<table id='comparison-items'>{head}{rows}</table>"


def comparison_section(comparison: Comparison) -> str:
    """The comparison as a section of a page: verdict, regressions, every percentile, changed verdicts, CDFs."""
    plots = _ComparePlots()
    base, new = comparison.baseline, comparison.new
    verdict = "regressed" if comparison.regressed else "passed"
    label = "REGRESSION" if comparison.regressed else "NO REGRESSION"
    parts = [
        f"<section id='comparison'><style>{_CSS}</style>",
        f"<h2>Compared with the baseline <span class='verdict {verdict}' id='comparison-verdict'>{label}</span></h2>",
        f"<p class='muted'>baseline {_e(base.source)} ({_e(base.kind.value)}, run {_e(base.run_id)}, vapi-harness "
        f"{_e(base.version)}) · new {_e(new.source)} (run {_e(new.run_id)}). A latency regression rises beyond its "
        f"threshold and its {comparison.confidence:.0%} bootstrap interval of the change lies above 0.</p>",
    ]
    if comparison.regressions:
        items = "".join(f"<li><code>{_e(r)}</code></li>" for r in comparison.regressions)
        parts.append(f"<ul class='regression' id='regressions'>{items}</ul>")
    parts += [f"<p class='muted'>Note: {_e(note)}</p>" for note in comparison.notes]
    parts += [_item_rows(comparison), _metric_rows(comparison)]
    metrics = list(dict.fromkeys(m.metric for m in comparison.metrics))
    figures = "".join(
        f"<div class='figure cdf' data-metric='{_e(m)}'>"
        f"{plots.overlay(m, list(base.samples.get(m, [])), list(new.samples.get(m, [])))}</div>"
        for m in metrics
    )
    if figures:
        parts.append(f"<h3>Distributions (baseline dashed)</h3><div class='cdfs' id='comparison-cdfs'>{figures}</div>")
    parts.append("</section>")
    return "\n".join(parts)


def comparison_page(comparison: Comparison, version: str) -> str:
    """A page of its own for `compare --html`."""
    title = f"vapi-harness compare · {'regression' if comparison.regressed else 'no regression'}"
    return html_page(title, f"<h1>vapi-harness compare</h1>{comparison_section(comparison)}", version)
