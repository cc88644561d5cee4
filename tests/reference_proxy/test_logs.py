"""The proxy's log lines: JSON, secrets redacted, identical warnings rate-limited with a count that adds up.

The filter is fed records with exact times (their `created`), so no test waits for a window to pass.
"""

from __future__ import annotations

import io
import json
import logging
import sys
from typing import Any

import pytest

from reference_proxy.logs import JsonFormatter, JsonLinesHandler, RepeatFilter

UNREACHABLE = "upstream unreachable: Cannot connect to host 127.0.0.1:9"


def record(t: float, message: str = UNREACHABLE, level: int = logging.WARNING, **extra: Any) -> logging.LogRecord:
    made = logging.LogRecord("reference_proxy", level, __file__, 1, message, None, None)
    made.created = t
    made.__dict__.update(extra)
    return made


def written(handler: JsonLinesHandler, stream: io.StringIO) -> list[dict[str, Any]]:
    handler.flush()
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_the_first_goes_through_and_repeats_in_the_window_are_held() -> None:
    repeats = RepeatFilter(window_s=5)
    assert repeats.filter(record(100.0))
    assert [repeats.filter(record(100.0 + i / 10)) for i in range(1, 40)] == [False] * 39
    after = record(105.5)
    assert repeats.filter(after)
    assert after.getMessage() == f"{UNREACHABLE} (repeated 39 times in the last 5.5 s)"
    assert after.__dict__["repeated"] == 39


def test_only_identical_logger_level_and_message_are_one() -> None:
    repeats = RepeatFilter(window_s=5)
    assert repeats.filter(record(0.0, call_id="a"))
    assert not repeats.filter(record(0.1, call_id="b"))  # the call id does not make it different
    assert repeats.filter(record(0.2, "upstream timeout"))
    assert repeats.filter(record(0.3, level=logging.ERROR))
    other = record(0.4)
    other.name = "aiohttp.client"
    assert repeats.filter(other)


def test_info_lines_are_never_held() -> None:
    repeats = RepeatFilter(window_s=5)
    assert all(repeats.filter(record(i / 100, "turn", logging.INFO)) for i in range(100))


def test_a_window_that_closes_quietly_is_written_by_the_next_line_or_at_close() -> None:
    stream = io.StringIO()
    handler = JsonLinesHandler(stream, window_s=5)
    for i in range(10):
        handler.handle(record(i / 10, call_id=f"call-{i}"))
    handler.handle(record(7.0, "turn", logging.INFO))  # any later line: the closed window is written first
    handler.handle(record(8.0, "upstream timeout"))
    for i in range(5):
        handler.handle(record(8.1 + i / 10, "upstream timeout"))
    handler.close()  # logging shuts down at exit: what is still held is written
    lines = written(handler, stream)
    assert [(line["message"], line.get("repeated")) for line in lines] == [
        (UNREACHABLE, None),
        (f"{UNREACHABLE} (repeated 8 times in the last 0.9 s)", 8),
        ("turn", None),
        ("upstream timeout", None),
        ("upstream timeout (repeated 4 times in the last 0.5 s)", 4),
    ]
    assert lines[1]["call_id"] == "call-9"  # the latest held record stands for the others
    assert len([line for line in lines if line["message"].startswith(UNREACHABLE)]) + 8 == 10


@pytest.mark.parametrize("seconds", [10, 60])
def test_an_outage_writes_a_line_per_window_and_the_counts_add_up(seconds: int) -> None:
    stream = io.StringIO()
    handler = JsonLinesHandler(stream, window_s=5)
    total = seconds * 1000  # 1,000 failed turns a second
    for i in range(total):
        handler.handle(record(i / 1000))
    handler.close()
    lines = written(handler, stream)
    assert len(lines) <= 2 * seconds // 5 + 2
    assert len(lines) + sum(line.get("repeated", 0) for line in lines) == total


def test_exceptions_and_secrets_stay_inside_one_json_line() -> None:
    formatter = JsonFormatter(secrets=["sk-upstream-secret-42"])
    try:
        raise ValueError("bad header sk-upstream-secret-42")
    except ValueError:
        failed = logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1, "Error handling request", None,
                                   sys.exc_info())  # fmt: skip
    text = formatter.format(failed)
    assert "\n" not in text and "sk-upstream-secret-42" not in text
    line = json.loads(text)
    assert line["logger"] == "aiohttp.server" and line["level"] == "error"
    assert "Traceback" in line["exception"] and "ValueError: bad header [redacted]" in line["exception"]
