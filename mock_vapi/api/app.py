"""The mock Vapi API: a Starlette app over the SQLite store, with Vapi's paths, statuses and error shapes."""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from harness.protocol import BodyError, parse_json_body
from mock_vapi.api.calls import Calls
from mock_vapi.api.chats import Chats
from mock_vapi.api.llm import DEFAULT_PROVIDER_URLS, NO_RETRIES, RetryPolicy, TokenSources
from mock_vapi.api.resources import Assistants, Credentials
from mock_vapi.api.store import Store
from mock_vapi.api.tools import Tools
from mock_vapi.api.validate import ApiError
from mock_vapi.reader import new_session

__all__ = ["MockVapi", "create_app"]

_UNAUTHORIZED = "Invalid Key. Hot tip, you may be using the private key instead of the public key, or vice versa."
Handler = Callable[[Request], Awaitable[Response]]


def _limit(request: Request) -> int:
    text = request.query_params.get("limit", "100")
    try:
        limit = int(float(text))
    except ValueError:
        raise ApiError(400, ["limit must be a number"]) from None
    if not 0 < limit <= 1000:
        raise ApiError(400, ["limit must not be greater than 1000 nor less than 1"])
    return limit


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return {}
    try:
        return parse_json_body(raw)
    except BodyError as exc:
        raise ApiError(400, [f"body {exc.problem}"]) from None


