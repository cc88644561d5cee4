"""`parse_json_body`: standard JSON only, UTF-8, depth-bounded, one error type that says what is wrong."""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness.protocol import MAX_DEPTH, BodyError, parse_json_body


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b'{"messages": [{"role": "user", "content": "Hi"}], "temperature": 0.5}',
         {"messages": [{"role": "user", "content": "Hi"}], "temperature": 0.5}),
        (b" [1, 2.5e3, -0, null, true] \n", [1, 2500.0, 0, None, True]),
        ('{"text": "café ☎"}'.encode(), {"text": "café ☎"}),
        (b'\xef\xbb\xbf{"a": 1}', {"a": 1}),  # a byte-order mark may be ignored (RFC 8259 section 8.1)
        (b'"\\ud83d\\ude00"', "\U0001f600"),
    ],
    ids=["chat", "scalars", "utf-8", "bom", "escaped-pair"],
)  # fmt: skip
def test_standard_json_parses(raw: bytes, value: Any) -> None:
    assert parse_json_body(raw) == value


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"", "is empty"),
        (b" \r\n", "is empty"),
        (b'{"a": ', "is not valid JSON: Expecting value: line 1 column 7 (char 6)"),
        (b'{"a": 1} {"b": 2}', "is not valid JSON: Extra data: line 1 column 10 (char 9)"),
        (b'{"temperature": NaN}', "is not standard JSON: NaN is not a JSON value"),
        (b"[Infinity]", "is not standard JSON: Infinity is not a JSON value"),
        (b"[-Infinity]", "is not standard JSON: -Infinity is not a JSON value"),
        (b"[1e999]", "is not standard JSON: 1e999 is too large for a number"),
        (b'{"a": "\xff"}', "is not UTF-8: byte 0xff at offset 7"),
        ('{"a": 1}'.encode("utf-16"), "is not UTF-8: byte 0xff at offset 0"),
        (b"[" + b"1" * 5000 + b"]", "is not a JSON value we accept: an integer has more than 4300 digits"),
    ],
    ids=["empty", "blank", "truncated", "extra", "nan", "infinity", "minus-infinity", "overflow", "latin-1",
         "utf-16", "huge-integer"],
)  # fmt: skip
def test_what_is_refused_is_said(raw: bytes, problem: str) -> None:
    with pytest.raises(BodyError) as caught:
        parse_json_body(raw)
    assert caught.value.problem == problem
    assert str(caught.value) == f"the body {problem}"
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "raw",
    [b"[" * 100_000, b'{"a":' * 100_000, b"[" * 100_000 + b"]" * 100_000, b'{"a": [' + b"[" * 500 + b"]" * 500 + b"]}"],
    ids=["open-arrays", "open-objects", "closed-arrays", "deep-but-parseable"],
)
def test_deep_bodies_are_refused_without_recursion_error(raw: bytes) -> None:
    with pytest.raises(BodyError) as caught:
        parse_json_body(raw)
    assert caught.value.problem == f"is nested too deep: more than {MAX_DEPTH} levels of arrays and objects"


def test_the_depth_limit_is_exact() -> None:
    at_limit = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert parse_json_body(at_limit) is not None
    with pytest.raises(BodyError, match="nested too deep"):
        parse_json_body(b"[" + at_limit + b"]")
    mixed = json.dumps({"a": [{"b": [[]]}]}).encode()  # 5 levels
    assert parse_json_body(mixed, max_depth=5) == {"a": [{"b": [[]]}]}
    with pytest.raises(BodyError, match="more than 4 levels"):
        parse_json_body(mixed, max_depth=4)


def test_many_containers_side_by_side_are_not_deep() -> None:
    wide = json.dumps({"messages": [{"role": "user", "content": [{"type": "text"}]}] * 2000}).encode()
    assert len(parse_json_body(wide)["messages"]) == 2000
