"""A self-contained HTML report, rendered from the JSON document alone: summary, checks, latency plots, a chunk
timeline per request, and the transcripts of played scenarios.

Plots are drawn by matplotlib into inline SVG (text kept as text), so the file needs no script, CDN or network
and opens from a CI artifact offline.
"""

from __future__ import annotations

import html
import io
import itertools
from collections.abc import Sequence
from typing import Any

from harness.reporting.document import run_document
from harness.reporting.file_report import FileReport
from harness.results import RunResult

__all__ = ["BURST_SPAN_MS", "MAX_TIMELINES", "HtmlReport", "render_html", "render_load_html", "stalls_and_bursts"]

MAX_TIMELINES = 150  # requests drawn; a load run's others are summarised, keeping the file small
BURST_SPAN_MS = 5.0  # content events this close together arrived as one burst (a buffering server)
BURST_MIN_EVENTS = 5
_DEFAULT_STALL_MS = 1000.0
_COLORS = {
    "headers": "#7f8c8d",
    "first_event": "#2980b9",
    "first_content": "#27ae60",
    "first_sentence": "#8e44ad",
    "end": "#2c3e50",
    "stall": "#e74c3c",
    "burst": "#f39c12",
}
_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#222}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #ddd}
.verdict{display:inline-block;padding:2px 10px;border-radius:4px;color:#fff;font-weight:600}
.passed{background:#27ae60}.failed{background:#c0392b}.warn{color:#b9770e}.fail{color:#c0392b;font-weight:600}
.ok{color:#27ae60}.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:110px}.card b{display:block;font-size:20px}
table{border-collapse:collapse;width:100%;margin:8px 0}td,th{border-bottom:1px solid #eee;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#fafafa}td.num{text-align:right;font-variant-numeric:tabular-nums}
details{border:1px solid #e5e5e5;border-radius:6px;margin:6px 0;padding:4px 10px}summary{cursor:pointer}
pre{white-space:pre-wrap;background:#f7f7f7;padding:6px;border-radius:4px;font-size:12px}
.figure svg{width:100%;max-width:100%;height:auto}.muted{color:#777}.role{color:#555;font-weight:600;white-space:nowrap}
"""


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def stalls_and_bursts(
    content_ms: Sequence[float], stall_ms: float, burst_span_ms: float = BURST_SPAN_MS
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Spans (start, end) in ms where content stalled longer than `stall_ms`, and where at least five content
    events arrived within `burst_span_ms` of each other (what a buffering server produces)."""
    times = sorted(content_ms)
    stalls = [(a, b) for a, b in itertools.pairwise(times) if b - a > stall_ms]
    bursts: list[tuple[float, float]] = []
    start = 0
    for i in range(1, len(times) + 1):
        if i == len(times) or times[i] - times[i - 1] > burst_span_ms:
            if i - start >= BURST_MIN_EVENTS:
                bursts.append((times[start], times[i - 1]))
            start = i
    return stalls, bursts


class _Plots:
    """matplotlib figures to inline SVG; imported on first use (only HTML reports need it)."""

    def __init__(self) -> None:
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure

        self._figure = Figure
        self._rc: Any = {"svg.fonttype": "none", "svg.hashsalt": "vapi-harness", "font.size": 9}
        self._matplotlib = matplotlib

    def _svg(self, figure: Any) -> str:
        buffer = io.StringIO()
        with self._matplotlib.rc_context(self._rc):
            figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
        text = buffer.getvalue()
        return text[text.index("<svg") :]

    def timeline(self, exchange: dict[str, Any], stall_ms: float) -> str:
        """Every event of one request on a time axis from its start, with stalls and bursts marked."""
        with self._matplotlib.rc_context(self._rc):
            figure = self._figure(figsize=(10, 1.7))
            ax = figure.add_subplot()
        items = exchange["timeline"]
        metrics = exchange["metrics"]
        content = [i["t_ms"] for i in items if i["kind"] == "event" and i.get("content") and not i.get("ignored")]
        tools = [i["t_ms"] for i in items if i["kind"] == "event" and i.get("tool_call")]
        other = [i["t_ms"] for i in items if i["kind"] == "event" and not i.get("content") and not i.get("tool_call")]
        reads = [i["t_ms"] for i in items if i["kind"] == "bytes"]
        stalls, bursts = stalls_and_bursts(content, stall_ms)
        span = max([1.0, *(i["t_ms"] for i in items)])
        for start, end in stalls:
            ax.axvspan(start, end, color=_COLORS["stall"], alpha=0.18, label="stall")
            ax.text((start + end) / 2, 0.97, f"stall {end - start:.0f} ms", ha="center", va="top", fontsize=8,
                    color=_COLORS["stall"])  # fmt: skip
        for start, end in bursts:
            pad = max(span * 0.006, 0.5)  # a burst takes no time: give it a visible width
            ax.axvspan(start - pad, end + pad, color=_COLORS["burst"], alpha=0.45, label="burst")
            count = sum(1 for t in content if start <= t <= end)
            ax.text(start - pad, 0.97, f"{count} chunks in {end - start:.1f} ms ", ha="right", va="top", fontsize=8,
                    color="#b9770e")  # fmt: skip
        ax.vlines(reads, 0.05, 0.3, color="#95a5a6", linewidth=0.8, label="bytes read")
        ax.vlines(other, 0.35, 0.65, color="#34495e", linewidth=1.0, label="event")
        ax.vlines(content, 0.35, 0.95, color=_COLORS["first_content"], linewidth=1.0, label="content")
        ax.vlines(tools, 0.35, 0.95, color="#d35400", linewidth=1.2, label="tool call")
        marks = {
            "headers": metrics.get("headers_ms"),
            "first_event": metrics.get("first_event_ms"),
            "first_content": metrics.get("ttft_ms"),
            "first_sentence": metrics.get("first_sentence_ms"),
            "end": metrics.get("total_ms"),
        }
        for name, value in marks.items():
            if value is not None:
                ax.axvline(value, color=_COLORS[name], linestyle="--", linewidth=1.1, label=name.replace("_", " "))
        ax.set_ylim(0, 1)
        ax.set_yticks([])
        ax.set_xlabel("ms from request start")
        ax.set_xlim(left=0, right=max([1.0, *(v for v in marks.values() if v is not None), *reads]) * 1.02)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=False))
        ax.legend(unique.values(), unique.keys(), loc="upper center", bbox_to_anchor=(0.5, -0.45), ncol=6,
                  frameon=False, fontsize=8)  # fmt: skip
        for side in ("top", "right", "left"):
            ax.spines[side].set_visible(False)
        return self._svg(figure)

    def distributions(self, samples: dict[str, list[float]]) -> str:
        """Cumulative distributions (CDF) of time to first content and to first sentence."""
        with self._matplotlib.rc_context(self._rc):
            figure = self._figure(figsize=(10, 2.6))
            ax = figure.add_subplot()
        colors = {"ttft_ms": _COLORS["first_content"], "first_sentence_ms": _COLORS["first_sentence"]}
        for name, values in samples.items():
            if not values:
                continue
            ordered = sorted(values)
            share = [(i + 1) / len(ordered) for i in range(len(ordered))]
            ax.step(ordered, share, where="post", color=colors.get(name), label=f"{name} (n={len(ordered)})")
        ax.set_xlabel("ms")
        ax.set_ylabel("share of requests")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", frameon=False)
        return self._svg(figure)


def _summary(document: dict[str, Any]) -> str:
    summary = document["summary"]
    target = document["target"]
    verdict = document["verdict"]
    where = "built-in endpoint" if target["builtin"] else target["url"]
    strict = " · strict: warnings fail" if document["settings"].get("strict") else ""
    cards = [
        ("requests", summary["exchanges"]),
        ("checks passed", summary["checks_passed"]),
        ("errors", summary["errors"]),
        ("warnings", summary["warnings"]),
    ]
    if summary.get("scenarios"):
        cards.append(
            ("scenarios passed", f"{summary['scenarios'] - summary['scenarios_failed']}/{summary['scenarios']}")
        )
    parts = [
        f"<h1>vapi-harness report <span class='verdict {_e(verdict)}'>{_e(verdict.upper())}</span></h1>",
        f"<div class='muted'>{_e(where)} · model {_e(target['model'])} · metadataSendMode "
        f"{_e(target['metadata_send_mode'])} · run {_e(document['run_id'])} · {_e(document['started_at'])}"
        f"{strict}</div>",
        "<div class='cards'>" + "".join(f"<div class='card'><b>{_e(v)}</b>{_e(k)}</div>" for k, v in cards) + "</div>",
    ]
    for key, label in (("interrupted", "Interrupted"), ("stopped_early", "Stopped early")):
        if document.get(key):
            parts.append(f"<p class='fail'>{label}: {_e(document[key])}</p>")
    return "\n".join(parts)


def _checks(document: dict[str, Any]) -> str:
    failed_rows: list[str] = []
    passed_rows: list[str] = []
    ordered = sorted(document["checks"], key=lambda c: (c["status"] != "failed", c["severity"] != "error"))
    for check in ordered:
        if check["status"] == "skipped":
            continue
        if check["status"] == "failed":
            worst = "error" if any(f["severity"] == "error" for f in check["failures"]) else "warning"
            result = "<span class='fail'>FAIL</span>" if worst == "error" else "<span class='warn'>WARN</span>"
            first = check["failures"][0]
            message = f"{_e(first['probe'])}: {_e(first['title'])}"
            if first.get("detail"):
                message += f"<pre>{_e(first['detail'][:1500])}</pre>"
            if len(check["failures"]) > 1:
                message += f"<span class='muted'>and {len(check['failures']) - 1} more</span>"
            rows = failed_rows
        else:
            result, message = "<span class='ok'>PASS</span>", f"<span class='muted'>{_e(check['rationale'])}</span>"
            rows = passed_rows
        rows.append(f"<tr><td><code>{_e(check['id'])}</code></td><td>{_e(check['severity'])}</td><td>{result}</td>"
                    f"<td class='num'>{check['runs']}</td><td>{message}</td></tr>")  # fmt: skip
    head = "<tr><th>check</th><th>severity</th><th>result</th><th>runs</th><th>message</th></tr>"
    parts = ["<h2>Checks</h2>"]
    if failed_rows:
        parts.append(f"<table id='failed-checks'>{head}{''.join(failed_rows)}</table>")
    else:
        parts.append("<p class='ok'>No check failed.</p>")
    if passed_rows:
        parts.append(f"<details><summary>{len(passed_rows)} checks passed</summary>"
                     f"<table>{head}{''.join(passed_rows)}</table></details>")  # fmt: skip
    return "".join(parts)


def _latency(document: dict[str, Any], plots: _Plots) -> str:
    latency = document.get("latency") or {}
    if not latency:
        return ""
    rows = "".join(
        f"<tr><td>{_e(name)}</td><td class='num'>{d['n']}</td>"
        + "".join(f"<td class='num'>{d[k]:.1f}</td>" for k in ("p50", "p90", "p95", "p99", "max"))
        + "</tr>"
        for name, d in latency.items()
    )
    head = "<tr><th>metric</th><th>n</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>max</th></tr>"
    samples = {
        name: [e["metrics"][name] for e in document["exchanges"] if e["metrics"].get(name) is not None]
        for name in ("ttft_ms", "first_sentence_ms")
    }
    figure = f"<div class='figure' id='distributions'>{plots.distributions(samples)}</div>"
    return f"<h2>Latency</h2><table>{head}{rows}</table>{figure}"


def _scenarios(document: dict[str, Any]) -> str:
    scenarios = document.get("scenarios") or []
    if not scenarios:
        return ""
    parts = ["<h2>Scenarios</h2>"]
    for scenario in scenarios:
        passed = scenario["verdict"] == "passed"
        mark = "<span class='ok'>PASS</span>" if passed else "<span class='fail'>FAIL</span>"
        label = scenario["name"] + (f" [call {scenario['copy'] + 1}]" if scenario["copy"] else "")
        rows = []
        for turn in scenario["turns"]:
            timing = turn["timing"]
            cells = "".join(
                f"<td class='num'>{'' if timing.get(k) is None else f'{timing[k]:.0f}'}</td>"
                for k in ("ttft_ms", "first_sentence_ms", "total_ms")
            )
            problems = [e["message"] for e in turn["expectations"] if not e["passed"]] + turn["failed_checks"]
            verdict = "<span class='ok'>✓</span>" if turn["verdict"] == "passed" else "<span class='fail'>✗</span>"
            tools = ", ".join(turn["tool_calls"])
            rows.append(
                f"<tr><td>{verdict} {turn['index']}</td><td>{_e(turn['user'] or '(call start)')}</td>"
                f"<td>{_e(turn['spoken'][:400])}</td><td>{_e(tools)}</td>{cells}"
                f"<td class='fail'>{'<br>'.join(_e(p) for p in problems)}</td></tr>"
            )
        head = ("<tr><th>turn</th><th>caller</th><th>assistant said</th><th>tools</th><th>ttft ms</th>"
                "<th>first sentence ms</th><th>total ms</th><th>problems</th></tr>")  # fmt: skip
        transcript = "".join(
            f"<div><span class='role'>{_e(line['role'])}:</span> {_e(line['text'])}</div>"
            for line in scenario["transcript"]
        )
        parts.append(
            f"<details{'' if passed else ' open'}><summary>{mark} {_e(label)} <span class='muted'>"
            f"{_e(scenario['source'])} · ended: {_e(scenario['ended_reason'])}</span></summary>"
            f"<table>{head}{''.join(rows)}</table><h3>Transcript</h3>{transcript}</details>"
        )
    return "\n".join(parts)


def _requests(document: dict[str, Any], plots: _Plots, stall_ms: float) -> str:
    exchanges = document["exchanges"]
    any_errors = any(f["status"] == "failed" and f["severity"] == "error" for e in exchanges for f in e["findings"])
    parts = ["<h2>Requests</h2><p class='muted'>Each request's chunk timeline: bytes read, events, content, "
             "tool calls; dashed lines mark headers, first event, first content, first sentence and the end. "
             f"Red spans are stalls longer than {stall_ms:g} ms; orange spans are bursts (five or more content "
             f"events within {BURST_SPAN_MS:g} ms of each other, as a buffering server sends them).</p>"]  # fmt: skip
    for index, exchange in enumerate(exchanges[:MAX_TIMELINES]):
        failed = [f for f in exchange["findings"] if f["status"] == "failed"]
        errors = [f for f in failed if f["severity"] == "error"]
        mark = (
            "<span class='fail'>✗</span>"
            if errors
            else ("<span class='warn'>!</span>" if failed else "<span class='ok'>✓</span>")
        )
        response = exchange["response"]
        status = response["status"] if response["status"] is not None else response["outcome"]
        metrics = exchange["metrics"]
        figures = " · ".join(
            f"{k} {metrics[k]:.0f} ms" for k in ("ttft_ms", "first_sentence_ms", "total_ms", "max_gap_ms")
            if metrics.get(k) is not None
        )  # fmt: skip
        findings = "".join(
            f"<li class='{'fail' if f['severity'] == 'error' else 'warn'}'><code>{_e(f['check'])}</code>: "
            f"{_e(f['title'])}</li>"
            for f in failed
        )
        timeline = ""
        if exchange["timeline"]:
            timeline = (f"<div class='figure timeline' id='timeline-{index}' data-probe='{_e(exchange['probe'])}'>"
                        f"{plots.timeline(exchange, stall_ms)}</div>")  # fmt: skip
        text = response.get("text") or ""
        said = f"<div class='muted'>said: {_e(text[:300])}{'…' if len(text) > 300 else ''}</div>" if text else ""
        opened = bool(errors) or (index == 0 and not any_errors)
        parts.append(
            f"<details{' open' if opened else ''}><summary>{mark} <b>{_e(exchange['probe'])}</b> "
            f"<span class='muted'>{_e(status)} · {_e(figures)}</span></summary>"
            f"<ul>{findings}</ul>{said}{timeline}</details>"
        )
    if len(exchanges) > MAX_TIMELINES:
        parts.append(f"<p class='muted'>{len(exchanges) - MAX_TIMELINES} more requests are in the JSON report.</p>")
    return "\n".join(parts)


def render_html(document: dict[str, Any]) -> str:
    """The whole page, from a report document (as `report.json` holds it)."""
    plots = _Plots()
    stall_ms = float((document["settings"].get("thresholds") or {}).get("max_stall_ms") or _DEFAULT_STALL_MS)
    body = "\n".join(
        [
            _summary(document),
            _checks(document),
            _scenarios(document),
            _requests(document, plots, stall_ms),
            _latency(document, plots),
        ]
    )
    title = f"vapi-harness {document['verdict']} · {document['run_id']}"
    page = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{_CSS}</style></head>"
            f"<body>{body}<p class='muted'>vapi-harness {_e(document['tool']['version'])} · report schema "
            f"{document['schema_version']}</p></body></html>")  # fmt: skip
    return page


def _page(title: str, body: str, version: str) -> str:
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{_CSS}</style></head>"
            f"<body>{body}<p class='muted'>vapi-harness {_e(version)}</p></body></html>")  # fmt: skip


def render_load_html(summary: dict[str, Any], samples: dict[str, list[float]], version: str) -> str:
    """A load run's page: the SLO verdicts, turns and errors by class, exact percentiles, and the CDFs of time
    to first content and to first sentence over every turn (`summary` as `vapi-harness load` writes it)."""
    plots = _Plots()
    slos = summary.get("slos") or []
    passed = all(s["met"] for s in slos)
    verdict = "passed" if passed else "failed"
    cards = [("turns", summary["turns"]), ("error rate", f"{summary['error_rate']:.2%}"),
             ("SLOs met", f"{sum(s['met'] for s in slos)}/{len(slos)}")]  # fmt: skip
    parts = [
        f"<h1>vapi-harness load <span class='verdict {verdict}'>{verdict.upper()}</span></h1>",
        f"<div class='muted'>{_e(summary.get('target', ''))} · profile {_e(summary.get('profile', ''))}</div>",
        "<div class='cards'>" + "".join(f"<div class='card'><b>{_e(v)}</b>{_e(k)}</div>" for k, v in cards) + "</div>",
        "<h2>SLOs</h2><table><tr><th>SLO</th><th>limit</th><th>measured</th><th>result</th></tr>",
    ]
    for slo in slos:
        value = "no samples" if slo["value"] is None else f"{slo['value']:.4g}"
        mark = "<span class='ok'>met</span>" if slo["met"] else "<span class='fail'>BROKEN</span>"
        parts.append(f"<tr><td><code>{_e(slo['name'])}</code></td><td class='num'>{slo['limit']:g}</td>"
                     f"<td class='num'>{_e(value)}</td><td>{mark}</td></tr>")  # fmt: skip
    parts.append("</table>")
    if summary.get("breakpoint"):
        point = summary["breakpoint"]
        parts.append(f"<p>Breakpoint: the highest level that held was {_e(point['held_users'])} concurrent calls.</p>")
    head = "<tr><th>metric</th><th>n</th><th>p50</th><th>p90</th><th>p95</th><th>p99</th><th>max</th></tr>"
    rows = "".join(
        f"<tr><td>{_e(name)}</td><td class='num'>{m['n']}</td>"
        + "".join(f"<td class='num'>{m[k]:.1f}</td>" for k in ("p50", "p90", "p95", "p99", "max"))
        + "</tr>"
        for name, m in summary["metrics"].items()
    )
    parts.append(f"<h2>Voice latency (ms, exact)</h2><table>{head}{rows}</table>")
    chosen = {k: samples.get(k, []) for k in ("ttft_ms", "first_sentence_ms")}
    parts.append(f"<div class='figure' id='distributions'>{plots.distributions(chosen)}</div>")
    if summary["errors"]:
        errors = "".join(f"<tr><td><code>{_e(k)}</code></td><td class='num'>{v}</td></tr>"
                         for k, v in sorted(summary["errors"].items()))  # fmt: skip
        parts.append(f"<h2>Failed turns</h2><table><tr><th>class</th><th>turns</th></tr>{errors}</table>")
    return _page(f"vapi-harness load {verdict}", "\n".join(parts), version)


class HtmlReport(FileReport):
    """Writes the HTML report when the run ends (or is cut short)."""

    def render(self, run: RunResult) -> str:
        """The run as one HTML page."""
        return render_html(run_document(run, self.redactor))
