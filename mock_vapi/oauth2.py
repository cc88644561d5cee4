"""OAuth2 for a custom LLM, as Vapi does it: a client-credentials token (RFC 6749 section 4.4) fetched from the
credential's `authenticationPlan.url`, sent as `Authorization: Bearer <token>`, kept until it expires.

Whether Vapi sends the client secret in the form body or as HTTP basic auth is not documented: the form body
is the default, `client_auth="basic"` the switch. Tokens and secrets never leave this module in a message.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import aiohttp

__all__ = ["ClientAuth", "OAuth2Plan", "TokenError", "TokenSource"]

ClientAuth = Literal["body", "basic"]
_EXPIRY_MARGIN_S = 5.0  # fetch a new token this long before the old one expires
_DEFAULT_LIFETIME_S = 3600.0  # a reply without expires_in: RFC 6749 leaves it to the server; an hour
_TIMEOUT_S = 10.0
_MAX_BODY_BYTES = 64 * 1024


class TokenError(Exception):
    """The token endpoint did not give a token; the message says why, without any secret."""


@dataclass(frozen=True)
class OAuth2Plan:
    """A credential's `authenticationPlan` of type `oauth2`."""

    url: str
    client_id: str
    client_secret: str
    scope: str | None = None
    client_auth: ClientAuth = "body"

    @classmethod
    def from_vapi(cls, plan: Mapping[str, Any], client_auth: ClientAuth = "body") -> OAuth2Plan:
        """From Vapi's `{type: "oauth2", url, clientId, clientSecret, scope?}`; ValueError naming a missing field."""
        missing = [k for k in ("url", "clientId", "clientSecret") if not isinstance(plan.get(k), str) or not plan[k]]
        if missing:
            raise ValueError(f"authenticationPlan.{missing[0]}: required for an oauth2 plan")
        scope = plan.get("scope")
        return cls(plan["url"], plan["clientId"], plan["clientSecret"], scope if isinstance(scope, str) else None,
                   client_auth)  # fmt: skip


class TokenSource:
    """Gives the current token for one plan: fetched on first use, reused while valid, fetched again after."""

    def __init__(self, plan: OAuth2Plan, clock: Callable[[], float] = time.monotonic) -> None:
        self.plan = plan
        self._clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0  # how many tokens were fetched (tests and the mock's debug view read it)

    async def token(self, session: aiohttp.ClientSession) -> str:
        """A valid token, fetching one when there is none or it is about to expire; `TokenError` otherwise."""
        async with self._lock:
            if self._token is None or self._clock() >= self._expires_at - _EXPIRY_MARGIN_S:
                self._token, lifetime_s = await self._fetch(session)
                self._expires_at = self._clock() + lifetime_s
                self.fetches += 1
            return self._token

    async def _fetch(self, session: aiohttp.ClientSession) -> tuple[str, float]:
        plan = self.plan
        form = {"grant_type": "client_credentials"}
        headers = {"Accept": "application/json"}
        if plan.client_auth == "basic":  # RFC 6749 section 2.3.1: both form-encoded, then basic auth
            pair = f"{quote(plan.client_id, safe='')}:{quote(plan.client_secret, safe='')}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
        else:
            form |= {"client_id": plan.client_id, "client_secret": plan.client_secret}
        if plan.scope:
            form["scope"] = plan.scope
        try:
            async with session.post(
                plan.url, data=form, headers=headers,
                timeout=aiohttp.ClientTimeout(total=_TIMEOUT_S), allow_redirects=False,
            ) as response:  # fmt: skip
                body = await response.content.read(_MAX_BODY_BYTES)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TokenError(f"the token endpoint {plan.url} could not be reached: {type(exc).__name__}") from None
        return _token_of(plan.url, status, body)


def _token_of(url: str, status: int, body: bytes) -> tuple[str, float]:
    """The token and its lifetime from a token endpoint's reply (RFC 6749 section 5.1)."""
    if status != 200:
        error = ""
        try:
            reply = json.loads(body)
            if isinstance(reply, dict) and isinstance(reply.get("error"), str):
                error = f" ({reply['error'][:80]})"
        except ValueError:
            pass
        raise TokenError(f"the token endpoint {url} answered HTTP {status}{error}")
    try:
        reply = json.loads(body)
    except ValueError:
        raise TokenError(f"the token endpoint {url} answered with a body that is not JSON") from None
    token = reply.get("access_token") if isinstance(reply, dict) else None
    if not isinstance(token, str) or not token:
        raise TokenError(f"the token endpoint {url} answered without an access_token")
    expires_in = reply.get("expires_in")
    lifetime = float(expires_in) if isinstance(expires_in, int | float) and expires_in > 0 else _DEFAULT_LIFETIME_S
    return token, lifetime
