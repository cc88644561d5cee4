"""The explorer against real servers on loopback: what it finds, how it keeps each failure's smallest request,
what bounds it, and that a seed repeats a run."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from harness.checks import Finding, Severity, Status
from harness.explore.reports import explore_document, explore_junit, explore_markdown, validate_explore_document
from harness.explore.reproducer import reproducer_line, write_reproducers
from harness.explore.results import ExampleJudged, ExploreEvent, ExploreInfo, ExploreResult, failure_key
from harness.explore.runner import Explorer, ExploreSettings
from harness.fake_llm import FakeLLMConfig, create_app
from harness.protocol import RECORDING_VERSION, Redactor
from harness.servers import ServerThread

API_KEY = "sk-explore-secret-0123456789"


def info(url: str, *, seed: int = 1, max_examples: int = 20, concurrency: int = 1) -> ExploreInfo:
    return ExploreInfo(
        run_id="test-run",
        url=url,
        builtin=False,
        authenticated=False,
        started_at=datetime.now(UTC),
        seed=seed,
        max_examples=max_examples,
        max_run_s=60.0,
        concurrency=concurrency,
        strict=False,
        database=None,
    )


def explore(
    url: str,
    *,
    seed: int = 1,
    max_examples: int = 20,
    concurrency: int = 1,
    max_run_s: float = 60.0,
    strict: bool = False,
    database: Path | None = None,
    api_key: str | None = None,
) -> tuple[ExploreResult, list[ExploreEvent]]:
    events: list[ExploreEvent] = []
    settings = ExploreSettings(
        max_examples=max_examples, max_run_s=max_run_s, concurrency=concurrency, strict=strict, database=database
    )
    explorer = Explorer(
        info(url, seed=seed, max_examples=max_examples, concurrency=concurrency), settings, events.append,
        api_key=api_key,
    )  # fmt: skip
    return explorer.explore(), events


def _body(event: ExampleJudged) -> Mapping[str, Any]:
    body = event.result.exchange.request.json_body
    assert body is not None
    return body


def failed(check: str, title: str) -> Finding:
    return Finding(check, Severity.ERROR, Status.FAILED, title, "detail")


def test_a_failure_key_leaves_out_ids_quotes_and_long_numbers() -> None:
    one = failure_key(failed("chunk_has_no_error", "Chunk chatcmpl-abc12 is an error: 'upstream 1' after 1234 ms"))
    two = failure_key(failed("chunk_has_no_error", "Chunk chatcmpl-zz9 is an error: 'other' after 98765 ms"))
    assert one == two
    assert str(one) == "chunk_has_no_error: Chunk <id> is an error: '…' after <n> ms"


def test_a_failure_key_keeps_statuses_and_checks_apart() -> None:
    assert failure_key(failed("status_is_success", "HTTP 500")) != failure_key(failed("status_is_success", "HTTP 502"))
    assert failure_key(failed("a", "same")) != failure_key(failed("b", "same"))


def test_the_healthy_fake_llm_fails_nothing(fake_llm: Callable[..., ServerThread]) -> None:
    server = fake_llm(ttft_ms=0, chunk_delay_ms=0)
    found, events = explore(f"{server.url}/v1", max_examples=25)
    assert found.passed, [str(k) for k in found.failures]
    assert found.examples == 25
    assert found.own_ms and all(ms >= 0 for ms in found.own_ms)
    assert sum(isinstance(e, ExampleJudged) for e in events) == 25


def test_a_fault_is_found_once_with_its_smallest_request(fake_llm: Callable[..., ServerThread]) -> None:
    server = fake_llm(faults={"error-chunk"}, ttft_ms=0, chunk_delay_ms=0)
    found, events = explore(f"{server.url}/v1", max_examples=30)
    assert not found.passed
    [failure] = found.failures.values()
    assert failure.key.check == "chunk_has_no_error"
    assert failure.severity is Severity.ERROR
    assert failure.examples >= 1
    # The smallest streamed request of all that failed: every other one was at least as large.
    body = failure.result.exchange.request.json_body
    assert body is not None and body["stream"] is True
    assert len(body["messages"]) <= 3
    assert failure.size == (len(failure.result.exchange.request.body), len(body["messages"]))
    news = [key for e in events if isinstance(e, ExampleJudged) for key in e.new]
    assert news == [failure.key]


def test_shrink_steps_count_each_smaller_failing_request(fake_llm: Callable[..., ServerThread]) -> None:
    # A 500 only for a message with an emoji: the first failing example is a large one, and each smaller
    # failing request seen on the way down is one step.
    server = fake_llm(faults={"astral-500"}, ttft_ms=0, chunk_delay_ms=0)
    found, events = explore(f"{server.url}/v1", max_examples=100)
    [failure] = found.failures.values()
    sizes = [
        (len(e.result.exchange.request.body), len(_body(e)["messages"]))
        for e in events
        if isinstance(e, ExampleJudged) and failure.key in e.failed
    ]
    assert failure.size == min(sizes)
    steps = 0
    smallest = sizes[0]
    for size in sizes[1:]:
        if size < smallest:
            smallest, steps = size, steps + 1
    assert failure.shrink_steps == steps >= 1
    assert failure.examples == len(sizes)


def test_the_same_seed_draws_the_same_examples(fake_llm: Callable[..., ServerThread]) -> None:
    server = fake_llm(ttft_ms=0, chunk_delay_ms=0)

    def messages(seed: int) -> list[Any]:
        _, events = explore(f"{server.url}/v1", seed=seed, max_examples=12)
        return [_body(e)["messages"] for e in events if isinstance(e, ExampleJudged)]

    first = messages(7)
    assert messages(7) == first
    assert messages(8) != first


def test_concurrency_sends_several_at_once(fake_llm: Callable[..., ServerThread]) -> None:
    server = fake_llm(ttft_ms=0, chunk_delay_ms=0)
    found, _ = explore(f"{server.url}/v1", max_examples=16, concurrency=4)
    assert found.passed
    assert found.examples == 16


def test_the_run_bound_stops_the_exploration(fake_llm: Callable[..., ServerThread]) -> None:
    server = fake_llm(ttft_ms=300)
    found, _ = explore(f"{server.url}/v1", max_examples=200, max_run_s=1.0)
    assert found.interrupted == "the run exceeded --max-run-s 1"
    assert not found.passed
    assert 0 < found.examples < 200


def test_an_unreachable_endpoint_stops_at_once(fake_llm: Callable[..., ServerThread]) -> None:
    server = fake_llm()
    url = f"{server.url}/v1"
    server.stop()
    found, _ = explore(url, max_examples=50)
    assert found.stopped_early and "Cannot reach" in found.stopped_early
    assert found.examples == 1


def test_the_database_tries_an_earlier_failure_first(fake_llm: Callable[..., ServerThread], tmp_path: Path) -> None:
    # Only a message with an emoji fails: the plainest example (Hypothesis's first) passes, unless the database
    # hands the earlier failure back first.
    server = fake_llm(faults={"astral-500"}, ttft_ms=0, chunk_delay_ms=0)
    url = f"{server.url}/v1"
    _, fresh = explore(url, seed=3, max_examples=100)
    assert not next(e for e in fresh if isinstance(e, ExampleJudged)).failed
    first, _ = explore(url, seed=3, max_examples=100, database=tmp_path / "db")
    assert first.failures and any((tmp_path / "db").rglob("*")), "the failing example was not saved"
    again, events = explore(url, seed=3, max_examples=100, database=tmp_path / "db")
    judged = [e for e in events if isinstance(e, ExampleJudged)]
    assert judged[0].failed, "the saved failure was not tried first"
    assert set(again.failures) == set(first.failures)


def test_the_api_key_is_sent_but_never_written(fake_llm: Callable[..., ServerThread], tmp_path: Path) -> None:
    server = fake_llm(faults={"error-chunk"}, api_key=API_KEY, ttft_ms=0, chunk_delay_ms=0)
    found, _ = explore(f"{server.url}/v1", max_examples=10, api_key=API_KEY)
    [failure] = found.failures.values()
    assert failure.key.check == "chunk_has_no_error"  # the key was accepted: the reply streamed
    redactor = Redactor([API_KEY])
    write_reproducers(found, tmp_path, redactor)
    texts = [
        json.dumps(explore_document(found, redactor)),
        explore_markdown(found, redactor),
        ET.tostring(explore_junit(found, redactor), "unicode"),
        *(path.read_text() for path in tmp_path.iterdir()),
    ]
    for text in texts:
        assert API_KEY not in text
    line = json.loads(reproducer_line(failure, 1, redactor))
    assert line["version"] == RECORDING_VERSION
    assert line["request"]["headers"]["Authorization"] == "[redacted]"
    assert line["request"]["body"] == failure.result.exchange.request.json_body
    assert validate_explore_document(explore_document(found, redactor)) == []


@pytest.mark.parametrize("strict", [False, True])
def test_warnings_fail_only_when_strict(fake_llm: Callable[..., ServerThread], strict: bool) -> None:
    server = fake_llm(faults={"no-done"}, ttft_ms=0, chunk_delay_ms=0)
    found, _ = explore(f"{server.url}/v1", max_examples=10, strict=strict)
    checks = {key.check for key in found.failures}
    if strict:
        assert "stream_ends_with_done" in checks
        assert {f.severity for f in found.failures.values()} == {Severity.WARNING}
    else:
        assert found.passed and not checks


class _Flaky:
    """An ASGI app in front of the fake LLM that answers its second completion, and no other, with HTTP 500."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.calls = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].endswith("/chat/completions"):
            self.calls += 1
            if self.calls == 2:
                await send(
                    {"type": "http.response.start", "status": 500, "headers": [(b"content-type", b"text/plain")]}
                )
                await send({"type": "http.response.body", "body": b"flaky"})
                return
        await self.app(scope, receive, send)


def test_a_flaky_endpoint_is_noted_and_its_failure_kept(serve: Callable[[Any], ServerThread]) -> None:
    server = serve(_Flaky(create_app(FakeLLMConfig(ttft_ms=0, chunk_delay_ms=0))))
    found, _ = explore(f"{server.url}/v1", max_examples=20)
    assert "status_is_success" in {key.check for key in found.failures}
    assert any("flaky" in note for note in found.notes), found.notes


def test_a_second_fault_behind_a_shallow_one_is_found_too(fake_llm: Callable[..., ServerThread]) -> None:
    # An emoji anywhere answers 500 at once; a web call breaks the stream. Hypothesis stops generating soon after
    # the first failure it finds; the next round, the known one no longer stops it.
    server = fake_llm(faults={"astral-500", "web-call-invalid-json"}, ttft_ms=0, chunk_delay_ms=0)
    found, _ = explore(f"{server.url}/v1", max_examples=150)
    assert {key.check for key in found.failures} == {"status_is_success", "sse_data_is_json"}
    assert found.examples <= 150 + 100  # the last round may shrink past the budget, not run on
