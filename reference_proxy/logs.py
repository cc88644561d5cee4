"""Structured JSON log lines with Vapi's call id, secrets redacted, and identical lines rate-limited.

`log_json_lines` sends every logger of the process through one handler: ours, aiohttp's (`aiohttp.server`
logs a malformed request with its traceback), asyncio's and Python's warnings, so stderr holds JSON lines only.
An upstream outage makes every turn log the same warning; `RepeatFilter` writes the first, holds back the
repeats for a few seconds, then writes one line that carries their count.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TextIO

from harness.protocol import Redactor

__all__ = ["JsonFormatter", "JsonLinesHandler", "RepeatFilter", "log_json_lines"]

_FIELDS = ("call_id", "stream", "model", "url", "repeated")
_REPEAT_WINDOW_S = 5.0
_KEYS_KEPT = 1024  # distinct messages remembered before the ones outside their window are forgotten

_Key = tuple[str, int, str]


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the turn's `call_id` when known, any traceback."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self.redactor = Redactor(secrets)

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as JSON, with every known secret replaced."""
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return self.redactor.text(json.dumps(line, ensure_ascii=False, default=str))


def _seconds(span_s: float) -> str:
    return f"{span_s:.1f}".rstrip("0").rstrip(".")


def _mark(record: logging.LogRecord, repeated: int, span_s: float) -> logging.LogRecord:
    """`record`, saying that `repeated` identical ones were left out in the `span_s` before it."""
    if repeated:
        record.msg = f"{record.getMessage()} (repeated {repeated} times in the last {_seconds(span_s)} s)"
        record.args = None
        record.__dict__["repeated"] = repeated
    return record


class RepeatFilter(logging.Filter):
    """Rate-limits identical warnings and errors (same logger, level and message; the call id does not count).

    Records below `min_level` (a turn's INFO line) all go through. Of identical ones, the first goes through;
    those within `window_s` of it are held back and counted; the next one after the window goes through carrying
    the count (`... (repeated N times in the last 5 s)`, and `repeated: N`) and starts a new window. `due` and
    `drain` give back, for a window that closed with nothing after it, its latest held record with the count of
    the others, so the lines written plus their counts always add up to every record.
    Times are the records' own (`created`), so the filter can be fed records with exact times.
    """

    def __init__(self, window_s: float = _REPEAT_WINDOW_S, min_level: int = logging.WARNING) -> None:
        super().__init__()
        self.window_s = window_s
        self.min_level = min_level
        self._shown: dict[_Key, float] = {}  # when the last line of each message was let through
        self._held: dict[_Key, tuple[int, logging.LogRecord]] = {}  # how many are held back, and the latest
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether `record` is written; one written after held-back repeats says how many there were."""
        if record.levelno < self.min_level:
            return True
        key = (record.name, record.levelno, record.getMessage())
        with self._lock:
            shown = self._shown.get(key)
            if shown is not None and record.created - shown < self.window_s:
                held, _ = self._held.get(key, (0, record))
                self._held[key] = (held + 1, record)
                return False
            if len(self._shown) >= _KEYS_KEPT:
                self._forget(record.created)
            self._shown[key] = record.created
            held, _ = self._held.pop(key, (0, record))
        _mark(record, held, record.created - shown if shown is not None else 0.0)
        return True

    def _forget(self, now: float) -> None:
        self._shown = {k: t for k, t in self._shown.items() if now - t < self.window_s or k in self._held}

    def _release(self, key: _Key) -> logging.LogRecord:
        held, latest = self._held.pop(key)
        span_s = latest.created - self._shown[key]
        self._shown[key] = latest.created
        return _mark(latest, held - 1, span_s)

    def due(self, now: float) -> list[logging.LogRecord]:
        """The held records whose window closed before `now`: the latest of each, carrying the others' count."""
        with self._lock:
            if not self._held:
                return []
            closed = [key for key in self._held if now - self._shown[key] >= self.window_s]
            return [self._release(key) for key in closed]

    def drain(self) -> list[logging.LogRecord]:
        """Every held record, as `due` gives them; at exit nothing is lost."""
        with self._lock:
            return [self._release(key) for key in list(self._held)]


class JsonLinesHandler(logging.StreamHandler[TextIO]):
    """JSON lines on `stream`, secrets redacted, identical lines rate-limited by a `RepeatFilter`.

    Repeats whose window has closed are written before the next record of any kind, and at close (logging
    shuts down at exit), so a count is never lost when the outage ends.
    """

    def __init__(self, stream: TextIO, secrets: Iterable[str | None] = (), window_s: float = _REPEAT_WINDOW_S):
        super().__init__(stream)
        self.setFormatter(JsonFormatter(secrets))
        self.repeats = RepeatFilter(window_s)
        self.addFilter(self.repeats)

    def handle(self, record: logging.LogRecord) -> bool:
        """Write the repeats now due, then `record` if the filter lets it through."""
        self._write(self.repeats.due(record.created))
        return bool(super().handle(record))

    def _write(self, records: list[logging.LogRecord]) -> None:
        for record in records:  # already counted by the filter: written past it
            self.acquire()
            try:
                self.emit(record)
            finally:
                self.release()

    def close(self) -> None:
        """Write every held repeat, then close."""
        self._write(self.repeats.drain())
        super().close()


def log_json_lines(stream: TextIO, secrets: Iterable[str | None] = ()) -> JsonLinesHandler:
    """Make `stream` hold JSON lines only: every logger of the process writes through one `JsonLinesHandler`.

    For a process of its own (`vapi-harness proxy`): the root logger's handlers are replaced, and Python's
    warnings are logged too. The proxy's own logger logs at INFO, the rest at the root's level.
    """
    handler = JsonLinesHandler(stream, secrets)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    logging.getLogger("reference_proxy").setLevel(logging.INFO)
    logging.captureWarnings(True)
    return handler
