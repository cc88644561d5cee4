"""`vapi-harness compare` and `check --baseline` on real runs: the built-in endpoint against itself, and the fake
LLM answering 400 ms later or breaking a rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.cli import main
from harness.fake_llm import FakeLLMConfig, Fault, create_app
from harness.reporting import validate_document
from harness.servers import serve_in_thread
from tests.browser import load_page, require_chromium

pytestmark = pytest.mark.slow
FAST = ("--timeout-s", "3", "--close-grace-s", "0.5", "--barge-in-pause-ms", "50", "--quiet")


def _check(folder: Path, name: str, *args: str) -> tuple[int, Path]:
    report = folder / f"{name}.json"
    code = main(["check", "--json", str(report), "--report-dir", str(folder / "reports"), *FAST, *args])
    return code, report


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two runs of the built-in endpoint; the fake LLM at its usual speed, 400 ms later, and breaking a rule."""
    folder = tmp_path_factory.mktemp("compare")
    out: dict[str, Path] = {}
    for name in ("builtin-a", "builtin-b"):
        code, out[name] = _check(folder, name)
        assert code == 0
    for name, config in (
        ("fast", FakeLLMConfig(ttft_ms=20, chunk_delay_ms=2)),
        ("slow", FakeLLMConfig(ttft_ms=420, chunk_delay_ms=2)),
        ("no-choices", FakeLLMConfig(ttft_ms=20, chunk_delay_ms=2, faults=frozenset({Fault.NO_CHOICES}))),
    ):
        with serve_in_thread(create_app(config)) as server:
            code, out[name] = _check(folder, name, "--url", f"{server.url}/v1")
        assert code == (1 if name == "no-choices" else 0), name
    return out


