"""The HTML report, rendered from recorded runs: self-contained, small, and showing what went wrong where."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.reporting.html import stalls_and_bursts
from harness.servers import ServerThread
from tests.browser import chromium, load_page
from tests.commands import run_command

pytestmark = pytest.mark.slow
FAST = ("--timeout-s", "3", "--close-grace-s", "0.5")


def _content_times(report: dict[str, Any], probe: str) -> list[float]:
    exchange = next(e for e in report["exchanges"] if e["probe"] == probe)
    return [i["t_ms"] for i in exchange["timeline"] if i["kind"] == "event" and i.get("content")]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict[str, Any], str]]:
    """A healthy run (the built-in endpoint), a buffering server and a stalling one: report and HTML of each."""
    from harness.fake_llm import FakeLLMConfig, create_app
    from harness.servers import serve_in_thread

    folder = tmp_path_factory.mktemp("html")
    out: dict[str, tuple[dict[str, Any], str]] = {}
    targets: dict[str, Any] = {
        "healthy": None,
        "buffered": {"buffered"},
        "stall": {"stall"},
        "failing": {"no-choices"},
        "hung": {"hang"},
    }
    for name, faults in targets.items():
        args = ["check", "--json", str(folder / f"{name}.json"), "--html", str(folder / f"{name}.html")]
        args += ["--report-dir", str(folder / "reports"), "--quiet", "--barge-in-pause-ms", "100", *FAST]
        if faults == {"hang"}:
            args += ["--timeout-s", "1", "--deadline-s", "2"]
        if faults is None:
            done = run_command(*args)
        else:
            config = FakeLLMConfig(ttft_ms=5, chunk_delay_ms=10, faults=frozenset(faults))
            with serve_in_thread(create_app(config)) as server:
                done = run_command(*args, "--url", f"{server.url}/v1")
        assert done.returncode in (0, 1), done.stderr
        out[name] = (json.loads((folder / f"{name}.json").read_text()), (folder / f"{name}.html").read_text())
    return out


def test_the_page_is_self_contained_and_small(runs: dict[str, tuple[dict[str, Any], str]]) -> None:
    report, page = runs["healthy"]
    assert len(page.encode()) < 2 * 1024 * 1024
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing to fetch: opens offline
    assert "<script" not in page
    assert "PASSED" in page and report["run_id"] in page
    assert page.count("class='figure timeline'") == len(report["exchanges"])
    assert "id='distributions'" in page and "<svg" in page


def test_buffered_and_stalled_streams_are_marked(runs: dict[str, tuple[dict[str, Any], str]]) -> None:
    healthy = stalls_and_bursts(_content_times(runs["healthy"][0], "stream_basic"), stall_ms=1000)
    buffered = stalls_and_bursts(_content_times(runs["buffered"][0], "stream_basic"), stall_ms=1000)
    stalled = stalls_and_bursts(_content_times(runs["stall"][0], "stream_basic"), stall_ms=1000)
    assert healthy == ([], [])
    assert buffered[0] == [] and len(buffered[1]) == 1
    assert len(stalled[0]) == 1 and stalled[0][0][1] - stalled[0][0][0] > 1000 and stalled[1] == []
    for name, check in (("buffered", "stream_is_incremental"), ("stall", "no_long_stall")):
        failed_table = runs[name][1].split("<table id='failed-checks'>")[1].split("</table>")[0]
        assert check in failed_table and "WARN" in failed_table


def test_a_scenario_run_shows_turns_and_transcripts(tmp_path: Path, run_cli: Callable[..., Any]) -> None:
    page = tmp_path / "suite.html"
    result = run_cli("check", "--suite", "conformance", "--html", str(page))
    assert result.code == 0
    text = page.read_text()
    assert "<h2>Scenarios</h2>" in text and "a tool call, its result, and the spoken follow-up" in text
    assert "tool result" in text and "get_weather" in text and "Sunny, 21 degrees." in text


def test_report_command_re_renders_a_saved_run(
    tmp_path: Path, runs: dict[str, tuple[dict[str, Any], str]], fake_llm: Callable[..., ServerThread]
) -> None:
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps(runs["stall"][0]))
    done = run_command(
        "report", str(saved), "--html", str(tmp_path / "again.html"), "--markdown", str(tmp_path / "s.md")
    )
    assert done.returncode == 0, done.stderr
    assert "no_long_stall" in (tmp_path / "again.html").read_text()
    summary = (tmp_path / "s.md").read_text()
    assert "| `no_long_stall` | warning |" in summary and "max_gap_ms" in summary
    stdout = run_command("report", str(saved))
    assert stdout.returncode == 0 and "## vapi-harness" in stdout.stdout
    (tmp_path / "bad.json").write_text('{"run_id": 1}')
    bad = run_command("report", str(tmp_path / "bad.json"))
    assert bad.returncode == 2 and "not a vapi-harness report" in bad.stderr and "Traceback" not in bad.stderr


def test_the_page_opens_in_chromium_without_errors_and_draws_the_timeline(
    tmp_path: Path, runs: dict[str, tuple[dict[str, Any], str]]
) -> None:
    browser, why = chromium()
    if browser is None:
        pytest.skip(why)
    page = tmp_path / "report.html"
    page.write_text(runs["buffered"][1])
    loaded = load_page(
        browser,
        page,
        {
            "timelines": "document.querySelectorAll('.timeline svg').length",
            "marks": "document.querySelectorAll('#timeline-0 svg path, #timeline-0 svg use').length",
            "width": "document.querySelector('#timeline-0 svg').getBoundingClientRect().width",
            "title": "document.title",
        },
    )
    assert loaded.errors == []
    assert loaded.values["timelines"] == len(runs["buffered"][0]["exchanges"])
    assert loaded.values["marks"] > 20 and loaded.values["width"] > 300
    assert loaded.values["title"] == f"vapi-harness passed · {runs['buffered'][0]['run_id']}"


def _browser() -> str:
    browser, why = chromium()
    if browser is None:
        pytest.skip(why)
    return browser


def test_the_rendered_pages_say_what_happened(tmp_path: Path, runs: dict[str, tuple[dict[str, Any], str]]) -> None:
    browser = _browser()
    pages = {}
    for name in ("buffered", "failing", "hung"):
        page = tmp_path / f"{name}.html"
        page.write_text(runs[name][1])
        pages[name] = page
    expressions = {
        "badge": "document.querySelector('#verdict').textContent",
        "numeric_header_align": "getComputedStyle(document.querySelector('th.num')).textAlign",
        "timelines": "document.querySelectorAll('.timeline svg').length",
        "nothing_arrived": "document.querySelectorAll('.nothing-arrived').length",
        "passed_marks": "document.querySelectorAll('details summary .ok').length",
        "unjudged": "[...document.querySelectorAll('details summary')].filter(s => s.querySelector('.unjudged'))"
        ".map(s => s.innerText)",
        "more": "(() => { const d = document.querySelector('details.more'); if (!d) return null; d.open = true;"
        " return d.innerText; })()",
        "first_timeline_text": "(document.querySelector('#timeline-0 svg') || {textContent: ''}).textContent",
        "cdf_legend": "(document.querySelector('#distributions svg') || {textContent: ''}).textContent",
        "latency_rows": "[...document.querySelectorAll('h2 + table tr')].map(r => r.innerText)",
    }
    warned = load_page(browser, pages["buffered"], expressions)
    assert warned.errors == []
    assert warned.values["badge"] == "PASSED WITH WARNINGS"  # not the clean run's green PASSED
    assert warned.values["numeric_header_align"] == "right"
    failing = load_page(browser, pages["failing"], expressions)
    assert failing.values["badge"] == "FAILED"
    more = failing.values["more"]
    assert more and "non_stream" not in more and "stream_tool_call: Chunk 1 has no `choices` array" in more
    assert "chunks_have_choices" in failing.values["first_timeline_text"]  # the offending chunk is marked
    assert "failed here" in failing.values["first_timeline_text"]
    hung = load_page(browser, pages["hung"], expressions)
    report = runs["hung"][0]
    assert hung.values["timelines"] == 0  # nothing arrived: no empty plots
    assert hung.values["nothing_arrived"] == len(report["exchanges"])
    # The probes cut short or not sent after the hang are marked not judged, never with a pass's tick.
    unjudged = [e for e in report["exchanges"] if all(f["status"] == "not_judged" for f in e["findings"])]
    assert unjudged and hung.values["passed_marks"] == 0
    assert len(hung.values["unjudged"]) == len(unjudged)
    assert all("not judged: " in text and "the endpoint hangs" in text for text in hung.values["unjudged"])


def test_the_latency_chart_and_table_count_the_same_samples(runs: dict[str, tuple[dict[str, Any], str]]) -> None:
    for name in ("healthy", "stall"):
        report, page = runs[name]
        latency = report["latency"]
        for metric in ("ttft_ms", "first_sentence_ms"):
            assert latency[metric]["n"] == len(latency[metric]["samples"])
            assert f"{metric} (n={latency[metric]['n']})" in page
        barge_in = next(e for e in report["exchanges"] if e["probe"] == "barge_in")
        assert barge_in["metrics"]["first_sentence_ms"] is None  # a cut stream spoke no sentence
        assert barge_in["metrics"]["total_ms"] is None


def test_a_run_without_content_draws_no_empty_distribution(runs: dict[str, tuple[dict[str, Any], str]]) -> None:
    import warnings

    from harness.reporting.html import render_html

    report, _ = runs["healthy"]
    latency = {"headers_ms": report["latency"]["headers_ms"]}  # as when no reply had content
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns when a legend has nothing to show
        page = render_html({**report, "latency": latency})
    assert "<h2>Latency</h2>" in page and "id='distributions'" not in page
