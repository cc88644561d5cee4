"""Reproducers: each failure's smallest request as a line of the recording format, which `vapi-harness check
--replay FILE` sends again exactly.

The line is the one `vapi-harness proxy --record` writes: the request's headers (credentials redacted: the
replay adds `--api-key` again) and its body as sent, and the reply as it came. The body is kept exactly (only a
known secret value would be replaced), so the replay sends the same bytes; an `explore` object says what failed.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness.explore.results import ExploreResult, Failure
from harness.protocol import RECORDING_VERSION, Redactor
from mock_vapi.exchange import INVALID_JSON

__all__ = ["reproducer_line", "write_reproducers"]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def reproducer_line(failure: Failure, seed: int, redactor: Redactor) -> str:
    """The recording line of `failure`'s smallest request and its reply."""
    exchange = failure.result.exchange
    request = exchange.request
    body = dict(request.json_body) if request.json_body is not None else json.loads(request.body)
    reply: Any = None
    if not exchange.streamed and exchange.body_json is not INVALID_JSON:
        reply = exchange.body_json
    entry = {
        "version": RECORDING_VERSION,
        "recorded_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "request": {"headers": redactor.headers(request.headers), "body": body},
        "response": {
            "status": exchange.status,
            "events": [{"t_ms": round(exchange.ms(e.sse.t) or 0.0, 3), "data": e.sse.data} for e in exchange.events],
            "body": reply,
            "total_ms": round(exchange.ms(exchange.t_end) or 0.0, 3),
        },
        "explore": {
            "check": failure.key.check,
            "severity": failure.severity.value,
            "title": failure.finding.title,
            "detail": failure.finding.detail,
            "seed": seed,
            "shrink_steps": failure.shrink_steps,
        },
    }
    return redactor.text(json.dumps(entry, ensure_ascii=False, separators=(",", ":")))


def write_reproducers(run: ExploreResult, directory: Path, redactor: Redactor) -> None:
    """One file per failure, `NN-<check>.jsonl`, in `directory`; each failure learns its path."""
    failures = run.failures_first
    if not failures:
        return
    directory.mkdir(parents=True, exist_ok=True)
    for number, failure in enumerate(failures, 1):
        path = directory / f"{number:02d}-{_UNSAFE.sub('-', failure.key.check)}.jsonl"
        path.write_text(reproducer_line(failure, run.info.seed, redactor) + "\n", encoding="utf-8")
        failure.reproducer = path
