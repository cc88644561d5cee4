"""Bodies the mock Vapi API refuses: a 400 in Vapi's shape, never a 500 nor a traceback in the log."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.servers import ServerThread
from mock_vapi.api.app import create_app
from mock_vapi.api.store import Store

pytestmark = pytest.mark.slow
KEY = "vapi-private-key-1"
DEEP = "body is nested too deep: more than 128 levels of arrays and objects"


@pytest.mark.parametrize("path", ["/assistant", "/credential", "/chat", "/call"])
@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"[" * 100_000, DEEP),
        (b'{"name": "a", "x": ' + b'{"a": ' * 100_000, DEEP),
        (b'{"name": "a", "maxDurationSeconds": NaN}', "body is not standard JSON: NaN is not a JSON value"),
        (b'{"name": ', "body is not valid JSON: Expecting value: line 1 column 10 (char 9)"),
    ],
    ids=["deep-array", "deep-object", "nan", "truncated"],
)  # fmt: skip
def test_a_bad_body_is_vapis_400(
    path: str,
    body: bytes,
    says: str,
    serve: Callable[[Any], ServerThread],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mock = serve(create_app(Store(tmp_path / "vapi.sqlite3"), KEY))
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    with caplog.at_level(logging.WARNING):
        reply = httpx.post(f"{mock.url}{path}", content=body, headers=headers, timeout=10)
    assert reply.status_code == 400
    assert reply.json() == {"message": [says], "error": "Bad Request", "statusCode": 400}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
