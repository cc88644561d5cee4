"""The load HTML report, rendered by real runs (a healthy endpoint and a failing one) and seen in Chromium:
callers, duration, the run over time, exact percentiles and CDFs from the same samples, each failure class with
an example, and "no samples" where there are none; `vapi-harness report` renders a saved `load_vapi.json`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.fake_llm import FakeLLMConfig, Fault, create_app
from harness.servers import serve_in_thread
from tests.browser import load_url, require_chromium
from tests.commands import run_command

pytestmark = [pytest.mark.slow, pytest.mark.load]


@dataclass
class LoadRun:
    """One `load --html` run: its exit code, stderr, summary, raw samples and page."""

    code: int
    err: str
    folder: Path
    summary: dict[str, Any]
    samples: dict[str, list[float]]
    page: Path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, LoadRun]]:
    folder = tmp_path_factory.mktemp("load-html")
    out: dict[str, LoadRun] = {}
    for name, faults in (("healthy", frozenset[Fault]()), ("failing", frozenset({Fault.STATUS_500}))):
        config = FakeLLMConfig(ttft_ms=20, chunk_delay_ms=2, faults=faults)
        with serve_in_thread(create_app(config)) as server:
            page, reports = folder / f"{name}.html", folder / name
            done = run_command("load", "--url", f"{server.url}/v1", "--profile", "smoke", "--run-time", "3s",
                               "--think-s", "0.05,0.1", "--report-dir", str(reports), "--html", str(page))  # fmt: skip
        (run,) = list(reports.iterdir())
        summary = json.loads((run / "load_vapi.json").read_text())
        samples = json.loads((run / "load_vapi_samples.json").read_text())
        out[name] = LoadRun(done.returncode, done.stderr, run, summary, samples, page)
    yield out


_PAGE = {
    "cards": "Object.fromEntries([...document.querySelectorAll('#cards .card')]"
    ".map(c => [c.dataset.card, c.querySelector('b').textContent]))",
    "over_time_width": "document.querySelector('#over-time svg')?.getBoundingClientRect().width ?? 0",
    "cdf_width": "document.querySelector('#distributions svg')?.getBoundingClientRect().width ?? 0",
    "cdf_texts": "[...document.querySelectorAll('#distributions svg text')].map(t => t.textContent.trim())",
    "latency": "[...document.querySelectorAll('#latency tr[data-metric]')]"
    ".map(r => [...r.querySelectorAll('td')].map(c => c.textContent.trim()))",
    "distributions_text": "document.querySelector('#distributions')?.textContent.trim() ?? ''",
    "failures": "[...document.querySelectorAll('#failures tr[data-class]')]"
    ".map(r => [r.dataset.class, r.querySelector('pre')?.textContent ?? ''])",
    # The CDF's legend sits below its axes: its top is under the axes' frame, so it covers no curve.
    "legend_below": "(() => { const svg = document.querySelector('#distributions svg'); if (!svg) return null;"
    " const legend = svg.querySelector('g[id^=legend]'), frame = svg.querySelector('g[id^=axes] g[id^=patch]');"
    " return legend.getBoundingClientRect().top >= frame.getBoundingClientRect().bottom; })()",
}


def test_a_healthy_run_shows_callers_duration_the_run_over_time_and_its_distributions(
    runs: dict[str, LoadRun],
) -> None:
    run = runs["healthy"]
    assert run.code == 0, run.err[-2000:]
    seen = load_url(require_chromium(), run.page.resolve().as_uri(), _PAGE)
    assert seen.errors == []
    values = seen.values
    assert values["cards"]["callers (peak)"] == "2 of 2"
    assert values["cards"]["duration"].endswith(" of 3 s") and values["cards"]["turns"] == str(run.summary["turns"])
    assert values["over_time_width"] > 300 and values["cdf_width"] > 300
    assert values["legend_below"] is True
    # The table and the CDF come from the same samples: the table's n is what the CDF's legend counts.
    ttft = next(row for row in values["latency"] if row[0] == "ttft_ms")
    assert int(ttft[1]) == len(run.samples["ttft_ms"]) == run.summary["metrics"]["ttft_ms"]["n"]
    assert f"ttft_ms (n={len(run.samples['ttft_ms'])})" in values["cdf_texts"]
    assert "0" in values["cdf_texts"] and not any(t.startswith(("\u2212", "-")) for t in values["cdf_texts"])  # from 0
    assert values["failures"] == []
    timeline = run.summary["timeline"]["rows"]
    assert sum(r["turns"] for r in timeline) == run.summary["turns"]
    assert max(r["users"] or 0 for r in timeline) == 2 and any(r["ttft_p95_ms"] for r in timeline)


def test_a_failing_endpoint_shows_no_samples_and_an_example_of_each_failure(runs: dict[str, LoadRun]) -> None:
    run = runs["failing"]
    assert run.code == 1
    assert "Warning" not in run.err and "Traceback" not in run.err  # no matplotlib warning for empty plots
    seen = load_url(require_chromium(), run.page.resolve().as_uri(), _PAGE)
    assert seen.errors == []
    values = seen.values
    assert [row[0] for row in values["latency"]] == ["ttft_ms", "first_sentence_ms", "total_ms", "max_gap_ms"]
    assert all(row[1:] == ["0", "no samples"] for row in values["latency"])
    assert values["cdf_width"] == 0 and values["distributions_text"] == "Distributions: no samples."
    assert values["over_time_width"] > 300  # the callers and the failed turns, over time
    ((name, body),) = values["failures"]
    assert name == "http_500" and "server_error" in body
    assert values["cards"]["error rate"] == "100.00%" and values["cards"]["SLOs met"] == "0/3"


def test_report_renders_a_saved_load_summary(runs: dict[str, LoadRun], tmp_path: Path) -> None:
    run = runs["healthy"]
    page = tmp_path / "again.html"
    done = run_command("report", str(run.folder / "load_vapi.json"), "--html", str(page))
    assert done.returncode == 0, done.stderr
    text = page.read_text()
    assert "vapi-harness load" in text and "id='over-time'" in text and "id='distributions'" in text
    markdown = run_command("report", str(run.folder / "load_vapi.json"))
    assert markdown.returncode == 0 and "## vapi-harness load: PASSED" in markdown.stdout
    assert "| `ttft_p95_ms` | 800 |" in markdown.stdout
    alone = tmp_path / "load_vapi.json"  # without its raw samples: the table, and a note instead of the CDF
    alone.write_text((run.folder / "load_vapi.json").read_text())
    assert run_command("report", str(alone), "--html", str(tmp_path / "alone.html")).returncode == 0
    assert "The raw samples were not kept" in (tmp_path / "alone.html").read_text()
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**run.summary, "metrics": {"ttft_ms": 3}}))
    bad = run_command("report", str(broken), "--html", str(tmp_path / "bad.html"))
    assert bad.returncode == 2 and "load summary" in bad.stderr and "Traceback" not in bad.stderr
