"""The SSE decoder reads bytes the way the OpenAI JS SDK does and records every deviation."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from harness.protocol import DONE, SSEDecoder, SSEEvent, encode_comment, encode_event


def decode(stream: bytes, **options: Any) -> tuple[list[SSEEvent], SSEDecoder]:
    """Feed `stream` in one chunk at t=1.0 and close it at t=2.0."""
    decoder = SSEDecoder(**options)
    events = decoder.feed(stream, 1.0)
    events += decoder.close(2.0)
    return events, decoder


def datas(events: list[SSEEvent]) -> list[str]:
    return [e.data for e in events]


def kinds(decoder: SSEDecoder) -> list[str]:
    return [d.kind for d in decoder.deviations]


# Line endings and fields


@pytest.mark.parametrize(
    "stream",
    [
        b"data: a\n\ndata: b\n\n",
        b"data: a\r\n\r\ndata: b\r\n\r\n",
        b"data: a\r\rdata: b\r\r",
        b"data: a\r\n\rdata: b\n\r\n",
    ],
    ids=["lf", "crlf", "lone-cr", "mixed"],
)
def test_every_line_ending_splits_events(stream: bytes) -> None:
    events, decoder = decode(stream)
    assert datas(events) == ["a", "b"]
    assert all(e.terminated for e in events)
    assert decoder.deviations == []


def test_crlf_split_between_chunks_is_one_line_ending() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"data: a\r", 1.0)
    events += decoder.feed(b"\ndata: b\r", 2.0)
    events += decoder.feed(b"\n\r", 3.0)
    events += decoder.feed(b"\n", 4.0)
    # Had either LF counted as a blank line, "a" and "b" would be two events.
    assert datas(events) == ["a\nb"]
    assert events[0].t == 3.0


def test_lone_cr_at_chunk_end_is_a_line_ending_when_no_lf_follows() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"data: a\r", 1.0)
    events += decoder.feed(b"\r", 2.0)
    events += decoder.feed(b"data: b\n\n", 3.0)
    assert [(e.data, e.t) for e in events] == [("a", 2.0), ("b", 3.0)]


def test_empty_chunk_between_cr_and_lf_changes_nothing() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"data: a\r", 1.0)
    events += decoder.feed(b"", 2.0)
    events += decoder.feed(b"\ndata: b\n\n", 3.0)
    assert datas(events) == ["a\nb"]


@pytest.mark.parametrize(
    ("line", "data"),
    [
        (b"data: x", "x"),
        (b"data:x", "x"),
        (b"data:  x", " x"),
        (b"data: x ", "x "),
        (b"data:", ""),
        (b"data", ""),
        (b"data: a:b", "a:b"),
    ],
    ids=["one-space", "no-space", "two-spaces", "trailing-space", "empty-value", "no-colon", "colon-in-value"],
)
def test_data_value_drops_one_leading_space(line: bytes, data: str) -> None:
    events, _ = decode(line + b"\n\n")
    assert datas(events) == [data]


def test_data_lines_are_joined_with_lf() -> None:
    events, _ = decode(b"data: one\ndata:two\ndata\ndata:  four\n\n")
    assert datas(events) == ["one\ntwo\n\n four"]


def test_empty_data_dispatches_an_event() -> None:
    events, decoder = decode(b"data:\n\n")
    assert len(events) == 1
    assert events[0].data == ""
    assert events[0].event is None
    assert decoder.deviations == []


@pytest.mark.parametrize(
    "stream",
    [b"id: 7\n\n", b"retry: 1000\n\n", b"foo: bar\n\n", b"\n\n\n", b"id: 1\nretry: 5\n\n"],
    ids=["id-only", "retry-only", "unknown-field", "blank-lines", "id-and-retry"],
)
def test_event_without_data_or_name_is_not_dispatched(stream: bytes) -> None:
    events, decoder = decode(stream)
    assert events == []
    assert decoder.deviations == []


def test_id_field_does_not_disturb_data() -> None:
    events, _ = decode(b"id: 1\ndata: x\nid: 2\n\n")
    assert datas(events) == ["x"]


@pytest.mark.parametrize(
    ("stream", "comments"),
    [(b": ping\n\n", 1), (b":\n\n", 1), (b": a\n:b\n\n:c\n\n", 3), (b"data: x\n\n", 0)],
    ids=["ping", "bare-colon", "three", "none"],
)
def test_comments_are_counted_and_not_dispatched(stream: bytes, comments: int) -> None:
    events, decoder = decode(stream)
    assert decoder.comments == comments
    assert all(e.data == "x" for e in events)


def test_comment_inside_an_event_does_not_end_it() -> None:
    events, decoder = decode(b"data: a\n: keep-alive\ndata: b\n\n")
    assert datas(events) == ["a\nb"]
    assert decoder.comments == 1


def test_event_field_is_recorded_as_a_deviation() -> None:
    events, decoder = decode(b"event: delta\ndata: {}\n\n")
    assert [(e.event, e.data) for e in events] == [("delta", "{}")]
    assert kinds(decoder) == ["event_field"]
    assert "delta" in decoder.deviations[0].detail
    assert decoder.deviations[0].t == 1.0


def test_event_name_alone_dispatches_an_event() -> None:
    events, decoder = decode(b"event: ping\n\n")
    assert [(e.event, e.data) for e in events] == [("ping", "")]
    assert kinds(decoder) == ["event_field"]


def test_empty_event_name_alone_is_not_dispatched_like_the_sdk() -> None:
    events, _ = decode(b"event:\n\n")
    assert events == []


def test_event_name_does_not_leak_into_the_next_event() -> None:
    events, _ = decode(b"event: a\ndata: 1\n\ndata: 2\n\n")
    assert [e.event for e in events] == ["a", None]


def test_indices_count_dispatched_events() -> None:
    events, _ = decode(b": c\n\ndata: a\n\nid: 1\n\ndata: b\n\n")
    assert [e.index for e in events] == [0, 1]


def test_size_bytes_counts_data_lines_with_their_line_ending() -> None:
    events, _ = decode(b"data: abc\ndata: de\n\n")
    assert events[0].size_bytes == len(b"data: abc\n") + len(b"data: de\n")


# Invalid UTF-8 and oversize events


def test_invalid_utf8_is_replaced_and_recorded_once() -> None:
    events, decoder = decode(b"data: a\xff\n\ndata: \xfe\xfe\n\n")
    assert datas(events) == ["a\ufffd", "\ufffd\ufffd"]
    assert kinds(decoder) == ["invalid_utf8"]
    assert "byte 7" in decoder.deviations[0].detail


def test_multibyte_character_split_between_chunks_is_valid() -> None:
    raw = "data: héllo €\n\n".encode()
    split = raw.index("€".encode()) + 1
    decoder = SSEDecoder()
    events = decoder.feed(raw[:split], 1.0) + decoder.feed(raw[split:], 2.0)
    assert datas(events) == ["héllo €"]
    assert decoder.deviations == []


def test_event_at_the_size_limit_is_kept() -> None:
    # "data: abc" plus its LF is 10 bytes.
    events, decoder = decode(b"data: abc\n\n", max_event_bytes=10)
    assert datas(events) == ["abc"]
    assert decoder.deviations == []


def test_oversize_event_is_kept_whole_and_recorded() -> None:
    events, decoder = decode(b"data: abcdefghijk\n\n", max_event_bytes=10)
    assert datas(events) == ["abcdefghijk"]
    assert kinds(decoder) == ["oversize_event"]
    assert "10 bytes" in decoder.deviations[0].detail


def test_oversize_event_over_several_data_lines_is_recorded_once() -> None:
    events, decoder = decode(b"data: aaaa\ndata: bbbb\ndata: cccc\n\n", max_event_bytes=20)
    assert datas(events) == ["aaaa\nbbbb\ncccc"]
    assert kinds(decoder) == ["oversize_event"]


def test_oversize_partial_line_is_recorded_when_it_grows_too_long() -> None:
    decoder = SSEDecoder(max_event_bytes=16)
    assert decoder.feed(b"data: " + b"x" * 40, 1.0) == []
    assert kinds(decoder) == ["oversize_event"]
    assert decoder.deviations[0].t == 1.0
    assert datas(decoder.feed(b"\n\n", 2.0)) == ["x" * 40]
    assert kinds(decoder) == ["oversize_event"]


def test_events_after_an_oversize_event_are_not_flagged() -> None:
    events, decoder = decode(b"data: abcdefghijk\n\ndata: ok\n\n", max_event_bytes=10)
    assert datas(events) == ["abcdefghijk", "ok"]
    assert kinds(decoder) == ["oversize_event"]


def test_leading_byte_order_mark_is_skipped_and_recorded() -> None:
    events, decoder = decode(b"\xef\xbb\xbfdata: {}\n\n")
    assert datas(events) == ["{}"]
    assert kinds(decoder) == ["byte_order_mark"]


# [DONE]


@pytest.mark.parametrize(
    ("data", "done"),
    [("[DONE]", True), ("[DONE] ", True), ("[DONE]{}", True), (" [DONE]", False), ("[done]", False), ("{}", False)],
    ids=["exact", "trailing-space", "prefix", "leading-space", "lowercase", "json"],
)
def test_is_done_matches_the_prefix(data: str, done: bool) -> None:
    assert SSEEvent(index=0, t=0.0, data=data).is_done is done


def test_done_ends_the_stream_cleanly() -> None:
    events, decoder = decode(b"data: {}\n\ndata: [DONE]\n\n")
    assert [(e.data, e.after_done) for e in events] == [("{}", False), (DONE, False)]
    assert decoder.done_seen
    assert decoder.deviations == []


def test_data_after_done_is_marked_and_recorded() -> None:
    events, decoder = decode(b"data: [DONE]\n\ndata: {}\n\n: late comment\n\n")
    assert [(e.data, e.after_done) for e in events] == [(DONE, False), ("{}", True)]
    assert kinds(decoder) == ["data_after_done"]
    assert decoder.deviations[0].event_index == 1
    assert decoder.comments == 1


def test_second_done_is_recorded_as_such() -> None:
    events, decoder = decode(b"data: [DONE]\n\ndata: [DONE]\n\n")
    assert [e.after_done for e in events] == [False, True]
    assert kinds(decoder) == ["second_done"]
    assert decoder.deviations[0].event_index == 1


def test_done_seen_is_false_before_done() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: {}\n\ndata: [DONE]", 1.0)
    assert not decoder.done_seen
    decoder.feed(b"\n\n", 2.0)
    assert decoder.done_seen


# close()


@pytest.mark.parametrize(
    "tail",
    [b"data: last", b"data: last\n", b"data: last\r\n", b"data: last\r"],
    ids=["no-line-end", "lf", "crlf", "cr"],
)
def test_close_returns_an_unterminated_event(tail: bytes) -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"data: first\n\n" + tail, 1.0)
    closed = decoder.close(5.0)
    assert datas(events) == ["first"]
    assert [(e.data, e.terminated, e.t, e.index) for e in closed] == [("last", False, 5.0, 1)]
    assert kinds(decoder) == ["unterminated_event"]
    deviation = decoder.deviations[0]
    assert (deviation.event_index, deviation.t) == (1, 5.0)
    assert "'last'" in deviation.detail


@pytest.mark.parametrize(
    "stream",
    [b"", b"data: x\n\n", b"data: x\n\n: trailing comment", b"data: x\n\nid: 4\n", b"data: x\r\n\r\n"],
    ids=["empty", "clean", "partial-comment", "partial-id", "crlf"],
)
def test_close_after_a_clean_end_returns_nothing(stream: bytes) -> None:
    decoder = SSEDecoder()
    decoder.feed(stream, 1.0)
    assert decoder.close(2.0) == []
    assert [d.kind for d in decoder.deviations] == []


def test_unterminated_done_still_counts_as_done() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: {}\n\ndata: [DONE]", 1.0)
    closed = decoder.close(2.0)
    assert [(e.data, e.terminated) for e in closed] == [(DONE, False)]
    assert decoder.done_seen
    assert kinds(decoder) == ["unterminated_event"]


# Timestamps


def test_event_time_is_the_time_of_the_feed_that_completed_it() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a", 1.0) == []
    assert decoder.feed(b"bc\n", 2.0) == []
    first = decoder.feed(b"\ndata: d\n\ndata: e\n", 3.0)
    second = decoder.feed(b"\n", 4.0)
    assert [(e.data, e.t) for e in first + second] == [("abc", 3.0), ("d", 3.0), ("e", 4.0)]


@pytest.mark.parametrize(
    ("stream", "completing_byte"),
    [(b"data: a\n\n", 8), (b"data: a\r\n\r\n", 9), (b"data: a\r\r", 8)],
    ids=["lf", "crlf", "cr"],
)
def test_byte_by_byte_event_time_is_the_byte_that_ends_the_blank_line(stream: bytes, completing_byte: int) -> None:
    decoder = SSEDecoder()
    events = [e for i in range(len(stream)) for e in decoder.feed(stream[i : i + 1], float(i))]
    # A CR ends the blank line at once: the event does not wait for the LF that may follow.
    assert [(e.data, e.t) for e in events] == [("a", float(completing_byte))]


# Chunking does not change what is decoded

RECORDED = (
    b": keep-alive\n\n"
    b'data: {"choices":[{"delta":{"role":"assistant"}}]}\r\n\r\n'
    b'data: {"choices":[{"delta":{"content":"h\xc3\xa9llo \xe2\x82\xac"}}]}\n\n'
    b"event: note\ndata: line one\rdata:line two\r\r"
    b"id: 3\n\n"
    b"data:  spaced\r\n: mid-event comment\r\ndata\n\n"
    b"data: bad \xff byte\n\n"
    b"data: [DONE]\n\n"
    b"data: late\n\n"
    b"data: [DONE]\r\n\r\n"
    b"data: unterminated"
)


def observe(chunks: list[bytes]) -> tuple[list[tuple[Any, ...]], list[tuple[str, int | None]], int]:
    """Decode `chunks` and return everything but the times."""
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for i, chunk in enumerate(chunks):
        events += decoder.feed(chunk, float(i))
    events += decoder.close(float(len(chunks)))
    seen = [(e.index, e.data, e.event, e.size_bytes, e.terminated, e.after_done) for e in events]
    return seen, [(d.kind, d.event_index) for d in decoder.deviations], decoder.comments


def test_recorded_stream_decodes_as_expected() -> None:
    events, deviations, comments = observe([RECORDED])
    assert [(data, after) for _, data, _, _, _, after in events] == [
        ('{"choices":[{"delta":{"role":"assistant"}}]}', False),
        ('{"choices":[{"delta":{"content":"héllo €"}}]}', False),
        ("line one\nline two", False),
        (" spaced\n", False),
        ("bad \ufffd byte", False),
        (DONE, False),
        ("late", True),
        (DONE, True),
        ("unterminated", True),
    ]
    assert events[2][2] == "note"
    assert [terminated for *_, terminated, _ in events] == [True] * 8 + [False]
    assert deviations == [
        ("event_field", None),
        ("invalid_utf8", None),
        ("data_after_done", 6),
        ("second_done", 7),
        ("data_after_done", 8),
        ("unterminated_event", 8),
    ]
    assert comments == 2


def test_any_split_into_two_chunks_decodes_like_the_whole() -> None:
    whole = observe([RECORDED])
    for i in range(len(RECORDED) + 1):
        assert observe([RECORDED[:i], RECORDED[i:]]) == whole, f"split at byte {i}"


def test_one_byte_chunks_decode_like_the_whole() -> None:
    whole = observe([RECORDED])
    assert observe([RECORDED[i : i + 1] for i in range(len(RECORDED))]) == whole


# Encoding


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (({"a": 1, "b": [1, 2]},), b'data: {"a":1,"b":[1,2]}\n\n'),
        ((DONE,), b"data: [DONE]\n\n"),
        (({"x": None}, "delta"), b'event: delta\ndata: {"x":null}\n\n'),
        (([],), b"data: []\n\n"),
    ],
    ids=["object", "done", "named", "array"],
)
def test_encode_event_frames(args: tuple[Any, ...], expected: bytes) -> None:
    assert encode_event(*args) == expected


@pytest.mark.parametrize(
    "payload",
    [{"content": "line\nbreak"}, {"content": "héllo €\u2028"}, {"content": "data: [DONE]\n\n"}],
    ids=["newline", "unicode", "sse-in-string"],
)
def test_encode_event_round_trips_through_the_decoder(payload: dict[str, str]) -> None:
    events, decoder = decode(encode_event(payload))
    assert len(events) == 1
    assert json.loads(events[0].data) == payload
    assert decoder.deviations == []


@pytest.mark.parametrize(("text", "expected"), [("", b":\n\n"), ("ping", b": ping\n\n")], ids=["bare", "with-text"])
def test_encode_comment_frames(text: str, expected: bytes) -> None:
    assert encode_comment(text) == expected
    events, decoder = decode(expected)
    assert events == []
    assert decoder.comments == 1


_MIXED_STREAMS = [
    b'data: {"a":1}\n\ndata: {"b":2}\n\ndata: [DONE]\n\n',
    b"data:no-space\n\ndata:  two spaces\n\ndata:\n\n",
    b'data: {"x":"\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80"}\n\n: keep-alive\n\ndata: y\n\n',
    b"event: error\ndata: e\n\ndata: a\ndata: b\n\ndata: c\n\n",
    b"data: a\r\n\r\ndata: b\n\ndata: [DONE]\n\ndata: late\n\ndata: [DONE]\n\n",
    b"data: bad \xff utf8\n\ndata: fine\n\n",
    b"data: a\n\n\n\ndata: b\n\ndata",
]


def _decode(stream: bytes, cuts: list[int]) -> tuple[list[SSEEvent], list[tuple[str, str]], int]:
    decoder = SSEDecoder(max_event_bytes=64)
    events: list[SSEEvent] = []
    for start, end in itertools.pairwise([0, *cuts, len(stream)]):
        events += decoder.feed(stream[start:end], 1.0)
    events += decoder.close(2.0)
    return events, [(d.kind, d.detail) for d in decoder.deviations], decoder.comments


@pytest.mark.parametrize("stream", _MIXED_STREAMS)
def test_whole_events_decode_as_they_do_byte_by_byte(stream: bytes) -> None:
    # Whole-event chunks take the one-pass path; single bytes never can: the results must not differ.
    byte_by_byte = _decode(stream, list(range(1, len(stream))))
    assert _decode(stream, []) == byte_by_byte
    event_ends = [i + 2 for i in range(len(stream)) if stream[i : i + 2] == b"\n\n"]
    assert _decode(stream, event_ends) == byte_by_byte
    assert byte_by_byte[0]  # every stream here has events


def test_a_chunk_of_whole_events_over_the_size_limit_is_still_flagged() -> None:
    stream = b"data: " + b"x" * 70 + b"\n\n"
    events, deviations, _ = _decode(stream, [])
    assert [e.data for e in events] == ["x" * 70] and [k for k, _ in deviations] == ["oversize_event"]
