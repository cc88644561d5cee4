"""An ASGI app in front of another (the fake LLM), for what the fake LLM does not do: it keeps each request's
`Authorization` value (the fake LLM never keeps one), can refuse credentials it was not told of, can refuse user
messages with fields beyond `role` and `content` (a strict server), and can echo the credential in a 500."""

from __future__ import annotations

import json
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

__all__ = ["Gate"]


@dataclass
class Gate:
    """`accepted()`: the Authorization values let through (None: any); `before` runs as each request arrives."""

    inner: Any
    accepted: Callable[[], set[str]] | None = None
    strict_messages: bool = False
    echo_credential: bool = False
    before: Callable[[], None] | None = None
    authorization: list[str | None] = field(default_factory=list)  # one per request, in order
    bodies: list[Any] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/chat/completions"):
            await self.inner(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        credential = headers.get("authorization")
        self.authorization.append(credential)
        if self.before is not None:
            self.before()
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        self.bodies.append(parsed)
        refusal = self._refusal(credential, parsed)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        sent = False

        async def replay() -> MutableMapping[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.inner(scope, replay, send)

    def _refusal(self, credential: str | None, body: Any) -> JSONResponse | None:
        if self.echo_credential:
            return _error(500, f"upstream rejected the credential {credential}")
        if self.accepted is not None and credential not in self.accepted():
            return _error(401, "Invalid credentials")
        if self.strict_messages and isinstance(body, dict):
            for i, message in enumerate(body.get("messages") or []):
                unknown = sorted(set(message) - {"role", "content", "name", "tool_calls", "tool_call_id"})
                if unknown:
                    return _error(400, f"messages[{i}]: extra fields not permitted: {', '.join(unknown)}")
        return None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": "invalid_request_error"}}, status_code=status)
