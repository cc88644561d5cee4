"""Record mode: each exchange as one JSON line, to replay later against another server with `check --replay`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.protocol import RECORDING_VERSION, Redactor, SSEDecoder

__all__ = ["Exchange", "TrafficRecorder"]


class Exchange:
    """One request as received and the reply as sent, timed from the request's arrival."""

    def __init__(self, headers: Mapping[str, str], body: Any) -> None:
        self.t0 = time.perf_counter()
        self.recorded_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        redactor = Redactor()
        self.headers = redactor.headers(headers.items())
        self.body = redactor.deep(body)
        self.status: int | None = None
        self.events: list[dict[str, Any]] = []
        self.reply: Any = None
        self._decoder = SSEDecoder()

    def ms(self) -> float:
        """Milliseconds since the request arrived."""
        return round((time.perf_counter() - self.t0) * 1000, 3)

    def streamed(self, data: bytes) -> None:
        """Note bytes sent to the client; complete events are kept with their time."""
        t_ms = self.ms()
        self.events += [{"t_ms": t_ms, "data": e.data} for e in self._decoder.feed(data, t_ms)]

    def line(self) -> str:
        """The JSON line of this exchange."""
        entry = {
            "version": RECORDING_VERSION,
            "recorded_at": self.recorded_at,
            "request": {"headers": self.headers, "body": self.body},
            "response": {"status": self.status, "events": self.events, "body": self.reply, "total_ms": self.ms()},
        }
        return json.dumps(entry, ensure_ascii=False, separators=(",", ":"))


class TrafficRecorder:
    """Appends exchanges to a JSONL file; one write per exchange, safe across threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, exchange: Exchange) -> None:
        """Append one exchange."""
        line = exchange.line() + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line)
