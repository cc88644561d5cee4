"""`load --baseline`: a load run gated on an earlier one, its raw samples read from load_vapi.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.fake_llm import FakeLLMConfig, create_app
from harness.servers import serve_in_thread
from tests.commands import run_command

pytestmark = [pytest.mark.slow, pytest.mark.load]
QUICK = ("--profile", "smoke", "--run-time", "3s", "--think-s", "0.02,0.05", "--users", "3")


def _load(url: str, reports: Path, *args: str) -> tuple[int, str, str, Path]:
    done = run_command("load", "--url", url, "--report-dir", str(reports), *QUICK, *args, timeout_s=180)
    (folder,) = list(reports.iterdir())
    return done.returncode, done.stdout, done.stderr, folder


def test_a_load_run_400_ms_slower_than_its_baseline_exits_1_and_the_same_endpoint_passes(tmp_path: Path) -> None:
    with serve_in_thread(create_app(FakeLLMConfig(ttft_ms=20, chunk_delay_ms=2))) as fast:
        code, out, err, base = _load(f"{fast.url}/v1", tmp_path / "base")
        assert code == 0, out + err[-2000:]
        summary: dict[str, Any] = json.loads((base / "load_vapi.json").read_text())
        assert len(summary["samples"]["ttft_ms"]) == summary["metrics"]["ttft_ms"]["n"] > 10
        assert summary["samples"]["ttft_ms"] == sorted(summary["samples"]["ttft_ms"])
        baseline = str(base / "load_vapi.json")
        code, out, err, again = _load(f"{fast.url}/v1", tmp_path / "again", "--baseline", baseline)
        assert code == 0, out + err[-2000:]
        assert "No regression." in out
        assert json.loads((again / "load_vapi.json").read_text())["comparison"]["verdict"] == "no regression"
    with serve_in_thread(create_app(FakeLLMConfig(ttft_ms=420, chunk_delay_ms=2))) as slow:
        code, out, err, gated = _load(f"{slow.url}/v1", tmp_path / "slow", "--baseline", baseline)
    assert code == 1, out + err[-2000:]
    assert "ok   ttft_p95_ms" in out  # the SLOs held: the comparison alone fails the run
    assert "regression against the baseline: " in err and "ttft_ms.p50" in err
    comparison = json.loads((gated / "load_vapi.json").read_text())["comparison"]
    assert "ttft_ms.p50" in comparison["regressions"]
    assert (gated / "comparison.md").read_text().startswith("## vapi-harness compare: ❌ regression")
    assert "<svg" in (gated / "comparison.html").read_text()


def test_a_baseline_of_another_kind_is_refused_before_locust_starts(tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    done = run_command("check", "--json", str(report), "--report-dir", str(tmp_path / "r"), "--quiet")
    assert done.returncode == 0
    refused = run_command("load", "--baseline", str(report), "--report-dir", str(tmp_path / "load"))
    assert refused.returncode == 2 and "is a check run and this run a load run" in refused.stderr
    web = run_command("load", "--baseline", str(report), "--web", "--report-dir", str(tmp_path / "load"))
    assert web.returncode == 2 and "--web cannot be combined with it" in web.stderr
