"""Reading a JSON request body, the one way every server of ours does it (sans-IO: bytes in, a value out).

Standard JSON only (RFC 8259): UTF-8, no `NaN` or `Infinity` (Python's `json` takes them, JavaScript's
`JSON.parse` and most servers refuse them) nor a number too large for a double (`1e999`, which would be
forwarded as `Infinity`), and at most `MAX_DEPTH` levels of arrays and objects, so a body of
100,000 `[` is a 400 rather than a `RecursionError` in whatever walks the value next.
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

__all__ = ["MAX_DEPTH", "TOO_DEEP", "BodyError", "loads", "parse_json_body"]

MAX_DEPTH = 128  # a chat request with tools and their JSON Schemas is under 20 levels deep
_BOM = "\ufeff"


# Python's JSON parser recurses: past about 1,000 levels it raises RecursionError, which `loads` words as this.
TOO_DEEP = "arrays and objects nested too deep to parse (past about 1,000 levels)"


def loads(text: str | bytes) -> Any:
    """`json.loads` for JSON another party wrote (a reply, a tool call's arguments): nesting too deep for the
    parser is a `ValueError` like every other JSON it cannot read, never a `RecursionError`."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None


class BodyError(ValueError):
    """A body that is not a JSON value we accept; `problem` says what is wrong, as in "is not valid JSON: ..."."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"the body {problem}")
        self.problem = problem


def _reject_constant(name: str) -> Any:
    raise BodyError(f"is not standard JSON: {name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BodyError(f"is not standard JSON: {text} is too large for a number")
    return value


_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite)  # built once: building costs


def _too_deep(max_depth: int) -> BodyError:
    return BodyError(f"is nested too deep: more than {max_depth} levels of arrays and objects")


def _deeper_than(value: Any, max_depth: int) -> bool:
    """Whether arrays and objects nest more than `max_depth` levels: a walk, level by level, without recursion."""
    level, depth = [value], 1
    while level:
        if depth > max_depth:
            return True
        below = []
        for item in level:
            for child in item.values() if type(item) is dict else item:
                if type(child) is dict or type(child) is list:
                    below.append(child)
        level, depth = below, depth + 1
    return False


def parse_json_body(raw: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of a request body; raises `BodyError` when it is empty, not UTF-8, not standard JSON or
    nested more than `max_depth` levels. A leading byte-order mark is ignored (RFC 8259 allows that).
    """
    if not raw or raw.isspace():
        raise BodyError("is empty")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BodyError(f"is not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}") from None
    try:
        value = _DECODER.decode(text[1:] if text.startswith(_BOM) else text)
    except RecursionError:
        raise _too_deep(max_depth) from None
    except BodyError:
        raise
    except json.JSONDecodeError as exc:
        raise BodyError(f"is not valid JSON: {exc}") from None
    except ValueError:  # Python's guard against slow conversions of very long integers
        limit = sys.get_int_max_str_digits()
        raise BodyError(f"is not a JSON value we accept: an integer has more than {limit} digits") from None
    # Counting the brackets is fast and bounds the depth; only a body with many of them is walked.
    if raw.count(b"[") + raw.count(b"{") > max_depth and isinstance(value, dict | list):
        if _deeper_than(value, max_depth):
            raise _too_deep(max_depth)
    return value
