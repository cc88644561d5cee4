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

__all__ = [
    "BURST_SPAN_MS",
    "MAX_TIMELINES",
    "HtmlReport",
    "Plots",
    "html_page",
    "render_html",
    "render_load_html",
    "stalls_and_bursts",
]

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
.passed{background:#27ae60}.failed{background:#c0392b}.warnings{background:#d68910}.warn{color:#b9770e}.fail{color:#c0392b;font-weight:600}
.ok{color:#27ae60}.cards{display:flex;gap:12px;flex-wrap:wrap;margin:12px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:110px}.card b{display:block;font-size:20px}
table{border-collapse:collapse;width:100%;margin:8px 0}td,th{border-bottom:1px solid #eee;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#fafafa}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
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
        at_fault: dict[int, list[str]] = {}  # event index -> the checks it failed, errors first
        for finding in sorted(exchange["findings"], key=lambda f: f["severity"] != "error"):
            if finding["status"] == "failed" and finding.get("event") is not None:
                at_fault.setdefault(finding["event"], []).append(finding["check"])
        for item in items:
            if item["kind"] == "event" and item.get("index") in at_fault:
                ax.plot([item["t_ms"]], [0.5], marker="X", markersize=9, color=_COLORS["stall"], label="failed here",
                        linestyle="none")  # fmt: skip
                checks = at_fault[item["index"]]
                label = checks[0] + (f" (+{len(checks) - 1})" if len(checks) > 1 else "")
                ax.annotate(label, (item["t_ms"], 0.5), xytext=(6, 6), textcoords="offset points",
                            fontsize=8, color=_COLORS["stall"])  # fmt: skip
        ends = [i["t_ms"] for i in items if i["kind"] == "end"]
        marks = {
            "headers": metrics.get("headers_ms"),
            "first_event": metrics.get("first_event_ms"),
            "first_content": metrics.get("ttft_ms"),
            "first_sentence": metrics.get("first_sentence_ms"),
            "end": ends[-1] if ends else metrics.get("total_ms"),
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
            share = [0.0] + [(i + 1) / len(ordered) for i in range(len(ordered))]
            label = f"{name} (n={len(ordered)})"
            ax.step([0.0, *ordered], share, where="post", color=colors.get(name), label=label)  # from 0 at 0 ms
        ax.set_xlabel("ms")
        ax.set_ylabel("share of requests")
        ax.set_xlim(left=0)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)  # beside the axes, over no curve
        return self._svg(figure)


def _badge(document: dict[str, Any]) -> str:
    """PASSED, PASSED WITH WARNINGS (amber: not the same as a clean run) or FAILED."""
    verdict = document["verdict"]
    if verdict == "passed" and document["summary"].get("warnings"):
        return "<span class='verdict warnings' id='verdict'>PASSED WITH WARNINGS</span>"
    return f"<span class='verdict {_e(verdict)}' id='verdict'>{_e(verdict.upper())}</span>"


def _summary(document: dict[str, Any]) -> str:
    summary = document["summary"]
    target = document["target"]
    where = "built-in endpoint" if target["builtin"] else target["url"]
    strict = " · strict: warnings fail" if document["settings"].get("strict") else ""
    cards = [
        ("requests", summary["exchanges"]),
        ("checks passed", summary["checks_passed"]),
        ("errors", summary["errors"]),
        ("warnings", summary["warnings"]),
        ("not judged", summary.get("checks_not_judged", 0)),
    ]
    if summary.get("scenarios"):
        cards.append(
            ("scenarios passed", f"{summary['scenarios'] - summary['scenarios_failed']}/{summary['scenarios']}")
        )
    parts = [
        f"<h1>vapi-harness report {_badge(document)}</h1>",
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
    unjudged_rows: list[str] = []
    ordered = sorted(document["checks"], key=lambda c: (c["status"] != "failed", c["severity"] != "error"))
    for check in ordered:
        if check["status"] == "not_judged":
            unjudged_rows.append(
                f"<tr><td><code>{_e(check['id'])}</code></td><td>{_e(check['severity'])}</td>"
                f"<td class='muted'>not judged</td><td class='num'>0</td>"
                f"<td class='muted'>{_e(check.get('not_judged_reason', ''))}</td></tr>"
            )
            continue
        if check["status"] == "failed":
            worst = "error" if any(f["severity"] == "error" for f in check["failures"]) else "warning"
            result = "<span class='fail'>FAIL</span>" if worst == "error" else "<span class='warn'>WARN</span>"
            first = check["failures"][0]
            message = f"{_e(first['probe'])}: {_e(first['title'])}"
            if first.get("detail"):
                message += f"<pre>{_e(first['detail'][:1500])}</pre>"
            if first.get("note"):
                message += f"<div class='muted'>{_e(first['note'])}</div>"
            if len(check["failures"]) > 1:
                others = "".join(
                    f"<li>{_e(f['probe'])}{'' if f['repeat'] == 1 else ' #' + str(f['repeat'])}: {_e(f['title'])}</li>"
                    for f in check["failures"][1:]
                )
                message += (f"<details class='more'><summary>and {len(check['failures']) - 1} more</summary>"
                            f"<ul>{others}</ul></details>")  # fmt: skip
            rows = failed_rows
        else:
            result, message = "<span class='ok'>PASS</span>", f"<span class='muted'>{_e(check['rationale'])}</span>"
            rows = passed_rows
        rows.append(f"<tr><td><code>{_e(check['id'])}</code></td><td>{_e(check['severity'])}</td><td>{result}</td>"
                    f"<td class='num'>{check['runs']}</td><td>{message}</td></tr>")  # fmt: skip
    head = "<tr><th>check</th><th>severity</th><th>result</th><th class='num'>runs</th><th>message</th></tr>"
    parts = ["<h2>Checks</h2>"]
    if failed_rows:
        parts.append(f"<table id='failed-checks'>{head}{''.join(failed_rows)}</table>")
    else:
        parts.append("<p class='ok'>No check failed.</p>")
    if passed_rows:
        parts.append(f"<details><summary>{len(passed_rows)} checks passed</summary>"
                     f"<table>{head}{''.join(passed_rows)}</table></details>")  # fmt: skip
    if unjudged_rows:
        label = f"{len(unjudged_rows)} checks not judged (nothing to judge; not counted as passed)"
        parts.append(
            f"<details id='not-judged'><summary>{label}</summary>"
            f"<table>{head}{''.join(unjudged_rows)}</table></details>"
        )
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
    head = "<tr><th>metric</th>" + "".join(
        f"<th class='num'>{k}</th>" for k in ("n", "p50", "p90", "p95", "p99", "max")
    )
    head += "</tr>"
    # The same samples as the table above (the document's one source), never re-derived from the exchanges.
    samples = {
        name: list(latency[name].get("samples") or []) for name in ("ttft_ms", "first_sentence_ms") if name in latency
    }
    figure = ""
    if any(samples.values()):  # no content, no first sentence: nothing to draw
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
        head = ("<tr><th>turn</th><th>caller</th><th>assistant said</th><th>tools</th>"
                "<th class='num'>ttft ms</th><th class='num'>first sentence ms</th><th class='num'>total ms</th>"
                "<th>problems</th></tr>")  # fmt: skip
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
    # Requests of a failing scenario turn open too: the request itself may have passed every check.
    in_failed_turns = {
        name
        for scenario in document.get("scenarios") or []
        for turn in scenario["turns"]
        if turn["verdict"] == "failed"
        for name in turn["requests"]
    }
    nothing_failed = not any_errors and not in_failed_turns
    parts = ["<h2>Requests</h2><p class='muted'>Each request's chunk timeline: bytes read, events, content, "
             "tool calls; dashed lines mark headers, first event, first content, first sentence and the end. "
             f"Red spans are stalls longer than {stall_ms:g} ms; orange spans are bursts (five or more content "
             f"events within {BURST_SPAN_MS:g} ms of each other, as a buffering server sends them).</p>"]  # fmt: skip
    for index, exchange in enumerate(exchanges[:MAX_TIMELINES]):
        failed = [f for f in exchange["findings"] if f["status"] == "failed"]
        errors = [f for f in failed if f["severity"] == "error"]
        # A request with nothing judged (cut short, or not sent, because the endpoint hangs) is no pass.
        judged = any(f["status"] in ("passed", "failed") for f in exchange["findings"])
        response = exchange["response"]
        status = response["status"] if response["status"] is not None else response["outcome"]
        if errors:
            mark = "<span class='fail'>✗</span>"
        elif failed:
            mark = "<span class='warn'>!</span>"
        elif judged:
            mark = "<span class='ok'>✓</span>"
        else:
            mark = "<span class='muted unjudged' title='not judged'>&ndash;</span>"
            status = f"not judged: {response.get('error') or status}"
        metrics = exchange["metrics"]
        figures = " · ".join(
            f"{k} {metrics[k]:.0f} ms" for k in ("ttft_ms", "first_sentence_ms", "total_ms", "max_gap_ms")
            if metrics.get(k) is not None
        )  # fmt: skip
        findings = "".join(
            f"<li class='{'fail' if f['severity'] == 'error' else 'warn'}'><code>{_e(f['check'])}</code>: "
            f"{_e(f['title'])}{' <span class=muted>(' + _e(f['note']) + ')</span>' if f.get('note') else ''}</li>"
            for f in failed
        )
        timeline = ""
        if any(item["kind"] in ("bytes", "event") for item in exchange["timeline"]):
            timeline = (f"<div class='figure timeline' id='timeline-{index}' data-probe='{_e(exchange['probe'])}'>"
                        f"{plots.timeline(exchange, stall_ms)}</div>")  # fmt: skip
        elif exchange["timeline"]:  # nothing arrived: a plot would be empty
            why = response.get("error") or response["outcome"]
            timeline = f"<p class='muted nothing-arrived'>No body bytes arrived: {_e(why)}</p>"
        text = response.get("text") or ""
        said = f"<div class='muted'>said: {_e(text[:300])}{'…' if len(text) > 300 else ''}</div>" if text else ""
        opened = bool(errors) or exchange["probe"] in in_failed_turns or (index == 0 and nothing_failed)
        parts.append(
            f"<details{' open' if opened else ''}><summary>{mark} <b>{_e(exchange['probe'])}</b> "
            f"<span class='muted'>{' · '.join(_e(str(part)) for part in (status, figures) if part)}</span></summary>"
            f"<ul>{findings}</ul>{said}{timeline}</details>"
        )
    if len(exchanges) > MAX_TIMELINES:
        parts.append(f"<p class='muted'>{len(exchanges) - MAX_TIMELINES} more requests are in the JSON report.</p>")
    return "\n".join(parts)


def render_html(document: dict[str, Any], extra: Sequence[str] = ()) -> str:
    """The whole page, from a report document (as `report.json` holds it); `extra` sections go after the
    summary (a comparison with a baseline)."""
    plots = _Plots()
    stall_ms = float((document["settings"].get("thresholds") or {}).get("max_stall_ms") or _DEFAULT_STALL_MS)
    body = "\n".join(
        [
            _summary(document),
            *extra,
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


# The figures and the page of every HTML view, for the pages rendered elsewhere (harness.compare).
Plots = _Plots
html_page = _page

_LOAD_CSS = (
    ".banner{padding:6px 10px;border-radius:4px;background:#fdecea}.notjudged{color:#777;font-style:italic}"
    ".interrupted{background:#7f8c8d}"
)
_LOAD_STATS = ("p50", "p90", "p95", "p99", "max")


class _LoadPlots(_Plots):
    """The load page's figures: latency CDFs from the raw samples, and the run over time."""

    def load_cdf(self, samples: dict[str, list[float]]) -> str:
        """Cumulative distributions from 0 ms and share 0, one step per sample; the legend below the axes."""
        with self._matplotlib.rc_context(self._rc):
            figure = self._figure(figsize=(10, 2.8))
            ax = figure.add_subplot()
        colors = {"ttft_ms": _COLORS["first_content"], "first_sentence_ms": _COLORS["first_sentence"]}
        for name, values in samples.items():
            ordered = sorted(values)
            share = [0.0] + [(i + 1) / len(ordered) for i in range(len(ordered))]
            ax.step([0.0, *ordered], share, where="post", color=colors.get(name), label=f"{name} (n={len(ordered)})")
        ax.set_xlim(left=0)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("ms")
        ax.set_ylabel("share of turns")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=4, frameon=False)
        return self._svg(figure)

    def over_time(self, timeline: dict[str, Any]) -> str:
        """Three panels on one time axis: active callers, TTFT p50/p95, and turns per interval (failed ones red)."""
        rows = timeline["rows"]
        interval = float(timeline["interval_s"])
        with self._matplotlib.rc_context(self._rc):
            figure = self._figure(figsize=(10, 4.6))
            users, top, bottom = figure.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [1, 2, 1]})
        edges = [r["t_s"] for r in rows] + [rows[-1]["t_s"] + interval]
        counts = [r["users"] or 0 for r in rows]
        (step,) = users.step(edges, [*counts, counts[-1]], where="post", color="#2c3e50", label="active callers")
        users.set_ylim(0, max(1, *counts) * 1.25)
        users.set_ylabel("callers")
        users.grid(alpha=0.3)
        handles = [step]
        mid = [r["t_s"] + interval / 2 for r in rows]
        nan = float("nan")
        for key, label, style in (("ttft_p50_ms", "ttft p50", "-"), ("ttft_p95_ms", "ttft p95", "--")):
            values = [nan if r[key] is None else r[key] for r in rows]
            (line,) = top.plot(mid, values, style, marker=".", color=_COLORS["first_content"], label=label)
            handles.append(line)
        if not any(r["ttft_n"] for r in rows):
            top.text(0.5, 0.5, "no ttft samples", transform=top.transAxes, ha="center", va="center", color="#c0392b")
            top.set_ylim(0, 1)
        else:
            highest = max(r["ttft_p95_ms"] for r in rows if r["ttft_p95_ms"] is not None)
            top.set_ylim(0, highest * 1.15 or 1)  # headroom: no curve on the frame
        top.set_ylabel("ttft ms")
        top.grid(alpha=0.3)
        starts = [r["t_s"] for r in rows]
        ok = [r["turns"] - r["errors"] for r in rows]
        handles.append(bottom.bar(starts, ok, width=interval * 0.9, align="edge", color="#27ae60", label="turns"))
        failed = [r["errors"] for r in rows]
        handles.append(
            bottom.bar(starts, failed, width=interval * 0.9, align="edge", bottom=ok, color="#c0392b", label="failed")
        )
        bottom.set_ylim(0, max(1, *(r["turns"] for r in rows)) * 1.15)
        bottom.set_ylabel(f"turns / {interval:g} s")
        bottom.set_xlabel("s from the test's start")
        bottom.set_xlim(0, edges[-1])
        bottom.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.6), ncol=5, frameon=False)
        return self._svg(figure)


def _load_verdict(summary: dict[str, Any]) -> str:
    slos = summary.get("slos") or []
    if summary.get("interrupted"):
        return "interrupted"
    return "passed" if all(s["met"] for s in slos) else "failed"


def _load_header(summary: dict[str, Any], verdict: str) -> list[str]:
    slos = summary.get("slos") or []
    duration = summary.get("duration_s")
    planned = summary.get("run_time_s")
    if duration is None:
        lasted = "unknown"
    else:
        lasted = f"{duration:.1f} of {planned:g} s" if planned else f"{duration:.1f} s"
    peak = summary.get("peak_users")
    users = "unknown" if peak is None else f"{peak}" + (f" of {summary['users']}" if summary.get("users") else "")
    judged = "not judged" if verdict == "interrupted" else f"{sum(bool(s['met']) for s in slos)}/{len(slos)}"
    cards = [("callers (peak)", users), ("duration", lasted), ("turns", summary["turns"]),
             ("error rate", f"{summary['error_rate']:.2%}"), ("SLOs met", judged)]  # fmt: skip
    where = " · ".join(
        _e(part)
        for part in (
            summary.get("target", ""),
            f"profile {summary['profile']}" if summary.get("profile") else "",
            f"test {summary['test']}" if summary.get("test") else "",
            summary.get("started_at", ""),
        )
        if part
    )
    parts = [
        f"<h1>vapi-harness load <span class='verdict {verdict}'>{verdict.upper()}</span></h1>",
        f"<div class='muted'>{where}</div>",
        "<div class='cards' id='cards'>"
        + "".join(f"<div class='card' data-card='{_e(k)}'><b>{_e(v)}</b>{_e(k)}</div>" for k, v in cards)
        + "</div>",
    ]
    if verdict == "interrupted":
        parts.append(f"<p class='banner fail' id='interrupted'>Interrupted after {_e(lasted)}: what was measured "
                     "is below, and the SLOs are not judged.</p>")  # fmt: skip
    elif summary.get("ended") == "stopped":
        parts.append(f"<p class='banner' id='stopped'>Stopped from the web UI after {_e(lasted)}.</p>")
    return parts


def _table(title: str, table_id: str, columns: Sequence[str], rows: Sequence[str]) -> str:
    """A titled table: `columns` are header labels, a leading `#` marks a numeric (right-aligned) one."""
    cells = "".join(f"<th class='num'>{_e(c[1:])}</th>" if c.startswith("#") else f"<th>{_e(c)}</th>"
                    for c in columns)  # fmt: skip
    return f"<h2>{_e(title)}</h2><table id='{table_id}'><tr>{cells}</tr>{''.join(rows)}</table>"


def _load_slos(summary: dict[str, Any]) -> str:
    rows = []
    for slo in summary.get("slos") or []:
        value = "no samples" if slo["value"] is None else f"{slo['value']:.4g}"
        if slo["met"] is None:
            mark = f"<span class='notjudged'>{_e(slo.get('verdict') or 'not judged')}</span>"
        elif slo["met"]:
            mark = "<span class='ok'>met</span>"
        else:
            mark = f"<span class='fail'>{_e(slo.get('verdict') or 'BROKEN')}</span>"
        rows.append(f"<tr><td><code>{_e(slo['name'])}</code></td><td class='num'>{slo['limit']:g}</td>"
                    f"<td class='num'>{_e(value)}</td><td>{mark}</td></tr>")  # fmt: skip
    return _table("SLOs", "slos", ["SLO", "#limit", "#measured", "result"], rows)


def _load_latency(summary: dict[str, Any], samples: dict[str, list[float]] | None, plots: _LoadPlots) -> str:
    """The exact percentiles and the CDFs, both from the same raw samples (the summary's table without them)."""
    from harness.load.stats import LOAD_METRICS
    from harness.metrics import Distribution

    names = [*LOAD_METRICS, *(n for n in summary["metrics"] if n not in LOAD_METRICS)]
    rows = []
    for name in names:
        if samples is not None:
            found = Distribution.of(samples.get(name) or [])
            values = None if found is None else {"n": found.n, "max": found.max, **found.percentiles}
        else:
            values = summary["metrics"].get(name)
        if values is None:
            rows.append(f"<tr data-metric='{_e(name)}'><td>{_e(name)}</td><td class='num'>0</td>"
                        f"<td colspan='{len(_LOAD_STATS)}' class='muted nosamples'>no samples</td></tr>")  # fmt: skip
            continue
        rows.append(f"<tr data-metric='{_e(name)}'><td>{_e(name)}</td><td class='num'>{values['n']}</td>"
                    + "".join(f"<td class='num'>{values[k]:.1f}</td>" for k in _LOAD_STATS) + "</tr>")  # fmt: skip
    parts = [_table("Voice latency (ms, exact)", "latency", ["metric", "#n", *(f"#{k}" for k in _LOAD_STATS)], rows)]
    if samples is None:
        parts.append("<p class='muted' id='distributions'>The raw samples were not kept (load_vapi_samples.json, "
                     "written with --html): no distributions.</p>")  # fmt: skip
        return "".join(parts)
    chosen = {k: samples[k] for k in ("ttft_ms", "first_sentence_ms") if samples.get(k)}
    if chosen:
        parts.append(f"<div class='figure' id='distributions'>{plots.load_cdf(chosen)}</div>")
    else:
        parts.append("<p class='muted nosamples' id='distributions'>Distributions: no samples.</p>")
    return "".join(parts)


def _load_over_time(summary: dict[str, Any], plots: _LoadPlots) -> str:
    timeline = summary.get("timeline") or {}
    if not timeline.get("rows"):
        return "<h2>Over time</h2><p class='muted' id='over-time'>No time series in this summary.</p>"
    return f"<h2>Over time</h2><div class='figure' id='over-time'>{plots.over_time(timeline)}</div>"


def _load_failures(summary: dict[str, Any]) -> str:
    if not summary["errors"]:
        return "<h2>Failed turns</h2><p class='ok' id='failures'>No turn failed.</p>"
    examples = {e["class"]: e for e in summary.get("error_examples") or [] if isinstance(e, dict) and "class" in e}
    rows = []
    for name, count in sorted(summary["errors"].items(), key=lambda item: -item[1]):
        example = examples.get(name)
        if example is None:
            shown = "<span class='muted'>no example kept</span>"
        else:
            said = [f"HTTP {example['status']}" if example.get("status") is not None else "no HTTP status",
                    f"outcome {example.get('outcome')}"]  # fmt: skip
            if example.get("error"):
                said.append(str(example["error"]))
            body = (
                f"<pre>{_e(example['body'])}</pre>" if example.get("body") else "<span class='muted'>empty body</span>"
            )
            shown = f"{_e(' · '.join(said))}{body}"
        rows.append(f"<tr data-class='{_e(name)}'><td><code>{_e(name)}</code></td><td class='num'>{count}</td>"
                    f"<td>{shown}</td></tr>")  # fmt: skip
    return _table("Failed turns", "failures", ["class", "#turns", "example (the first of its class)"], rows)


def render_load_html(summary: dict[str, Any], samples: dict[str, list[float]] | None, version: str) -> str:
    """A load run's page (`summary` as `load_vapi.json` holds it): SLO verdicts, callers, duration, the run over
    time, exact percentiles and CDFs from the raw `samples` (None when they were not kept), and each failure class
    with an example. An interrupted run's SLOs are shown as not judged."""
    plots = _LoadPlots()
    verdict = _load_verdict(summary)
    parts = _load_header(summary, verdict)
    parts.append(_load_slos(summary))
    if summary.get("breakpoint"):
        point = summary["breakpoint"]
        parts.append(f"<p>Breakpoint: the highest level that held was {_e(point['held_users'])} concurrent calls.</p>")
    parts += [_load_over_time(summary, plots), _load_latency(summary, samples, plots), _load_failures(summary)]
    body = f"<style>{_LOAD_CSS}</style>" + "\n".join(parts)
    return _page(f"vapi-harness load {verdict}", body, version)


class HtmlReport(FileReport):
    """Writes the HTML report when the run ends (or is cut short)."""

    def render(self, run: RunResult) -> str:
        """The run as one HTML page."""
        document = run_document(run, self.redactor)
        return render_html(document, [section.html(document) for section in self.sections])
