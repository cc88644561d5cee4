"""A token server of our own, standing in for an OAuth2 provider (outside the machine in real use): it grants
client-credentials tokens `token-1`, `token-2`, ... and records every request it got."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

__all__ = ["TokenServer", "token_app"]


@dataclass
class TokenServer:
    """What the server grants (`expires_in`, or a failing `status`) and what it received."""

    client_id: str = "vapi-client"
    client_secret: str = "oauth-secret-0123456789"
    expires_in: float | None = 3600
    status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)

    @property
    def granted(self) -> int:
        """How many tokens were granted."""
        return sum(1 for r in self.requests if r["granted"])


def _client(request: Request, form: dict[str, str]) -> tuple[str | None, str | None]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return unquote(user), unquote(password)
    return form.get("client_id"), form.get("client_secret")


def token_app(server: TokenServer) -> Starlette:
    """The ASGI app: `POST /oauth/token`."""

    async def token(request: Request) -> JSONResponse:
        form = dict(parse_qsl((await request.body()).decode()))  # application/x-www-form-urlencoded
        client_id, secret = _client(request, form)
        entry: dict[str, Any] = {"form": form, "basic": "authorization" in request.headers, "granted": False}
        server.requests.append(entry)
        if server.status != 200:
            return JSONResponse({"error": "temporarily_unavailable"}, status_code=server.status)
        if form.get("grant_type") != "client_credentials" or (client_id, secret) != (
            server.client_id, server.client_secret
        ):  # fmt: skip
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        entry["granted"] = True
        reply: dict[str, Any] = {"access_token": f"token-{server.granted}", "token_type": "Bearer"}
        if server.expires_in is not None:
            reply["expires_in"] = server.expires_in
        return JSONResponse(reply)

    return Starlette(routes=[Route("/oauth/token", token, methods=["POST"])])
