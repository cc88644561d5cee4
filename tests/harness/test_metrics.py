"""Voice-latency metrics of one exchange, and percentiles across many."""

from __future__ import annotations

import json

import pytest

from harness.metrics import (
    FIRST_SENTENCE_MIN_CHARS,
    METRICS,
    Distribution,
    exchange_metrics,
    first_sentence_time,
    longest_content_gap,
    percentile,
)
from harness.protocol import DONE, SSEEvent
from mock_vapi import CustomLLMModel, build_request
from mock_vapi.exchange import Exchange, Outcome, ParsedEvent

MODEL = CustomLLMModel(url="http://127.0.0.1:9/v1", model="m")
MESSAGES = [{"role": "user", "content": "hi"}]
STREAMED = build_request(MODEL, MESSAGES)
T0 = 100.0


def content(text: str) -> str:
    return json.dumps({"choices": [{"index": 0, "delta": {"content": text}}]})


ROLE = json.dumps({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})
TOOL = json.dumps(
    {
        "choices": [
            {
                "index": 0,
                "delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": ""}}]},
            }
        ]
    }
)
FINISH = json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})


def make_exchange(
    events: list[tuple[float, str]],
    *,
    outcome: Outcome = Outcome.COMPLETE,
    t_end: float | None = None,
    t_headers: float | None = None,
    unterminated_last: bool = False,
    stream: bool = True,
) -> Exchange:
    """An exchange started at T0 whose events arrived `t` seconds after it; times are offsets from T0."""
    request = STREAMED if stream else build_request(MODEL, MESSAGES, stream=False)
    exchange = Exchange(
        request,
        t_start=T0,
        outcome=outcome,
        t_end=None if t_end is None else T0 + t_end,
        t_headers=None if t_headers is None else T0 + t_headers,
    )
    done = False
    for i, (t, data) in enumerate(events):
        terminated = not (unterminated_last and i == len(events) - 1)
        sse = SSEEvent(index=i, t=T0 + t, data=data, terminated=terminated, after_done=done)
        exchange.events.append(ParsedEvent.parse(sse))
        done = done or sse.is_done
    return exchange


# percentile and Distribution


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([1, 2, 3, 4], 0.5, 2.5),
        ([1, 2, 3, 4], 0.9, 3.7),
        ([1, 2, 3, 4], 0.95, 3.85),
        ([1, 2, 3, 4], 0.0, 1.0),
        ([1, 2, 3, 4], 1.0, 4.0),
        ([10, 20], 0.25, 12.5),
        ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.99, 9.91),
        ([1, 2, 3], 0.5, 2.0),
        ([7.5], 0.5, 7.5),
        ([7.5], 0.99, 7.5),
    ],
    ids=["p50-even", "p90", "p95", "p0", "p100", "two-values", "p99-of-ten", "p50-odd", "single-p50", "single-p99"],
)
def test_percentile_interpolates_linearly(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_of_no_values_raises() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)


def test_distribution_ignores_none_and_sorts() -> None:
    dist = Distribution.of([4.0, None, 1.0, 3.0, None, 2.0])
    assert dist is not None
    assert (dist.n, dist.min, dist.mean, dist.max) == (4, 1.0, 2.5, 4.0)
    assert dist.percentiles == pytest.approx({"p50": 2.5, "p90": 3.7, "p95": 3.85, "p99": 3.97})


def test_distribution_of_a_generator() -> None:
    dist = Distribution.of(v * 10.0 for v in (3, 1, 2))
    assert dist is not None
    assert (dist.n, dist.min, dist.max, dist.percentiles["p50"]) == (3, 10.0, 30.0, 20.0)


@pytest.mark.parametrize("samples", [[], [None], [None, None]], ids=["empty", "one-none", "all-none"])
def test_distribution_of_no_samples_is_none(samples: list[float | None]) -> None:
    assert Distribution.of(samples) is None


# first_sentence_time