def _compare(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main(["compare", *(str(a) for a in args)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_two_runs_of_the_builtin_endpoint_compare_clean(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _compare(capsys, runs["builtin-a"], runs["builtin-b"], "--json", tmp_path / "c.json")
    assert code == 0, out + err
    assert "No regression." in out and "ttft_ms.p50" in out
    assert all(len(line) <= 80 for line in out.splitlines())
    document = json.loads((tmp_path / "c.json").read_text())
    assert document["verdict"] == "no regression" and document["regressions"] == []
    rows = {f"{m['metric']}.{m['stat']}": m for m in document["metrics"]}
    assert rows["ttft_ms.p50"]["verdict"] == "ok" and rows["ttft_ms.p50"]["n_baseline"] == 8
    assert rows["ttft_ms.p95"]["verdict"] == "too few samples" and rows["ttft_ms.p95"]["n_needed"] == 20


def test_a_first_token_400_ms_later_is_a_ttft_regression(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page, summary = tmp_path / "c.html", tmp_path / "summary.md"
    code, out, _ = _compare(capsys, runs["fast"], runs["slow"], "--html", page, "--markdown", summary)
    assert code == 1
    lines = out.splitlines()
    assert lines[1].startswith(" REGRESSION  ") and "ttft_ms.p50" in out
    assert lines[-1].startswith("REGRESSION: ") and "ttft_ms.p50" in lines[-1]
    assert all(len(line) <= 80 for line in lines)
    text = summary.read_text()
    assert text.startswith("## vapi-harness compare: ❌ regression") and "| `ttft_ms.p50` | 8/8 |" in text
    assert "<svg" in page.read_text() and "<script" not in page.read_text()
    # The other way round it is an improvement, and a higher threshold lets it through.
    assert _compare(capsys, runs["slow"], runs["fast"])[0] == 0
    lenient = [f"--max-increase={m}=1000ms" for m in ("ttft_ms", "first_event_ms", "first_sentence_ms", "total_ms")]
    assert _compare(capsys, runs["fast"], runs["slow"], *lenient, "--max-increase=first_tool_delta_ms=1000ms")[0] == 0


def test_check_with_a_baseline_exits_1_naming_the_metric_and_its_reports_carry_the_comparison(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page, summary = tmp_path / "run.html", tmp_path / "summary.md"
    with serve_in_thread(create_app(FakeLLMConfig(ttft_ms=420, chunk_delay_ms=2))) as server:
        code, report = _check(
            tmp_path,
            "gated",
            "--url",
            f"{server.url}/v1",
            "--baseline",
            str(runs["fast"]),
            "--html",
            str(page),
            "--markdown",
            str(summary),
        )
    captured = capsys.readouterr()
    assert code == 1
    assert "regression against the baseline: " in captured.err and "ttft_ms.p50" in captured.err
    document = json.loads(report.read_text())
    assert validate_document(document) == []
    assert document["verdict"] == "passed"  # every check passed: the comparison alone fails the run
    assert document["comparison"]["verdict"] == "regression" and "ttft_ms.p50" in document["comparison"]["regressions"]
    assert "id='comparison'" in page.read_text() and "## vapi-harness compare" in summary.read_text()
    # The same endpoint against its own baseline passes.
    with serve_in_thread(create_app(FakeLLMConfig(ttft_ms=20, chunk_delay_ms=2))) as server:
        code, report = _check(tmp_path, "same", "--url", f"{server.url}/v1", "--baseline", str(runs["fast"]))
    assert code == 0, capsys.readouterr().out
    assert json.loads(report.read_text())["comparison"]["verdict"] == "no regression"


def test_a_newly_failing_check_is_a_regression_and_a_newly_passing_one_is_reported(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _compare(capsys, runs["fast"], runs["no-choices"])
    assert code == 1
    assert " REGRESSION  check chunks_have_choices: newly failing (passed -> failed)" in out
    code, out, _ = _compare(capsys, runs["no-choices"], runs["fast"])
    assert code == 0
    assert " NOW PASSES  check chunks_have_choices: newly passing (failed -> passed)" in out


def test_the_compare_page_renders_in_chromium(runs: dict[str, Path], tmp_path: Path) -> None:
    browser = require_chromium()
    page = tmp_path / "compare.html"
    assert main(["compare", str(runs["fast"]), str(runs["slow"]), "--html", str(page)]) == 1
    loaded = load_page(
        browser,
        page,
        {
            "verdict": "document.querySelector('#comparison-verdict').textContent",
            "cdfs": "document.querySelectorAll('#comparison-cdfs svg').length",
            "metrics": "new Set([...document.querySelectorAll('#comparison-metrics tr[data-row]')]"
            ".map(r => r.dataset.row.split('.')[0])).size",
            "ttft": "document.querySelector(\"tr[data-row='ttft_ms.p50']\").dataset.verdict",
            "width": "document.querySelector('#comparison-cdfs svg').getBoundingClientRect().width",
            "legend": "document.querySelector(\".cdf[data-metric='ttft_ms'] svg\").textContent",
        },
    )
    assert loaded.errors == []
    assert loaded.values["verdict"] == "REGRESSION"
    assert loaded.values["cdfs"] == loaded.values["metrics"] > 3
    assert loaded.values["ttft"] == "regression" and loaded.values["width"] > 200
    assert "baseline (n=8)" in loaded.values["legend"] and "new (n=8)" in loaded.values["legend"]


def _edited(source: Path, target: Path, **changes: Any) -> Path:
    document = json.loads(source.read_text())
    for key, value in changes.items():
        document[key] = value
    target.write_text(json.dumps(document))
    return target


def test_bad_input_is_one_line_and_exit_2(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = runs["fast"]
    (tmp_path / "text.json").write_text("not json")
    (tmp_path / "other.json").write_text(json.dumps({"name": "another tool", "results": []}))
    suite = json.loads(good.read_text())
    suite["settings"]["suites"] = ["conformance"]
    (tmp_path / "suite.json").write_text(json.dumps(suite))
    explore = {"schema_version": 99, "tool": {"name": "vapi-harness", "version": "9.0"}, "command": "explore"}
    (tmp_path / "explore.json").write_text(json.dumps(explore))
    load = {"kind": "vapi-harness load summary", "turns": 3, "errors": {}, "error_rate": 0, "metrics": {}}
    (tmp_path / "load_vapi.json").write_text(json.dumps(load))
    cases = [
        ((tmp_path / "missing.json", good), "missing.json: cannot read"),
        ((tmp_path / "text.json", good), "text.json: not JSON"),
        ((good, tmp_path / "other.json"), "other.json: not a vapi-harness report"),
        (
            (_edited(good, tmp_path / "new.json", schema_version=99), good),
            "report schema 99 (vapi-harness 0.1.0) is newer than this vapi-harness reads",
        ),
        (
            (_edited(good, tmp_path / "old.json", schema_version=1), good),
            "report schema 1 (vapi-harness 0.1.0) keeps no raw samples",
        ),
        ((good, tmp_path / "suite.json"), "is a check run and "),
        ((good, tmp_path / "explore.json"), "explore report schema 99 (vapi-harness 9.0) is newer than"),
        ((tmp_path / "load_vapi.json", good), "this load summary keeps no raw samples"),
        ((good, good, "--max-increase", "ttf_ms.p95=20%"), "unknown metric 'ttf_ms'. Did you mean 'ttft_ms'?"),
        ((good, good, "--max-increase", "ttft_ms.p97=20%"), "'p97' is not one of p50, p90, p95, p99"),
        ((good, good, "--max-increase", "ttft_ms.p95=fast"), "is not a threshold"),
        ((good, good, "--max-increase", "ttft_ms"), "is not METRIC[.STAT]=VALUE"),
        ((good, good, "--confidence", "2"), "--confidence: '2' must be at least 0.5 and below 1"),
        ((good, good, "--html", str(tmp_path)), "--html: "),
    ]
    for args, message in cases:
        code, out, err = _compare(capsys, *args)
        assert code == 2, (args, out, err)
        assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (args, err)


def test_check_refuses_a_bad_baseline_before_sending_anything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "text.json").write_text("[]")
    assert main(["check", "--baseline", str(tmp_path / "text.json"), "--report-dir", str(tmp_path), "--quiet"]) == 2
    assert "text.json: not a vapi-harness report" in capsys.readouterr().err
    assert main(["check", "--max-increase", "ttft_ms=10%", "--report-dir", str(tmp_path), "--quiet"]) == 2
    assert "--max-increase needs --baseline" in capsys.readouterr().err


def _explore(path: Path, *keys: str) -> Path:
    failures = [{"check": key.split(":")[0], "key": key, "severity": "error"} for key in keys]
    document = {
        "schema_version": 1,
        "tool": {"name": "vapi-harness", "version": "0.1.0"},
        "command": "explore",
        "run_id": path.stem,
        "started_at": "2026-01-01T00:00:00+00:00",
        "interrupted": None,
        "settings": {"seed": 1, "max_examples": 50},
        "failures": failures,
    }
    path.write_text(json.dumps(document))
    return path


def test_explorations_compare_by_the_failures_they_found(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = _explore(tmp_path / "clean.json")
    broken = _explore(tmp_path / "broken.json", "status_is_success: Status 500")
    code, out, _ = _compare(capsys, clean, broken)
    assert code == 1
    assert " REGRESSION  explore failure status_is_success: Status 500: newly failing" in out
    assert out.splitlines()[-1] == "REGRESSION: explore failure status_is_success: Status 500"
    assert "No latency was measured in either run." in out
    code, out, _ = _compare(capsys, broken, clean)
    assert code == 0 and "newly passing" in out


def test_a_report_of_schema_2_still_validates_and_compares(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    older = _edited(runs["fast"], tmp_path / "v2.json", schema_version=2)
    assert validate_document(json.loads(older.read_text())) == []
    code, out, _ = _compare(capsys, older, runs["fast"])
    assert code == 0 and "No regression." in out


@pytest.mark.parametrize("command", ["check", "compare", "load", "explore"])
def test_help_shows_the_gate_options_percent_signs(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([command, "--help"])
    assert exited.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    if command != "explore":  # explore is not gated on a baseline
        assert "20%+50ms" in out and "--max-increase" in out