class MockVapi:
    """The app's state: the store, the resources, and the HTTP session used to reach LLMs."""

    def __init__(
        self, store: Store, api_key: str, provider_urls: Mapping[str, str] | None = None, *,
        tokens: TokenSources | None = None, retries: RetryPolicy = NO_RETRIES,
    ) -> None:  # fmt: skip
        self.store = store
        self.api_key = api_key
        self.provider_urls = {**DEFAULT_PROVIDER_URLS, **(provider_urls or {})}
        self._session: aiohttp.ClientSession | None = None
        self.tokens = tokens or TokenSources()  # one per app: tokens are reused across chats and calls
        self.credentials = Credentials(store)
        self.assistants = Assistants(store)
        self.tools = Tools(store)
        urls = self.provider_urls
        self.chats = Chats(store, self.assistants, self.session, urls, tokens=self.tokens, retries=retries)
        self.calls = Calls(store, self.assistants, self.session, urls, tokens=self.tokens, retries=retries)

    def session(self) -> aiohttp.ClientSession:
        """The client session (exists while the app runs)."""
        assert self._session is not None, "the app's lifespan has not started"
        return self._session

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Open the LLM client session for the app's lifetime."""
        async with new_session() as session:
            self._session = session
            try:
                yield
            finally:
                await self.calls.stop()
        self._session = None

    def guarded(self, handler: Handler) -> Handler:
        """Require `Authorization: Bearer <api key>`, as every Vapi route does."""
        expected = f"Bearer {self.api_key}".encode()

        async def guard(request: Request) -> Response:
            given = request.headers.get("authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                raise ApiError(401, _UNAUTHORIZED)
            return await handler(request)

        return guard

    # --- credentials and assistants ---

    async def create_credential(self, request: Request) -> Response:
        return JSONResponse(self.credentials.create(await _body(request)), status_code=201)

    async def list_credentials(self, request: Request) -> Response:
        return JSONResponse(self.credentials.list(_limit(request)))

    async def credential(self, request: Request) -> Response:
        credential_id = request.path_params["id"]
        if request.method == "GET":
            return JSONResponse(self.credentials.get(credential_id))
        if request.method == "PATCH":
            return JSONResponse(self.credentials.update(credential_id, await _body(request)))
        return JSONResponse(self.credentials.delete(credential_id))

    async def create_assistant(self, request: Request) -> Response:
        return JSONResponse(self.assistants.create(await _body(request)), status_code=201)

    async def list_assistants(self, request: Request) -> Response:
        return JSONResponse(self.assistants.list(_limit(request)))

    async def assistant(self, request: Request) -> Response:
        assistant_id = request.path_params["id"]
        if request.method == "GET":
            return JSONResponse(self.assistants.get(assistant_id))
        if request.method == "PATCH":
            return JSONResponse(self.assistants.update(assistant_id, await _body(request)))
        return JSONResponse(self.assistants.delete(assistant_id))

    # --- tools ---

    async def create_tool(self, request: Request) -> Response:
        return JSONResponse(self.tools.create(await _body(request)), status_code=201)

    async def list_tools(self, request: Request) -> Response:
        return JSONResponse(self.tools.list(_limit(request)))

    async def tool(self, request: Request) -> Response:
        tool_id = request.path_params["id"]
        if request.method == "GET":
            return JSONResponse(self.tools.get(tool_id))
        if request.method == "PATCH":
            return JSONResponse(self.tools.update(tool_id, await _body(request)))
        return JSONResponse(self.tools.delete(tool_id))

    # --- chats ---

    async def create_chat(self, request: Request) -> Response:
        body = await _body(request)
        if isinstance(body, Mapping) and body.get("stream"):
            return StreamingResponse(await self.chats.stream(body), media_type="text/event-stream")
        return JSONResponse(await self.chats.create(body))

    async def create_response(self, request: Request) -> Response:
        body = await _body(request)
        if isinstance(body, Mapping) and body.get("stream"):
            return StreamingResponse(await self.chats.stream(body, responses=True), media_type="text/event-stream")
        return JSONResponse(await self.chats.respond(body))

    async def list_chats(self, request: Request) -> Response:
        where = {
            k: request.query_params[k]
            for k in ("assistantId", "sessionId", "previousChatId", "id")
            if k in request.query_params
        }
        return JSONResponse(self.chats.page(_limit(request), where))

    async def chat(self, request: Request) -> Response:
        chat_id = request.path_params["id"]
        if request.method == "GET":
            return JSONResponse(self.chats.get(chat_id))
        return JSONResponse(self.chats.delete(chat_id))

    # --- calls ---

    async def create_call(self, request: Request) -> Response:
        return JSONResponse(self.calls.create(await _body(request)), status_code=201)

    async def list_calls(self, request: Request) -> Response:
        where = {k: request.query_params[k] for k in ("assistantId", "id") if k in request.query_params}
        return JSONResponse(self.calls.list(_limit(request), where))

    async def call(self, request: Request) -> Response:
        call_id = request.path_params["id"]
        if request.method == "GET":
            return JSONResponse(self.calls.get(call_id))
        return JSONResponse(self.calls.delete(call_id))

    # --- inspection ---

    async def debug_requests(self, request: Request) -> Response:
        """A documented extension: the requests this mock sent to LLMs, newest last, secrets redacted."""
        return JSONResponse(self.store.sent(_limit(request)))

    def routes(self) -> list[Route]:
        g = self.guarded
        return [
            Route("/credential", g(self.create_credential), methods=["POST"]),
            Route("/credential", g(self.list_credentials), methods=["GET"]),
            Route("/credential/{id}", g(self.credential), methods=["GET", "PATCH", "DELETE"]),
            Route("/assistant", g(self.create_assistant), methods=["POST"]),
            Route("/assistant", g(self.list_assistants), methods=["GET"]),
            Route("/assistant/{id}", g(self.assistant), methods=["GET", "PATCH", "DELETE"]),
            Route("/tool", g(self.create_tool), methods=["POST"]),
            Route("/tool", g(self.list_tools), methods=["GET"]),
            Route("/tool/{id}", g(self.tool), methods=["GET", "PATCH", "DELETE"]),
            Route("/chat/responses", g(self.create_response), methods=["POST"]),
            Route("/chat", g(self.create_chat), methods=["POST"]),
            Route("/chat", g(self.list_chats), methods=["GET"]),
            Route("/chat/{id}", g(self.chat), methods=["GET", "DELETE"]),
            Route("/call", g(self.create_call), methods=["POST"]),
            Route("/call", g(self.list_calls), methods=["GET"]),
            Route("/call/{id}", g(self.call), methods=["GET", "DELETE"]),
            Route("/debug/requests", g(self.debug_requests), methods=["GET"]),
        ]


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.body(), status_code=exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = f"Cannot {request.method} {request.url.path}" if exc.status_code in (404, 405) else str(exc.detail)
    body = {
        "message": message,
        "error": "Not Found" if exc.status_code == 404 else str(exc.detail),
        "statusCode": exc.status_code,
    }
    return JSONResponse(body, status_code=exc.status_code)


def create_app(
    store: Store,
    api_key: str,
    provider_urls: Mapping[str, str] | None = None,
    *,
    tokens: TokenSources | None = None,
    retries: RetryPolicy = NO_RETRIES,
) -> Starlette:
    """The mock Vapi API over `store`; every route needs `Authorization: Bearer <api_key>`.

    `tokens` holds the OAuth2 switch (`TokenSources(client_auth="basic")`); `retries` the model-request retries
    (`RetryPolicy(max_retries=2)`; none by default)."""
    mock = MockVapi(store, api_key, provider_urls, tokens=tokens, retries=retries)
    app = Starlette(
        routes=mock.routes(),
        lifespan=mock.lifespan,
        exception_handlers={ApiError: _api_error, HTTPException: _http_error},
    )
    app.state.mock = mock
    return app