def test_first_sentence_ends_at_the_first_boundary_past_30_chars() -> None:
    exchange = make_exchange(
        [
            (0.1, ROLE),
            (0.2, content("Hi. ")),
            (0.3, content("I can help you with your booking")),
            (0.4, content(" today!")),
            (0.5, content(" Anything else?")),
        ],
        t_end=0.6,
    )
    # The "." at 0.2 is too early to speak on its own.
    assert first_sentence_time(exchange) == T0 + 0.4


@pytest.mark.parametrize("mark", [".", "!", "?"], ids=["period", "bang", "question"])
def test_sentence_boundary_marks(mark: str) -> None:
    text = "x" * (FIRST_SENTENCE_MIN_CHARS - 1) + mark
    exchange = make_exchange([(0.1, content(text)), (0.2, content(" more"))], t_end=0.5)
    assert first_sentence_time(exchange) == T0 + 0.1


@pytest.mark.parametrize(("length", "expected"), [(29, 0.5), (30, 0.1)], ids=["29-chars", "30-chars"])
def test_sentence_needs_30_chars(length: int, expected: float) -> None:
    text = "x" * (length - 1) + "."
    exchange = make_exchange([(0.1, content(text)), (0.2, content(" more"))], t_end=0.5)
    assert first_sentence_time(exchange) == T0 + expected


def test_sentence_boundary_split_across_events_counts_all_text() -> None:
    exchange = make_exchange(
        [(0.1, content("x" * 20)), (0.2, content("y" * 9)), (0.3, content(".")), (0.4, content(" z"))],
        t_end=0.5,
    )
    assert first_sentence_time(exchange) == T0 + 0.3


@pytest.mark.parametrize(
    "tag",
    ["<flush />", "<flush>", "</flush>", "<FLUSH/>", "<  flush  />", "< / Flush >"],
    ids=["self-closing", "open", "close", "upper", "spaced", "spaced-close"],
)
def test_flush_tag_counts_at_once(tag: str) -> None:
    exchange = make_exchange(
        [(0.1, content("Sure")), (0.2, content(f" {tag}")), (0.3, content(" and now a long sentence that ends."))],
        t_end=0.5,
    )
    assert first_sentence_time(exchange) == T0 + 0.2


@pytest.mark.parametrize(
    "parts",
    [("Okay <fl", "ush /> then"), ("Okay <", "/flush>"), ("Okay <flush /", ">"), ("Okay", " <flush>")],
    ids=["mid-name", "after-lt", "before-gt", "whole-in-second"],
)
def test_flush_tag_split_across_events(parts: tuple[str, str]) -> None:
    first, second = parts
    exchange = make_exchange([(0.1, content(first)), (0.2, content(second)), (0.3, content(" x"))], t_end=0.5)
    assert first_sentence_time(exchange) == T0 + 0.2


@pytest.mark.parametrize(
    "text", ["flush", "< flush / >", "<flushing>"], ids=["bare-word", "space-before-gt", "longer-name"]
)
def test_text_that_is_not_a_flush_tag(text: str) -> None:
    # Vapi's pattern is /<\s*flush\s*\/?>|<\s*\/\s*flush\s*>/i: no space between "/" and ">".
    exchange = make_exchange([(0.1, content(text)), (0.2, content(" it"))], t_end=0.5)
    assert first_sentence_time(exchange) == T0 + 0.5


def test_short_complete_reply_falls_back_to_the_end() -> None:
    exchange = make_exchange([(0.1, content("Hi there.")), (0.2, FINISH), (0.3, DONE)], t_end=0.4)
    assert first_sentence_time(exchange) == T0 + 0.4


def test_short_complete_reply_without_an_end_falls_back_to_last_content() -> None:
    exchange = make_exchange([(0.1, content("Hi")), (0.2, content(" there")), (0.3, FINISH)], t_end=None)
    assert first_sentence_time(exchange) == T0 + 0.2


@pytest.mark.parametrize("outcome", [Outcome.IDLE_TIMEOUT, Outcome.ABORTED, Outcome.BROKEN])
def test_a_reply_cut_before_a_sentence_has_no_first_sentence(outcome: Outcome) -> None:
    exchange = make_exchange(
        [(0.1, content("Hi")), (0.2, content(" there")), (0.3, FINISH)], outcome=outcome, t_end=0.9
    )
    assert first_sentence_time(exchange) is None  # a barge-in must not add a false sentence at its first token


