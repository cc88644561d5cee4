"""OAuth2 client credentials as Vapi fetches them, against a real token server on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import pytest

from mock_vapi.oauth2 import OAuth2Plan, TokenError, TokenSource
from mock_vapi.reader import new_session
from tests.token_server import TokenServer


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _plan(url: str, server: TokenServer, **extra: Any) -> OAuth2Plan:
    vapi = {"type": "oauth2", "url": url, "clientId": server.client_id, "clientSecret": server.client_secret}
    return OAuth2Plan.from_vapi(vapi | extra.pop("vapi", {}), **extra)


async def _tokens(source: TokenSource, clock: _Clock, steps: list[float]) -> list[str]:
    got = []
    async with new_session() as session:
        for step in steps:
            clock.now += step
            got.append(await source.token(session))
    return got


@pytest.mark.parametrize("client_auth", ["body", "basic"])
def test_a_token_is_reused_while_valid_and_fetched_again_after_expiry(
    tokens: Callable[..., tuple[TokenServer, str]], client_auth: Any
) -> None:
    server, url = tokens(expires_in=60)
    clock = _Clock()
    source = TokenSource(_plan(url, server, vapi={"scope": "llm.read"}, client_auth=client_auth), clock=clock)
    assert asyncio.run(_tokens(source, clock, [0, 10, 40, 20])) == ["token-1", "token-1", "token-1", "token-2"]
    assert server.granted == 2 and source.fetches == 2
    first = server.requests[0]
    assert first["form"]["grant_type"] == "client_credentials" and first["form"]["scope"] == "llm.read"
    assert first["basic"] is (client_auth == "basic")
    assert ("client_secret" in first["form"]) is (client_auth == "body")


def test_a_failing_token_endpoint_is_an_error_without_secrets(tokens: Callable[..., tuple[TokenServer, str]]) -> None:
    server, url = tokens(status=503)
    clock = _Clock()
    with pytest.raises(TokenError) as caught:
        asyncio.run(_tokens(TokenSource(_plan(url, server), clock=clock), clock, [0]))
    assert "HTTP 503 (temporarily_unavailable)" in str(caught.value)
    assert server.client_secret not in str(caught.value)


def test_wrong_client_credentials_are_refused(tokens: Callable[..., tuple[TokenServer, str]]) -> None:
    server, url = tokens()
    plan = OAuth2Plan(url, server.client_id, "wrong-secret")
    clock = _Clock()
    with pytest.raises(TokenError, match=r"HTTP 401 \(invalid_client\)"):
        asyncio.run(_tokens(TokenSource(plan, clock=clock), clock, [0]))


def test_an_unreachable_token_endpoint_is_named() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens on it
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/oauth/token"
    clock = _Clock()
    with pytest.raises(TokenError, match="could not be reached"):
        asyncio.run(_tokens(TokenSource(OAuth2Plan(url, "a", "b"), clock=clock), clock, [0]))


def test_a_plan_without_its_fields_is_refused() -> None:
    with pytest.raises(ValueError, match=r"authenticationPlan\.clientSecret: required"):
        OAuth2Plan.from_vapi({"type": "oauth2", "url": "http://127.0.0.1/t", "clientId": "x"})
