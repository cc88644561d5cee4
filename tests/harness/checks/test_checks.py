"""Every check against recorded byte streams: an ideal reply passes, each defect fails exactly where it should."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.checks import REGISTRY, CheckContext, Expect, RecordedReply, Severity, Status, Thresholds, run_checks
from mock_vapi.exchange import Exchange, Outcome
from tests.streams import DONE, IDEAL, ROLE, STOP, TOOL_HEAD, WEATHER_TOOL, WORDS, chunk, recorded


def findings(exchange: Exchange, expect: Expect = Expect.TURN) -> dict[str, Status]:
    ctx = CheckContext("probe", expect, Thresholds())
    return {f.check: f.status for f in run_checks(ctx, exchange)}


def failed(exchange: Exchange, expect: Expect = Expect.TURN) -> set[str]:
    return {k for k, v in findings(exchange, expect).items() if v is Status.FAILED}


def test_ideal_stream_passes_every_applicable_check() -> None:
    result = findings(recorded(IDEAL))
    assert result
    unjudged = {k for k, v in result.items() if v is Status.NOT_JUDGED}
    # What a plain streamed answer gives nothing to judge: no tool call, no 4xx, no replay, no usage asked for.
    assert unjudged == {
        "error_has_envelope",
        "matches_recording",
        "no_repeated_tool_call",
        "tool_calls_assemble",
        "tool_calls_name_offered",
        "usage_when_requested",
    }
    assert all(status is Status.PASSED for k, status in result.items() if k not in unjudged), result


def test_a_refused_connection_judges_nothing_but_reachability_and_the_url() -> None:
    ctx = CheckContext("probe", Expect.TURN, Thresholds())
    exchange = recorded([], status=None, outcome=Outcome.CONNECT_ERROR, url="http://127.0.0.1:1/v1")
    found = run_checks(ctx, exchange)
    judged = {f.check: f.status for f in found if f.status is not Status.NOT_JUDGED}
    assert judged == {"endpoint_reachable": Status.FAILED, "model_url_is_base_url": Status.PASSED}
    reasons = {f.check: f.title for f in found if f.status is Status.NOT_JUDGED}
    assert reasons["status_is_success"] == "no response (connect error)"
    assert reasons["chunks_have_choices"] == "no response (connect error)"


def test_a_stream_cut_by_the_size_bound_is_not_judged_on_how_it_ends() -> None:
    exchange = recorded(IDEAL[:3], outcome=Outcome.TOO_LARGE)
    result = findings(exchange)
    assert result["body_within_size_limit"] is Status.FAILED
    for check_id in ("stream_ends_with_done", "events_are_terminated", "last_event_terminated"):
        assert result[check_id] is Status.NOT_JUDGED, check_id


def test_a_refusal_with_another_status_warns_and_serving_fails() -> None:
    ctx = CheckContext("wrong_api_key", Expect.AUTH, Thresholds())
    refused = recorded([b'{"error": {"message": "bad key", "type": "auth_error"}}'], status=400, stream=False)
    served = recorded(IDEAL, status=200)
    [refusal] = [f for f in run_checks(ctx, refused) if f.check == "rejects_wrong_api_key"]
    [open_door] = [f for f in run_checks(ctx, served) if f.check == "rejects_wrong_api_key"]
    assert (refusal.status, refusal.severity) == (Status.FAILED, Severity.WARNING)
    assert "refusing" in refusal.title
    assert (open_door.status, open_door.severity) == (Status.FAILED, Severity.ERROR)
    assert "serves callers" in open_door.title


def test_a_reply_that_repeats_the_answered_tool_call_is_a_tool_loop() -> None:
    history: list[dict[str, Any]] = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'}}
        ]},
        {"role": "tool", "tool_call_id": "c1", "content": "Sunny"},
    ]  # fmt: skip

    def reply(arguments: str, messages: list[dict[str, Any]]) -> Exchange:
        frames = [ROLE, chunk({"tool_calls": [TOOL_HEAD]}),
                  chunk({"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]}), DONE]  # fmt: skip
        exchange = recorded(frames, tools=(WEATHER_TOOL,))
        assert exchange.request.json_body is not None
        exchange.request = exchange.request.with_json_body({**exchange.request.json_body, "messages": messages})
        return exchange

    assert "no_repeated_tool_call" in failed(reply('{ "location": "Paris" }', history))  # same JSON, other spacing
    assert findings(reply('{"location":"Rome"}', history))["no_repeated_tool_call"] is Status.PASSED
    assert findings(reply('{"location":"Paris"}', history[:1]))["no_repeated_tool_call"] is Status.NOT_JUDGED


def test_ideal_completion_passes() -> None:
    body = {
        "id": "c1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
    }
    exchange = recorded([json.dumps(body).encode()], stream=False, headers={"content-type": "application/json"})
    assert failed(exchange) == set()


ERROR_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    # id: (check that must fail, recorded() arguments)
    "json-body": ("stream_is_sse", {"frames": [b'{"choices":[{"message":{"content":"hi"}}]}']}),
    "empty-body": ("stream_is_sse", {"frames": []}),
    "not-json": ("sse_data_is_json", {"frames": [ROLE, b"data: hello there\n\n", *WORDS, STOP, DONE]}),
    "empty-data": ("sse_data_is_json", {"frames": [ROLE, b"data:\n\n", *WORDS, STOP, DONE]}),
    "no-choices": ("chunks_have_choices", {"frames": [ROLE, b'data: {"function_call":{"name":"x"}}\n\n', *WORDS]}),
    "null-error-no-choices": ("chunks_have_choices", {"frames": [ROLE, b'data: {"error":null}\n\n', *WORDS, DONE]}),
    "nan": ("sse_data_is_json", {"frames": [ROLE, chunk({"content": "Hi"}, logprob=float("nan")), DONE]}),
    "data-null": ("chunks_have_choices", {"frames": [ROLE, b"data: null\n\n", *WORDS, STOP, DONE]}),
    "empty-error-object": ("chunk_has_no_error", {"frames": [ROLE, chunk({"content": "Hi"}, error={}), DONE]}),
    "null-choices": ("chunks_have_choices", {"frames": [ROLE, b'data: {"choices":null}\n\n', *WORDS, DONE]}),
    "scalar-chunk": ("chunks_have_choices", {"frames": [ROLE, b"data: 42\n\n", *WORDS, DONE]}),
    "error-chunk": ("chunk_has_no_error", {"frames": [ROLE, b'data: {"error":{"message":"boom"}}\n\n', DONE]}),
    "event-error": ("no_error_event", {"frames": [ROLE, *WORDS, b'event: error\ndata: {"message":"x"}\n\n', DONE]}),
    "no-content": ("first_delta_within_timeout", {"frames": [ROLE, STOP, DONE]}),
    "whitespace-only": ("first_delta_within_timeout", {"frames": [ROLE, chunk({"content": "  \n"}), STOP, DONE]}),
    "legacy-message-chunks": (
        "first_delta_within_timeout",
        {"frames": [b'data: {"choices":[{"index":0,"message":{"content":"hi"},"finish_reason":"function_call"}]}\n\n']},
    ),
    "timeout": ("first_delta_within_timeout", {"frames": [ROLE], "outcome": Outcome.FIRST_DELTA_TIMEOUT}),
    "unterminated": ("last_event_terminated", {"frames": [ROLE, *WORDS[:2], WORDS[2].rstrip(b"\n")]}),
    "tool-no-index": (
        "tool_calls_assemble",
        {"frames": [ROLE, chunk({"tool_calls": [{k: v for k, v in TOOL_HEAD.items() if k != "index"}]}), DONE]},
    ),
    "tool-no-name": (
        "tool_calls_assemble",
        {"frames": [ROLE, chunk({"tool_calls": [{**TOOL_HEAD, "function": {"arguments": "{}"}}]}), DONE]},
    ),
    "tool-bad-json": (
        "tool_calls_assemble",
        {
            "frames": [
                ROLE,
                chunk({"tool_calls": [TOOL_HEAD]}),
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"location": "Par'}}]}),
                chunk({}, "tool_calls"),
                DONE,
            ]
        },
    ),
    "tool-object-arguments": (
        "tool_calls_assemble",
        {"frames": [ROLE, chunk({"tool_calls": [{**TOOL_HEAD, "function": {"name": "f", "arguments": {"a": 1}}}]})]},
    ),
    "status-500": (
        "status_is_success",
        {"frames": [b'{"error":{"message":"x","type":"server_error"}}'], "status": 500},
    ),
    "never-closes": ("response_ends_after_last_chunk", {"frames": IDEAL, "outcome": Outcome.CLOSE_TIMEOUT}),
    "stalls": ("response_ends_after_last_chunk", {"frames": [ROLE, WORDS[0]], "outcome": Outcome.IDLE_TIMEOUT}),
    "endless": ("response_ends_after_last_chunk", {"frames": [ROLE, *WORDS], "outcome": Outcome.DEADLINE}),
    "broken": ("body_is_complete", {"frames": [ROLE, WORDS[0]], "outcome": Outcome.BROKEN}),
    "too-large": ("body_within_size_limit", {"frames": [ROLE, *WORDS], "outcome": Outcome.TOO_LARGE}),
    "no-headers": ("headers_within_timeout", {"frames": [], "status": None, "outcome": Outcome.HEADERS_TIMEOUT}),
    "refused": ("endpoint_reachable", {"frames": [], "status": None, "outcome": Outcome.CONNECT_ERROR}),
}


@pytest.mark.parametrize(("check_id", "kwargs"), ERROR_CASES.values(), ids=list(ERROR_CASES))
def test_error_defect_fails_its_check(check_id: str, kwargs: dict[str, Any]) -> None:
    assert REGISTRY[check_id].severity is Severity.ERROR
    assert check_id in failed(recorded(**kwargs))


WARNING_CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "no-done": ("stream_ends_with_done", {"frames": [ROLE, *WORDS, STOP]}),
    "no-finish": ("finish_reason_is_valid", {"frames": [ROLE, *WORDS, DONE]}),
    "bad-finish": ("finish_reason_is_valid", {"frames": [ROLE, *WORDS, chunk({}, "end_turn"), DONE]}),
    "content-type": ("content_type_is_event_stream", {"frames": IDEAL, "headers": {"content-type": "text/plain"}}),
    "event-lines": ("no_event_field", {"frames": [ROLE, b"event: message\n" + WORDS[0], *WORDS[1:], STOP, DONE]}),
    "no-role": ("first_delta_has_role", {"frames": [*WORDS, STOP, DONE]}),
    "no-id": (
        "chunk_fields_present",
        {"frames": [ROLE, b'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n']},
    ),
    "wrong-object": (
        "chunk_fields_present",
        {"frames": [ROLE, *WORDS[:1], chunk({}, "stop", object="chat.completion")]},
    ),
    "ids-differ": ("chunk_fields_consistent", {"frames": [ROLE, chunk({"content": "x"}, id="c2"), STOP, DONE]}),
    "schema": ("chunks_match_openai_schema", {"frames": [ROLE, chunk({"content": 5}), *WORDS, STOP, DONE]}),
    "buffered": ("stream_is_incremental", {"frames": IDEAL, "gap_s": 0.0001}),
    "stall": ("no_long_stall", {"frames": IDEAL, "times": [0.1, 0.2, 0.3, 2.5, 2.6, 2.7, 2.8]}),
    "slow-sentence": ("first_sentence_within_budget", {"frames": IDEAL, "times": [0.1, 0.2, 0.3, 2.0, 2.1, 2.2, 2.3]}),
    "after-done": ("nothing_after_done", {"frames": [*IDEAL, WORDS[0]]}),
    "two-dones": ("nothing_after_done", {"frames": [*IDEAL, DONE]}),
    "utf8": ("stream_is_utf8", {"frames": [ROLE, WORDS[0].replace(b"We", b"W\xffe"), *WORDS[1:], STOP, DONE]}),
    "oversize": (
        "events_within_size_limit",
        {"frames": [ROLE, *WORDS, chunk({"content": "x" * 500}), STOP, DONE], "max_event_bytes": 300},
    ),
    "unterminated-done": ("events_are_terminated", {"frames": [ROLE, *WORDS, STOP, b"data: [DONE]"]}),
    "tool-not-offered": (
        "tool_calls_name_offered",
        {
            "frames": [
                ROLE,
                chunk({"tool_calls": [{**TOOL_HEAD, "function": {"name": "book", "arguments": "{}"}}]}),
                DONE,
            ]
        },
    ),
    "tool-finish-without-tools": ("finish_reason_is_valid", {"frames": [ROLE, *WORDS, chunk({}, "tool_calls"), DONE]}),
    "bom": ("no_byte_order_mark", {"frames": [b"\xef\xbb\xbf" + ROLE, *WORDS, STOP, DONE]}),
    "no-usage": ("usage_when_requested", {"frames": IDEAL, "extra_body": {"stream_options": {"include_usage": True}}}),
    "doubled-url": ("model_url_is_base_url", {"frames": IDEAL, "url": "http://127.0.0.1:9/v1/chat/completions"}),
    "query-url": ("model_url_is_base_url", {"frames": IDEAL, "url": "http://127.0.0.1:9/v1?key=1"}),
}


@pytest.mark.parametrize(("check_id", "kwargs"), WARNING_CASES.values(), ids=list(WARNING_CASES))
def test_warning_defect_fails_only_its_warning(check_id: str, kwargs: dict[str, Any]) -> None:
    assert REGISTRY[check_id].severity is Severity.WARNING
    bad = failed(recorded(**kwargs))
    assert check_id in bad
    errors = {c for c in bad if REGISTRY[c].severity is Severity.ERROR}
    assert errors == set(), errors


UNUSUAL_BUT_CORRECT = {
    "crlf": [f.replace(b"\n", b"\r\n") for f in IDEAL],
    "cr-only": [f.replace(b"\n", b"\r") for f in IDEAL],
    "no-space": [f.replace(b"data: ", b"data:") for f in IDEAL],
    "keepalive": [b": keep-alive\n\n", ROLE, b":\n\n", *WORDS, b": ping\n\n", STOP, DONE],
    "usage-chunk": [
        *IDEAL[:-1],
        b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],'
        b'"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}\n\n',
        DONE,
    ],
    "split-everywhere": [bytes([b]) for b in b"".join(IDEAL)],
    "multi-line-data": [ROLE, b'data: {"choices":[{"index":0,\ndata: "delta":{"content":"Hi there."}}]}\n\n', DONE],
    "one-read": [b"".join(IDEAL)],
}


@pytest.mark.parametrize("frames", UNUSUAL_BUT_CORRECT.values(), ids=list(UNUSUAL_BUT_CORRECT))
def test_unusual_but_correct_streams_have_no_errors(frames: list[bytes]) -> None:
    exchange = recorded(frames, gap_s=0.001)
    bad = failed(exchange)
    assert {c for c in bad if REGISTRY[c].severity is Severity.ERROR} == set()
    assert exchange.text.strip()


def test_minimal_vapi_support_example_passes_errors() -> None:
    frames = [b'data: {"choices":[{"delta":{"content":"Hello from the server."},"index":0}]}\n\n', DONE]
    bad = failed(recorded(frames))
    assert {c for c in bad if REGISTRY[c].severity is Severity.ERROR} == set()
    assert "chunk_fields_present" in bad  # a warning only


def test_tool_call_stream_assembles() -> None:
    frames = [
        chunk({"role": "assistant", "content": None, "tool_calls": [TOOL_HEAD]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"location":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk({}, "tool_calls"),
        DONE,
    ]
    result = findings(recorded(frames, tools=(WEATHER_TOOL,)))
    assert result["tool_calls_assemble"] is Status.PASSED
    assert result["first_delta_within_timeout"] is Status.PASSED
    assert {k for k, v in result.items() if v is Status.FAILED} == set()


def test_non_streamed_reply_without_message_fails() -> None:
    body = {"choices": [{"index": 0, "delta": {"content": "Hi"}}]}
    exchange = recorded([json.dumps(body).encode()], stream=False, headers={"content-type": "application/json"})
    assert "message_in_reply" in failed(exchange)


def test_non_streamed_tool_call_with_object_arguments_fails() -> None:
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}}
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [call]}}]}
    exchange = recorded([json.dumps(body).encode()], stream=False)
    assert "tool_calls_are_valid" in failed(exchange)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, b'{"error":{"message":"bad","type":"invalid_request_error"}}', set()),
        (500, b"oops", {"malformed_request_rejected"}),
        (200, b"{}", {"malformed_request_rejected"}),
    ],
    ids=["400-envelope", "500", "200"],
)
def test_malformed_body_expects_4xx(status: int, body: bytes, expected: set[str]) -> None:
    exchange = recorded([body], status=status, headers={"content-type": "application/json"})
    assert failed(exchange, Expect.MALFORMED) == expected


def test_4xx_without_envelope_warns() -> None:
    exchange = recorded([b"Bad Request"], status=400, headers={"content-type": "text/plain"})
    assert failed(exchange, Expect.MALFORMED) == {"error_has_envelope"}


@pytest.mark.parametrize(
    ("status", "ok"), [(401, True), (403, True), (200, False), (400, False)], ids=["401", "403", "200", "400"]
)
def test_wrong_key_expects_401_or_403(status: int, ok: bool) -> None:
    exchange = recorded([b'{"error":{"message":"no","type":"auth"}}'], status=status)
    assert ("rejects_wrong_api_key" in failed(exchange, Expect.AUTH)) is not ok


def test_unreachable_endpoint_only_fails_reachability() -> None:
    exchange = recorded([], status=None, outcome=Outcome.CONNECT_ERROR)
    assert failed(exchange) == {"endpoint_reachable"}


def test_barge_in_is_judged_only_on_reaching_the_server() -> None:
    exchange = recorded([ROLE, WORDS[0]], outcome=Outcome.ABORTED)
    result = findings(exchange, Expect.BARGE_IN)
    assert set(result) == {"endpoint_reachable", "headers_within_timeout", "status_is_success", "response_is_http"}
    assert all(v is Status.PASSED for v in result.values())


def test_failure_quotes_what_was_received() -> None:
    exchange = recorded([ROLE, b'data: {"function_call":{"name":"transferCall"}}\n\n', DONE])
    ctx = CheckContext("probe", Expect.TURN, Thresholds())
    finding = next(f for f in run_checks(ctx, exchange) if f.check == "chunks_have_choices")
    assert "transferCall" in finding.detail
    assert "choices" in finding.title


def test_disabled_checks_do_not_run() -> None:
    ctx = CheckContext("probe", Expect.TURN, Thresholds())
    found = run_checks(ctx, recorded([ROLE, *WORDS, STOP]), frozenset({"stream_ends_with_done"}))
    ran = {f.check: f for f in found}
    assert ran["stream_ends_with_done"].status is Status.NOT_JUDGED
    assert ran["stream_ends_with_done"].title == "switched off"
    assert ran["chunks_have_choices"].status is Status.PASSED


def test_every_check_has_a_rationale_and_a_test_case() -> None:
    covered = {c for c, _ in ERROR_CASES.values()} | {c for c, _ in WARNING_CASES.values()}
    covered |= {"message_in_reply", "tool_calls_are_valid", "malformed_request_rejected", "rejects_wrong_api_key"}
    covered |= {"error_has_envelope", "completion_matches_openai_schema", "no_redirect", "tool_calls_name_offered"}
    covered |= {"matches_recording", "no_repeated_tool_call", "response_is_http"}
    assert set(REGISTRY) == covered
    assert all(c.rationale for c in REGISTRY.values())


def test_redirected_request_warns() -> None:
    exchange = recorded(IDEAL)
    exchange.redirects = ["http://127.0.0.1:9/old/chat/completions"]
    assert failed(exchange) == {"no_redirect"}


def test_completion_schema_violation_warns() -> None:
    body = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}]}
    exchange = recorded([json.dumps(body).encode()], stream=False)
    assert failed(exchange) == {"completion_matches_openai_schema"}


@pytest.mark.parametrize(
    ("reference", "frames", "status", "fails"),
    [
        (RecordedReply(200, (), has_content=True), IDEAL, 200, False),
        (RecordedReply(200, (), has_content=True), [b'{"error":{"message":"x","type":"y"}}'], 500, True),
        (RecordedReply(200, ("get_weather",)), IDEAL, 200, True),
        (RecordedReply(200, (), has_content=True), [ROLE, STOP, DONE], 200, True),
        (RecordedReply(500), [b"oops"], 500, False),
        (RecordedReply(None), IDEAL, 200, False),
    ],
    ids=["same", "now-failing", "tools-lost", "now-silent", "failed-before-too", "no-status-recorded"],
)
def test_matches_recording(reference: RecordedReply, frames: list[bytes], status: int, fails: bool) -> None:
    ctx = CheckContext("replay_1", Expect.TURN, Thresholds(), reference)
    result = {f.check: f.status for f in run_checks(ctx, recorded(frames, status=status))}
    assert (result["matches_recording"] is Status.FAILED) is fails


def test_matches_recording_quotes_the_recorded_reply() -> None:
    ctx = CheckContext("replay_1", Expect.TURN, Thresholds(), RecordedReply(200, ("get_weather",)))
    lost = next(f for f in run_checks(ctx, recorded(IDEAL)) if f.check == "matches_recording")
    assert (lost.title, lost.detail) == ("The replay called other tools", "Recorded ['get_weather'], replay []")
    ctx = CheckContext("replay_1", Expect.TURN, Thresholds(), RecordedReply(502))
    unjudged = next(f for f in run_checks(ctx, recorded(IDEAL)) if f.check == "matches_recording")
    assert unjudged.title == "the recorded reply was not a success (HTTP 502)"


def test_matches_recording_needs_a_recording() -> None:
    assert findings(recorded(IDEAL))["matches_recording"] is Status.NOT_JUDGED