def test_a_sentence_completed_before_the_cut_still_counts() -> None:
    sentence = "Our office opens at nine tomorrow morning."
    exchange = make_exchange([(0.1, content(sentence)), (0.2, content(" And"))], outcome=Outcome.ABORTED, t_end=0.3)
    assert first_sentence_time(exchange) == T0 + 0.1


@pytest.mark.parametrize(
    "events",
    [[], [(0.1, ROLE), (0.2, FINISH), (0.3, DONE)], [(0.1, content("  ")), (0.2, content("\n"))], [(0.1, TOOL)]],
    ids=["no-events", "no-content", "whitespace-only", "tool-call-only"],
)
def test_first_sentence_without_content_is_none(events: list[tuple[float, str]]) -> None:
    assert first_sentence_time(make_exchange(events, t_end=0.5)) is None


def test_first_sentence_ignores_text_after_done() -> None:
    late = "This sentence is long enough to be spoken."
    exchange = make_exchange([(0.1, content("Hi")), (0.2, DONE), (0.3, content(late))], t_end=0.4)
    assert first_sentence_time(exchange) == T0 + 0.4


def test_first_sentence_ignores_an_unterminated_event() -> None:
    late = "This sentence is long enough to be spoken."
    exchange = make_exchange([(0.1, content("Hi")), (0.3, content(late))], t_end=0.4, unterminated_last=True)
    assert first_sentence_time(exchange) == T0 + 0.4  # the body's end, not the dropped event


# longest_content_gap


def test_longest_gap_and_the_index_before_it() -> None:
    exchange = make_exchange(
        [(0.05, ROLE), (0.1, content("a")), (0.2, content("b")), (0.6, content("c")), (0.7, content("d"))]
    )
    gap = longest_content_gap(exchange)
    assert gap is not None
    assert gap[0] == pytest.approx(400.0)
    assert gap[1] == 2  # the SSE index of "b", not its position among content events


def test_longest_gap_skips_whitespace_and_empty_events() -> None:
    exchange = make_exchange(
        [(0.1, content("a")), (0.3, content(" ")), (0.5, ROLE), (0.9, content("b")), (1.0, content("c"))]
    )
    gap = longest_content_gap(exchange)
    assert gap is not None
    assert gap[0] == pytest.approx(800.0)
    assert gap[1] == 0


def test_longest_gap_counts_tool_call_fragments() -> None:
    exchange = make_exchange([(0.1, content("a")), (0.2, TOOL), (0.9, TOOL)])
    gap = longest_content_gap(exchange)
    assert gap is not None
    assert gap[0] == pytest.approx(700.0)
    assert gap[1] == 1


@pytest.mark.parametrize(
    "events",
    [
        [],
        [(0.1, content("a"))],
        [(0.1, content("a")), (0.2, content(" ")), (0.3, DONE)],
        [(0.1, content("a")), (0.2, DONE), (0.9, content("b"))],
    ],
    ids=["none", "one", "one-plus-whitespace", "second-after-done"],
)
def test_longest_gap_needs_two_content_events(events: list[tuple[float, str]]) -> None:
    assert longest_content_gap(make_exchange(events)) is None


# exchange_metrics


def test_metrics_of_a_clean_stream() -> None:
    exchange = make_exchange(
        [
            (0.1, ROLE),
            (0.15, content(" ")),
            (0.2, content("Hello")),
            (0.25, content(" world.")),
            (0.3, FINISH),
            (0.35, DONE),
        ],
        t_headers=0.05,
        t_end=0.4,
    )
    metrics = exchange_metrics(exchange)
    assert list(metrics) == list(METRICS)
    assert metrics == pytest.approx(
        {
            "headers_ms": 50.0,
            "first_event_ms": 100.0,
            "ttft_ms": 200.0,  # not the whitespace-only event at 150 ms
            "first_tool_delta_ms": None,
            "first_sentence_ms": 400.0,  # short reply: its end
            "total_ms": 400.0,
            "max_gap_ms": 50.0,
            "chunk_count": 5.0,  # role, whitespace, two contents, finish; not [DONE]
            "content_chars_per_s": len(" Hello world.") / 0.05,
        }
    )


