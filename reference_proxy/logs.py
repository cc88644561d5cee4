"""Structured JSON log lines with Vapi's call id, and secrets redacted."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime

from harness.protocol import Redactor

__all__ = ["JsonFormatter"]

_FIELDS = ("call_id", "stream", "model", "url")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, message, and the turn's `call_id` when known."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self.redactor = Redactor(secrets)

    def format(self, record: logging.LogRecord) -> str:
        """Render `record` as JSON, with every known secret replaced."""
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        for name in _FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        return self.redactor.text(json.dumps(line, ensure_ascii=False))
