"""`vapi-harness check` end to end: real fake-LLM servers on loopback, each breaking one rule."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest

from harness.fake_llm import Fault
from harness.fake_llm.script import INPUT_FAULTS
from harness.reporting import validate_document
from harness.servers import ServerThread
from tests.commands import run_command

pytestmark = pytest.mark.slow

# A short barge-in pause keeps the suite quick; the fake LLM's 10 ms chunks still learn of the abort well within it.
FAST = ("--timeout-s", "2", "--deadline-s", "4", "--close-grace-s", "0.5", "--barge-in-pause-ms", "200")
KEY = "sk-test-0123456789abcdef"

# fault -> the error-level check that must fail (and make `check` exit 1)
ERROR_FAULTS = {
    "status-500": "status_is_success",
    "reject-extra-fields": "status_is_success",
    "json-body": "stream_is_sse",
    "invalid-json": "sse_data_is_json",
    "no-choices": "chunks_have_choices",
    "error-chunk": "chunk_has_no_error",
    "no-content": "first_delta_within_timeout",
    "tool-no-index": "tool_calls_assemble",
    "tool-no-id": "tool_calls_assemble",
    "tool-bad-arguments": "tool_calls_assemble",
    "event-error": "no_error_event",
    "endless": "response_ends_after_last_chunk",
    "huge-body": "body_within_size_limit",
    "never-close": "response_ends_after_last_chunk",
    "drop-mid-stream": "body_is_complete",
    "unterminated-event": "last_event_terminated",
    "no-message": "message_in_reply",
    "hang": "headers_within_timeout",
    "crash-after-abort": "status_is_success",
}
# fault -> the warning-level check that must fail (exit 0, or 1 with --strict)
WARNING_FAULTS = {
    "no-done": "stream_ends_with_done",
    "malformed-500": "malformed_request_rejected",
    "no-finish-reason": "finish_reason_is_valid",
    "bad-finish-reason": "finish_reason_is_valid",
    "wrong-content-type": "content_type_is_event_stream",
    "event-lines": "no_event_field",
    "no-role": "first_delta_has_role",
    "inconsistent-id": "chunk_fields_consistent",
    "missing-fields": "chunk_fields_present",
    "buffered": "stream_is_incremental",
    "stall": "no_long_stall",
    "slow-first-sentence": "first_sentence_within_budget",
    "no-usage": "usage_when_requested",
    "data-after-done": "nothing_after_done",
    "invalid-utf8": "stream_is_utf8",
    "oversize-event": "events_within_size_limit",
    "created-string": "chunks_match_openai_schema",
    "tool-loop": "no_repeated_tool_call",
}
# fault -> the check that must fail with --api-key, and its severity there
AUTH_FAULTS = {
    "ignore-auth": ("rejects_wrong_api_key", "error"),
    "auth-400": ("rejects_wrong_api_key", "warning"),  # a refusal with an odd status still keeps callers out
    "no-envelope": ("error_has_envelope", "warning"),
}
# Faults only a conversation shows; tests/harness/scenarios covers them.
SCENARIO_FAULTS = {"ignore-tool-results"}
# Faults only one class of input sets off (the default suite passes); test_fake_llm_input_faults.py covers them.
INPUT_CLASS_FAULTS = {f.value for f in INPUT_FAULTS}


def test_non_streamed_tool_call_is_judged_too(
    fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]
) -> None:
    server = fake_llm(faults={"tool-bad-arguments"})
    result = run_cli("check", "--url", f"{server.url}/v1", *FAST)
    assert "tool_calls_are_valid" in result.failed("error")
    assert result.check("tool_calls_are_valid")["failures"][0]["probe"] == "non_stream_tool_call"


def test_every_fault_is_covered() -> None:
    covered = set(ERROR_FAULTS) | set(WARNING_FAULTS) | set(AUTH_FAULTS) | SCENARIO_FAULTS | INPUT_CLASS_FAULTS
    assert {f.value for f in Fault} == covered


def test_builtin_endpoint_passes_every_check(run_cli: Callable[..., Any]) -> None:
    result = run_cli("check")
    assert result.code == 0, result.out
    assert result.failed() == set()
    assert result.report["verdict"] == "passed"
    assert result.report["target"]["builtin"] is True
    assert validate_document(result.report) == []
    assert "PASSED" in result.out
    ran = {c["id"] for c in result.report["checks"] if c["status"] == "passed"}
    assert {"tool_calls_assemble", "malformed_request_rejected", "message_in_reply"} <= ran


def test_secret_looking_headers_are_redacted(run_cli: Callable[..., Any]) -> None:
    result = run_cli("check", "--header", "X-Upstream-Token:tok-9f8e7d6c5b", "--header", "X-Tenant:acme")
    assert result.code == 0, result.out
    assert "tok-9f8e7d6c5b" not in str(result.report)
    headers = result.report["exchanges"][0]["request"]["headers"]
    assert headers["X-Upstream-Token"] == "[redacted]"
    assert headers["X-Tenant"] == "acme"


def test_builtin_endpoint_with_key_runs_auth_probes(run_cli: Callable[..., Any]) -> None:
    result = run_cli("check", "--api-key", KEY)
    assert result.code == 0, result.out
    assert result.check("rejects_wrong_api_key")["runs"] == 2
    assert KEY not in result.out + result.err
    assert KEY not in str(result.report)


@pytest.mark.parametrize(("fault", "check_id"), ERROR_FAULTS.items(), ids=list(ERROR_FAULTS))
def test_error_fault_fails_check(
    fault: str, check_id: str, fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]
) -> None:
    server = fake_llm(faults={fault})
    result = run_cli("check", "--url", f"{server.url}/v1", *FAST)
    assert result.code == 1, result.out
    assert check_id in result.failed("error"), result.failed()
    assert result.report["verdict"] == "failed"
    assert validate_document(result.report) == []
    failure = result.check(check_id)["failures"][0]
    assert failure["title"] and failure["probe"]


@pytest.mark.parametrize(("fault", "check_id"), WARNING_FAULTS.items(), ids=list(WARNING_FAULTS))
def test_warning_fault_warns_and_fails_when_strict(
    fault: str, check_id: str, fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]
) -> None:
    server = fake_llm(faults={fault}, chunk_delay_ms=3.0)
    result = run_cli("check", "--url", f"{server.url}/v1", *FAST)
    assert result.code == 0, result.out
    assert result.failed("error") == set()
    assert check_id in result.failed("warning")
    strict = run_cli("check", "--url", f"{server.url}/v1", "--strict", *FAST)
    assert strict.code == 1
    assert check_id in strict.failed("warning")


@pytest.mark.parametrize(("fault", "expected"), AUTH_FAULTS.items(), ids=list(AUTH_FAULTS))
def test_auth_faults(
    fault: str, expected: tuple[str, str], fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]
) -> None:
    check_id, severity = expected
    server = fake_llm(faults={fault}, api_key=KEY)
    result = run_cli("check", "--url", f"{server.url}/v1", "--api-key", KEY, *FAST)
    assert result.failed(severity) == {check_id}, result.out
    assert result.code == (1 if severity == "error" else 0), result.out


def test_a_refusal_with_400_is_a_warning_about_the_status_not_an_open_door(
    fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]
) -> None:
    server = fake_llm(faults={"auth-400"}, api_key=KEY)
    result = run_cli("check", "--url", f"{server.url}/v1", "--api-key", KEY, *FAST)
    failures = result.check("rejects_wrong_api_key")["failures"]
    assert {f["probe"] for f in failures} == {"wrong_api_key", "missing_api_key"}
    assert all(f["severity"] == "warning" and "HTTP 400 refusing" in f["title"] for f in failures)
    assert "accepts" not in str(failures) and "serves" not in str(failures)
    served = run_cli(
        "check", "--url", f"{fake_llm(faults={'ignore-auth'}, api_key=KEY).url}/v1", "--api-key", KEY, *FAST
    )
    titles = [f["title"] for f in served.check("rejects_wrong_api_key")["failures"]]
    assert titles and all("serves callers who do not hold the key" in t for t in titles)


def test_a_server_broken_by_an_abort_fails_the_turns_after_the_barge_in(
    fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]
) -> None:
    server = fake_llm(faults={"crash-after-abort"})
    result = run_cli("check", "--url", f"{server.url}/v1", *FAST)
    assert result.code == 1
    failed = {f["probe"] for f in result.check("status_is_success")["failures"]}
    assert failed == {"after_barge_in", "turn_after_barge_in"}
    exchanges = {e["probe"]: e for e in result.report["exchanges"]}
    assert exchanges["barge_in"]["response"]["outcome"] == "aborted"
    assert exchanges["barge_in"]["response"]["status"] == 200  # the abort itself was served


def test_the_barge_in_pause_is_the_time_between_abort_and_re_post(
    fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]
) -> None:
    server = fake_llm()
    result = run_cli("check", "--url", f"{server.url}/v1", *FAST[:-2], "--barge-in-pause-ms", "400")
    assert result.code == 0, result.out
    received = [r for r in server.app.state.fake.recorded if r.path.endswith("/chat/completions")]
    aborted = next(r for r in received if r.outcome == "client_disconnected")
    call_id = aborted.body["call"]["id"]
    resent = next(r for r in received if r.t > aborted.t and r.body["call"]["id"] == call_id)
    # The abort came after the first content, so after the aborted request arrived; the pause runs from the
    # abort. (The server's own t_closed is no bound: it learns of the abort only at its next write.)
    assert resent.t - aborted.t >= 0.4
    assert "after_barge_in" in result.report["settings"]["probes"]
    assert "turn_after_barge_in" in result.report["settings"]["probes"]


def test_a_tool_loop_warns_in_the_default_suite(
    fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]
) -> None:
    server = fake_llm(faults={"tool-loop"})
    result = run_cli("check", "--url", f"{server.url}/v1", *FAST)
    failure = result.check("no_repeated_tool_call")["failures"][0]
    assert failure["probe"] == "after_tool_result" and failure["severity"] == "warning"
    assert "calls get_weather again with the same arguments" in failure["title"]
    assert '"location"' in failure["detail"]


@pytest.mark.parametrize("quirk", ["crlf", "no-space", "keepalive", "usage-chunk"])
def test_unusual_but_correct_streams_pass(
    quirk: str, fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]
) -> None:
    server = fake_llm(quirks={quirk})
    result = run_cli("check", "--url", f"{server.url}/v1", "--strict", *FAST)
    assert result.code == 0, result.out
    assert result.failed() == set()


def test_all_quirks_together_pass(fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]) -> None:
    server = fake_llm(quirks={"crlf", "no-space", "keepalive", "usage-chunk"})
    result = run_cli("check", "--url", f"{server.url}/v1", "--strict", *FAST)
    assert result.code == 0, result.out


def test_extra_fields_rejection_explains_metadata_send_mode(
    fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]
) -> None:
    server = fake_llm(faults={"reject-extra-fields"})
    result = run_cli("check", "--url", f"{server.url}/v1", *FAST)
    failures = {f["probe"]: f for f in result.check("status_is_success")["failures"]}
    assert "metadata_off" not in failures
    assert "metadataSendMode" in failures["metadata_variable"]["detail"]
    assert "metadata_destructured" in failures


def test_extra_fields_rejection_only_warns_when_the_assistant_sends_none(
    fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]
) -> None:
    server = fake_llm(faults={"reject-extra-fields"})
    result = run_cli("check", "--url", f"{server.url}/v1", "--metadata-send-mode", "off", *FAST)
    assert result.code == 0, result.out
    failures = result.check("status_is_success")["failures"]
    assert {f["probe"] for f in failures} == {"metadata_variable", "metadata_destructured"}
    assert {f["severity"] for f in failures} == {"warning"}
    assert failures[0]["note"] == "warns only: Vapi would not send this to your assistant"
    assert run_cli("check", "--url", f"{server.url}/v1", "--metadata-send-mode", "off", "--strict", *FAST).code == 1


def test_unreachable_endpoint_is_a_finding_not_a_crash(run_cli: Callable[..., Any], tmp_path: Any) -> None:
    junit = tmp_path / "junit.xml"
    result = run_cli("check", "--url", "http://127.0.0.1:1/v1", "--junit", str(junit), *FAST)
    assert result.code == 1
    assert result.failed() == {"endpoint_reachable"}
    assert "connection refused" in result.check("endpoint_reachable")["failures"][0]["detail"]
    assert result.report["stopped_early"]
    assert len(result.report["exchanges"]) == 1
    # Nothing that needs a reply is reported as passed: only the URL itself could be judged.
    passed = {c["id"] for c in result.report["checks"] if c["status"] == "passed"}
    assert passed == {"model_url_is_base_url"}
    statuses = {c["id"]: c for c in result.report["checks"]}
    for check_id in ("headers_within_timeout", "status_is_success", "body_is_complete", "no_redirect"):
        assert statuses[check_id]["status"] == "not_judged"
        assert statuses[check_id]["not_judged_reason"] == "no response (connect error)"
    assert result.report["summary"]["checks_passed"] == 1
    assert result.report["summary"]["checks_not_judged"] == len(statuses) - 2
    assert "1 checks passed" in result.out and "not judged" in result.out
    assert "   no response (connect error):\n" in result.out and "status_is_success" in result.out
    skipped = ET.parse(junit).getroot().findall(".//testcase/skipped")
    assert skipped and all((s.get("message") or "").startswith("not judged: ") for s in skipped)


def test_a_stream_cut_by_the_size_limit_does_not_pass_its_ending_checks(
    fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]
) -> None:
    server = fake_llm(faults={"huge-body"})
    result = run_cli("check", "--url", f"{server.url}/v1", *FAST)
    stream_basic = next(e for e in result.report["exchanges"] if e["probe"] == "stream_basic")
    assert stream_basic["response"]["outcome"] == "too_large"
    findings = {f["check"]: f for f in stream_basic["findings"]}
    for check_id in ("stream_ends_with_done", "events_are_terminated", "finish_reason_is_valid"):
        assert findings[check_id]["status"] == "not_judged", findings[check_id]
        assert "not read to its end (too large)" in findings[check_id]["title"]


def test_hanging_endpoint_stops_early(fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]) -> None:
    server = fake_llm(faults={"hang"})
    result = run_cli("check", "--url", f"{server.url}/v1", "--timeout-s", "0.5", "--deadline-s", "1")
    assert result.code == 1
    assert result.report["summary"]["exchanges"] == 1  # the first probe hung: the rest were not sent
    assert "hung" in result.report["stopped_early"]


def test_slow_first_token_fails_timeout(fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]) -> None:
    server = fake_llm(ttft_ms=1500)
    result = run_cli("check", "--url", f"{server.url}/v1", "--timeout-s", "0.5", "--deadline-s", "3")
    assert result.code == 1
    assert "first_delta_within_timeout" in result.failed("error")


def test_doubled_chat_completions_path_is_flagged(
    fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]
) -> None:
    server = fake_llm()
    result = run_cli("check", "--url", f"{server.url}/v1/chat/completions", *FAST)
    assert result.code == 1  # the doubled path is a 404 on the fake
    assert "model_url_is_base_url" in result.failed("warning")
    assert result.report["exchanges"][0]["request"]["url"].endswith("/v1/chat/completions/chat/completions")


def test_repeat_reports_percentiles_over_all_runs(
    fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]
) -> None:
    server = fake_llm()
    result = run_cli("check", "--url", f"{server.url}/v1", "--repeat", "3")
    assert result.code == 0
    probes = len(result.report["settings"]["probes"])
    assert len(result.report["exchanges"]) == 3 * probes
    ttft = result.report["latency"]["ttft_ms"]
    complete = [
        e
        for e in result.report["exchanges"]
        if e["response"]["outcome"] == "complete" and e["request"]["stream"] and e["expect"] == "turn"
    ]
    samples = sorted(e["metrics"]["ttft_ms"] for e in complete if e["metrics"]["ttft_ms"] is not None)
    assert ttft["n"] == len(samples)
    assert ttft["min"] == pytest.approx(samples[0], abs=0.001)
    assert ttft["max"] == pytest.approx(samples[-1], abs=0.001)
    assert ttft["p50"] <= ttft["p90"] <= ttft["p95"] <= ttft["p99"] <= ttft["max"]


def test_disable_switches_a_check_off(fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any]) -> None:
    server = fake_llm(faults={"no-done"})
    result = run_cli("check", "--url", f"{server.url}/v1", "--strict", "--disable", "stream_ends_with_done", *FAST)
    assert result.code == 0
    assert result.check("stream_ends_with_done")["status"] == "not_judged"
    assert result.check("stream_ends_with_done")["not_judged_reason"] == "switched off"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "ftp://x"], "is not an http(s) URL"),
        (["--timeout-s", "abc"], "--timeout-s: 'abc' is not a number"),
        (["--repeat", "0"], "--repeat: '0' must be at least 1"),
        (["--header", "novalue"], "is not NAME:VALUE"),
        (["--disable", "stream_done"], "Did you mean 'stream_ends_with_done'?"),
        (["--timeout-s", "30", "--deadline-s", "20"], "--deadline-s (20) must be greater than --timeout-s (30)"),
        (["--header", "X-A: b\r\nX-Evil: c"], "contains a line break"),
        (["--header", "X A: b"], "is not NAME:VALUE"),
        (["--url", "http://u:secret@127.0.0.1:9/v1"], "credentials in the URL"),
        (["--url", "http://[::1"], "is not a valid URL"),
        (["--url", "http://127.0.0.1:abc/v1"], "is not a valid URL"),
        (["--deadline-s", "nan"], "is not a finite number"),
        (["--report-dir", "README.md"], "--report-dir: cannot create"),
        (["--json", "tests"], "is a directory"),
        (["--metadata-send-mode", "offf"], "'offf' is not one of off, variable, destructured. Did you mean 'off'?"),
        (["--disable", "no_such_check"], "unknown check 'no_such_check'. Did you mean 'no_redirect'?"),
    ],
    ids=[
        "url",
        "timeout",
        "repeat",
        "header",
        "unknown-check",
        "deadline-below-timeout",
        "header-crlf",
        "header-space",
        "url-credentials",
        "url-ipv6",
        "url-port",
        "nan",
        "report-dir-file",
        "json-dir",
        "choice-typo",
        "unknown-check-far",
    ],
)
def test_bad_input_exits_2_with_a_clear_message(args: list[str], message: str, run_cli: Callable[..., Any]) -> None:
    result = run_cli("check", *args)
    assert result.code == 2
    assert message in result.err
    assert "Traceback" not in result.err


def test_options_come_from_the_environment(
    fake_llm: Callable[..., ServerThread], run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = fake_llm(api_key=KEY)
    monkeypatch.setenv("VAPI_HARNESS_URL", f"{server.url}/v1")
    monkeypatch.setenv("VAPI_HARNESS_API_KEY", KEY)
    monkeypatch.setenv("VAPI_HARNESS_MODEL", "from-env")
    result = run_cli("check")
    assert result.code == 0, result.out
    assert result.report["target"]["url"] == f"{server.url}/v1"
    assert result.report["target"]["model"] == "from-env"
    assert result.check("rejects_wrong_api_key")["status"] == "passed"
    flag = run_cli("check", "--model", "from-flag")
    assert flag.report["target"]["model"] == "from-flag"


def test_bad_environment_value_names_the_variable(run_cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAPI_HARNESS_TIMEOUT_S", "soon")
    result = run_cli("check")
    assert result.code == 2
    assert "VAPI_HARNESS_TIMEOUT_S: 'soon' is not a number" in result.err


def test_choices_are_read_in_any_case(run_cli: Callable[..., Any]) -> None:
    result = run_cli("check", "--url", "http://127.0.0.1:1/v1", "--metadata-send-mode", "ofF", *FAST)
    assert result.code == 1  # judged (unreachable), not refused as bad input
    assert result.report is not None and result.report["target"]["metadata_send_mode"] == "off"


def test_a_failing_endpoint_at_80_columns_shows_failures_first_and_fits(
    fake_llm: Callable[..., ServerThread], tmp_path: Any
) -> None:
    server = fake_llm(faults={"no-choices", "no-done"})
    done = run_command(
        "check", "--url", f"{server.url}/v1", "--report-dir", str(tmp_path), *FAST, env={"COLUMNS": "80"}
    )
    assert done.returncode == 1
    out = done.stdout.splitlines()
    progress = [line for line in done.stderr.splitlines() if not line.startswith("Reports: ")]  # a path is kept whole
    assert all(len(line) <= 80 for line in out + progress), done.stdout + done.stderr
    assert out[0] == "Checks" and out[1].startswith(" FAIL  chunks_have_choices  stream_basic (+")
    assert out[2].strip() == "Chunk 1 has no `choices` array"
    assert any(line.startswith(" WARN  stream_ends_with_done") for line in out)
    assert any("checks passed (-v lists them)" in line for line in out)


def test_a_hung_request_shows_a_live_line_on_a_terminal(fake_llm: Callable[..., ServerThread], tmp_path: Any) -> None:
    server = fake_llm(faults={"hang"})
    leader, follower = pty.openpty()
    args = [
        "check",
        "--url",
        f"{server.url}/v1",
        "--report-dir",
        str(tmp_path),
        "--timeout-s",
        "3",
        "--deadline-s",
        "4",
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "harness", *args],
        stdout=subprocess.DEVNULL,
        stderr=follower,
        env={**os.environ, "COLUMNS": "80", "TERM": "xterm"},
    )
    os.close(follower)
    seen = b""
    try:
        for _ in range(200):  # about 20 s at most
            ready, _, _ = select.select([leader], [], [], 0.1)
            if ready:
                try:
                    seen += os.read(leader, 65536)
                except OSError:
                    break
            if b"waiting for headers" in seen and b"s of 3" in seen:
                break
    finally:
        process.kill()
        process.wait(timeout=10)
        os.close(leader)
    assert b"stream_basic  waiting for headers" in seen, seen[-500:]