def test_ttft_ignores_tool_call_events() -> None:
    exchange = make_exchange([(0.1, TOOL), (0.2, TOOL), (0.3, content("Done, booked.")), (0.4, DONE)], t_end=0.5)
    metrics = exchange_metrics(exchange)
    assert metrics["first_tool_delta_ms"] == pytest.approx(100.0)
    assert metrics["ttft_ms"] == pytest.approx(300.0)


def test_tool_call_only_stream_has_no_ttft() -> None:
    metrics = exchange_metrics(make_exchange([(0.1, ROLE), (0.2, TOOL), (0.3, FINISH), (0.4, DONE)], t_end=0.5))
    assert metrics["ttft_ms"] is None
    assert metrics["first_tool_delta_ms"] == pytest.approx(200.0)
    assert metrics["first_sentence_ms"] is None
    assert metrics["content_chars_per_s"] is None
    assert metrics["chunk_count"] == 3.0


def test_events_after_done_are_not_spoken() -> None:
    exchange = make_exchange(
        [(0.1, content("Hi")), (0.2, DONE), (0.3, content("late")), (0.4, TOOL), (0.5, DONE)], t_end=0.6
    )
    metrics = exchange_metrics(exchange)
    assert metrics["chunk_count"] == 1.0
    assert metrics["first_tool_delta_ms"] is None
    assert metrics["max_gap_ms"] is None
    assert exchange.text == "Hi"


def test_content_only_after_done_has_no_ttft() -> None:
    metrics = exchange_metrics(make_exchange([(0.1, DONE), (0.2, content("late"))], t_end=0.3))
    assert metrics["ttft_ms"] is None
    assert metrics["first_event_ms"] == pytest.approx(100.0)
    assert metrics["chunk_count"] == 0.0


def test_unterminated_event_is_not_spoken() -> None:
    exchange = make_exchange(
        [(0.1, ROLE), (0.2, content("cut off"))], outcome=Outcome.BROKEN, t_end=0.3, unterminated_last=True
    )
    metrics = exchange_metrics(exchange)
    assert metrics["ttft_ms"] is None
    assert metrics["chunk_count"] == 1.0
    assert metrics["first_event_ms"] == pytest.approx(100.0)


def test_invalid_json_event_is_not_spoken() -> None:
    metrics = exchange_metrics(make_exchange([(0.1, "{not json"), (0.2, content("ok")), (0.3, DONE)], t_end=0.4))
    assert metrics["chunk_count"] == 1.0
    assert metrics["ttft_ms"] == pytest.approx(200.0)
    assert metrics["first_event_ms"] == pytest.approx(100.0)


def test_max_gap_in_metrics_is_the_longest_content_gap() -> None:
    exchange = make_exchange([(0.1, content("a")), (0.2, content("b")), (1.45, content("c"))], t_end=1.5)
    assert exchange_metrics(exchange)["max_gap_ms"] == pytest.approx(1250.0)


def test_single_content_event_has_no_rate_or_gap() -> None:
    metrics = exchange_metrics(make_exchange([(0.1, content("Hello")), (0.2, DONE)], t_end=0.3))
    assert metrics["content_chars_per_s"] is None
    assert metrics["max_gap_ms"] is None


def test_non_streamed_exchange_has_no_chunk_count() -> None:
    exchange = make_exchange([], stream=False, t_headers=0.2, t_end=0.3)
    metrics = exchange_metrics(exchange)
    assert metrics["chunk_count"] is None
    assert metrics["headers_ms"] == pytest.approx(200.0)
    assert metrics["total_ms"] == pytest.approx(300.0)


def test_unreached_exchange_has_only_none() -> None:
    exchange = make_exchange([], outcome=Outcome.CONNECT_ERROR)
    metrics = exchange_metrics(exchange)
    assert metrics["chunk_count"] == 0.0
    assert {k: v for k, v in metrics.items() if k != "chunk_count"} == dict.fromkeys(
        [k for k in METRICS if k != "chunk_count"]
    )
