"""Bodies the proxy must refuse itself, with a 400 in OpenAI's envelope, before anything reaches the upstream."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from harness.servers import ServerThread
from reference_proxy.app import create_app
from reference_proxy.settings import ProxySettings

pytestmark = pytest.mark.slow
MESSAGES = b'"messages": [{"role": "user", "content": "Hi"}]'


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"[" * 100_000, "The body is nested too deep: more than 128 levels of arrays and objects."),
        (b'{"messages": ' + b"[" * 100_000, "The body is nested too deep: more than 128 levels of arrays and objects."),
        (b'{"model": "m", ' + MESSAGES + b', "temperature": NaN}',
         "The body is not standard JSON: NaN is not a JSON value."),
        (b'{"model": "m", ' + MESSAGES + b', "top_p": Infinity}',
         "The body is not standard JSON: Infinity is not a JSON value."),
        (b'{"model": "m", ' + MESSAGES + b', "max_tokens": 1e999}',
         "The body is not standard JSON: 1e999 is too large for a number."),
        (b'{"model": "m", ' + MESSAGES + b', "name": "\xff"}', "The body is not UTF-8: byte 0xff at offset 73."),
    ],
    ids=["deep-array", "deep-messages", "nan", "infinity", "overflow", "not-utf-8"],
)  # fmt: skip
def test_a_bad_body_is_a_400_and_never_reaches_the_upstream(
    body: bytes,
    says: str,
    serve: Callable[[Any], ServerThread],
    fake_llm: Callable[..., ServerThread],
    caplog: pytest.LogCaptureFixture,
) -> None:
    upstream = fake_llm()
    proxy = serve(create_app(ProxySettings(upstream_url=f"{upstream.url}/v1")))
    with caplog.at_level(logging.WARNING):
        reply = httpx.post(
            f"{proxy.url}/v1/chat/completions", content=body, headers={"Content-Type": "application/json"}, timeout=10
        )
    assert reply.status_code == 400
    assert reply.json() == {"error": {"message": says, "type": "invalid_request_error", "param": None, "code": None}}
    assert list(upstream.app.state.fake.recorded) == []
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []  # no traceback logged


def test_a_good_body_still_reaches_the_upstream(
    serve: Callable[[Any], ServerThread], fake_llm: Callable[..., ServerThread]
) -> None:
    upstream = fake_llm()
    proxy = serve(create_app(ProxySettings(upstream_url=f"{upstream.url}/v1")))
    body = b'{"model": "m", ' + MESSAGES + b', "temperature": 0.5}'
    reply = httpx.post(f"{proxy.url}/v1/chat/completions", content=body, timeout=10)
    assert reply.status_code == 200
    (received,) = upstream.app.state.fake.recorded
    assert received.body["temperature"] == 0.5
